//! The Pod Identity agent's 200 is read as the SDKs read it: botocore
//! (boto3, the AWS CLI) and irsa-doctor are handed the same answers by the
//! agent stand-in, and irsa-doctor passes exactly where botocore gets
//! usable credentials, except where the AWS SDK for Rust is stricter than
//! botocore and Rust apps really fail (each such row says why;
//! docs/reliability.md lists them).
//!
//! botocore is the one in the workspace's `.venv` (moto brings it; `bash
//! .ci/run` installs it). Without it this test fails; it does not skip.

use std::path::PathBuf;
use std::process::Command;

use testkit::agent::{Agent, Fault};
use testkit::doctor;
use testkit::fake_aws::FakeAws;
use testkit::jwt::{Jwt, TokenVolume};
use testkit::world::{NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};

/// Loads the container provider's credentials as an app would, and says
/// whether it got usable ones: three non-empty strings (a number or an
/// empty string loads, but no request can be signed with it).
const BOTOCORE: &str = r#"
import botocore.utils
from botocore.credentials import ContainerProvider
# One attempt: the answer is the same every time.
botocore.utils.ContainerMetadataFetcher.RETRY_ATTEMPTS = 1
try:
    f = ContainerProvider().load().get_frozen_credentials()
    ok = all(isinstance(v, str) and v for v in (f.access_key, f.secret_key, f.token))
except Exception as e:
    import sys
    sys.stderr.write(f"botocore: {e!r}\n")
    ok = False
print("usable" if ok else "refused")
"#;

/// The venv's Python, beside moto's server.
fn python() -> PathBuf {
    let moto = testkit::venv_tool("MOTO_SERVER", "moto_server");
    let python = moto.with_file_name("python3");
    let found = Command::new(&python)
        .args(["-c", "import botocore"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "no botocore at {} (bash .ci/run installs moto[server], which brings it, into .venv)",
        python.display()
    );
    python
}

/// Whether botocore got usable credentials from the agent at `uri`, and
/// what it said if not.
/// Asynchronous: the agent stand-in answers on this test's runtime.
async fn botocore_usable(python: &PathBuf, uri: &str, token_file: &str) -> (bool, String) {
    let out = tokio::process::Command::new(python)
        .args(["-c", BOTOCORE])
        .env_clear()
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri)
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let why = String::from_utf8_lossy(&out.stderr).into_owned();
    match said.trim() {
        "usable" => (true, why),
        "refused" => (false, why),
        other => panic!(
            "botocore said {other:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[tokio::test]
async fn the_agents_answer_is_taken_where_botocore_takes_it() {
    let python = python();
    let sts = FakeAws::healthy().await;
    let agent = Agent::healthy(&sts.aws).await;
    let token = Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode();
    let volume = TokenVolume::pod_identity(&token);
    let creds = sts.aws.mint_session(ROLE_ARN, "eks-cross-check");
    let (key, secret, session) = (
        &creds.access_key_id,
        &creds.secret_access_key,
        &creds.session_token,
    );
    let expiry = "2099-01-01T00:00:00Z";
    let base = format!(r#""AccessKeyId":"{key}","SecretAccessKey":"{secret}","Token":"{session}""#);
    let good = format!(r#"{base},"Expiration":"{expiry}""#);
    // (body, botocore gets usable credentials, irsa-doctor passes, why
    // they differ where they do)
    let rows: Vec<(String, bool, bool, &str)> = vec![
        (format!("{{{good}}}"), true, true, ""),
        (
            format!(r#"{{{good},"AccountId":"111122223333"}}"#),
            true,
            true,
            "",
        ),
        // Both were definite fails before.
        (
            format!(r#"{{{good},"AccountId":111122223333}}"#),
            true,
            true,
            "",
        ),
        (
            format!(r#"{{"AccessKeyId":"AKIAOLDKEYFIRST",{good}}}"#),
            true,
            true,
            "",
        ),
        (
            format!(r#"{{{good},"AccountId":"1","AccountId":"111122223333"}}"#),
            true,
            true,
            "",
        ),
        (
            format!(r#"{{{good},"Code":"Success","Type":"AWS-HMAC","Extra":{{"a":[1]}}}}"#),
            true,
            true,
            "",
        ),
        (format!(r#"{{{good},"Code":7}}"#), true, true, ""),
        (format!(r#"{{{base}}}"#), false, false, ""),
        (
            format!(r#"{{{base},"Expiration":4070908800}}"#),
            false,
            false,
            "",
        ),
        (
            format!(r#"{{{base},"Expiration":"tomorrow"}}"#),
            false,
            false,
            "",
        ),
        (
            format!(
                r#"{{"AccessKeyId":5,"SecretAccessKey":"{secret}","Token":"{session}","Expiration":"{expiry}"}}"#
            ),
            false,
            false,
            "",
        ),
        (
            format!(
                r#"{{"AccessKeyId":"{key}","SecretAccessKey":"{secret}","Token":null,"Expiration":"{expiry}"}}"#
            ),
            false,
            false,
            "",
        ),
        (
            format!(
                r#"{{"AccessKeyId":"{key}","SecretAccessKey":"{secret}","SessionToken":"{session}","Expiration":"{expiry}"}}"#
            ),
            false,
            false,
            "",
        ),
        (
            format!(
                r#"{{"accesskeyid":"{key}","secretaccesskey":"{secret}","token":"{session}","expiration":"{expiry}"}}"#
            ),
            false,
            false,
            "",
        ),
        (
            format!(
                r#"{{"AccessKeyId":"","SecretAccessKey":"{secret}","Token":"{session}","Expiration":"{expiry}"}}"#
            ),
            false,
            false,
            "",
        ),
        (format!(r#"[{{{good}}}]"#), false, false, ""),
        (format!(r#"{{{good}}} and more"#), false, false, ""),
        (String::new(), false, false, ""),
        (
            format!(r#"{{{good},"Code":"Failure"}}"#),
            true,
            false,
            "the AWS SDK for Rust refuses a Code other than Success; botocore ignores Code",
        ),
        (
            format!(r#"{{{base},"Expiration":"2099-01-01 00:00:00Z"}}"#),
            true,
            false,
            "the AWS SDK for Rust takes only an RFC 3339 Expiration; botocore takes any date",
        ),
    ];
    for (body, botocore, doctor, why) in rows {
        agent.agent.always(Fault::Status(200, body.clone()));
        let path = volume.path();
        let (by_botocore, botocore_said) =
            botocore_usable(&python, &agent.url(), path.to_str().unwrap()).await;
        let out = doctor!(&sts.url())
            .pod_identity(&agent.url(), &path)
            .json()
            .await;
        let by_doctor = out.code == 0;
        assert_eq!(
            (by_botocore, by_doctor),
            (botocore, doctor),
            "{body}\n{why}\n{botocore_said}\n{}\n{}",
            out.stdout,
            out.stderr
        );
        if !doctor {
            assert!(
                out.codes().iter().any(|c| c == "POD_IDENTITY_AGENT_ERROR"),
                "{body}: {:?}",
                out.codes()
            );
        }
    }
}
