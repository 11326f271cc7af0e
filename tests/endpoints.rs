//! The FIPS and dual-stack switches (`AWS_USE_FIPS_ENDPOINT`,
//! `AWS_USE_DUALSTACK_ENDPOINT`, the profile's `use_fips_endpoint` and
//! `use_dualstack_endpoint`) choose STS's endpoint exactly as the SDK does,
//! the report names that endpoint and the switch that chose it, and a
//! region where STS has no FIPS endpoint fails as the app would.
//!
//! These runs set no `AWS_ENDPOINT_URL*`, which would override the
//! switches, so the SDK forms AWS's real names. Each runs the binary in a
//! user and network namespace of its own (`unshare -rn`): only a loopback
//! that is down, no route and no resolver, so nothing can leave the
//! machine, and every request fails without an answer, as a name that
//! does not exist does.

use testkit::jwt::{Jwt, TokenVolume};
use testkit::world::{NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{doctor, Doctor, Outcome};

fn volume() -> TokenVolume {
    TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode())
}

/// An IRSA pod in `region` with no custom endpoint, run where nothing is
/// reachable.
fn isolated(region: &str, volume: &TokenVolume) -> Doctor {
    doctor!("http://unused.invalid")
        .unset("AWS_ENDPOINT_URL_STS")
        .unset("AWS_ENDPOINT_URL_IAM")
        .irsa(ROLE_ARN, &volume.path())
        .env("AWS_REGION", region)
        .env("IRSA_DOCTOR_TIMEOUT", "4s")
        .under(&["unshare", "-rn"])
}

#[track_caller]
fn sts(out: &Outcome, field: &str) -> serde_json::Value {
    let report = out.json();
    assert!(
        report["sts"].is_object(),
        "no report (unshare -rn is needed): {}",
        out.stderr
    );
    report["sts"][field].clone()
}

/// False pass: FIPS on in eu-west-1, where STS has no FIPS endpoint. The
/// app's SDK forms `sts-fips.eu-west-1.amazonaws.com` and never gets
/// credentials. Before, this was `STS_UNREACHABLE`, retried until the
/// deadline and called inconclusive, as if the network were down for a
/// while; it is a definitive failure that names the region and the switch.
#[tokio::test]
async fn fips_in_a_region_without_a_fips_sts_endpoint_fails() {
    let vol = volume();
    let out = isolated("eu-west-1", &vol)
        .env("AWS_USE_FIPS_ENDPOINT", "true")
        .json()
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.json()["verdict"], "fail");
    let f = out.finding("FIPS_ENDPOINT_UNAVAILABLE");
    assert_eq!(f["severity"], "error");
    assert!(
        f["message"].as_str().unwrap().contains("eu-west-1"),
        "{f:#}"
    );
    assert!(
        !out.codes().contains(&"STS_UNREACHABLE".to_owned()),
        "{:?}",
        out.codes()
    );
    assert_eq!(
        sts(&out, "endpoint"),
        "https://sts-fips.eu-west-1.amazonaws.com/"
    );
    assert_eq!(sts(&out, "use_fips"), true);
    assert_eq!(sts(&out, "use_fips_source"), "AWS_USE_FIPS_ENDPOINT");
    // Final at once: no retries until the deadline.
    assert_eq!(sts(&out, "attempts"), 1);
}

/// False fail guard: FIPS on in us-east-1, which has one. No answer there
/// is a network problem (inconclusive), never `FIPS_ENDPOINT_UNAVAILABLE`;
/// the report names the FIPS endpoint and the switch, in JSON and text.
#[tokio::test]
async fn fips_in_a_fips_region_is_never_called_unavailable() {
    let vol = volume();
    for region in ["us-east-1", "us-gov-west-1", "ca-central-1"] {
        let out = isolated(region, &vol)
            .env("IRSA_DOCTOR_TIMEOUT", "2s")
            .env("AWS_USE_FIPS_ENDPOINT", "TRUE")
            .json()
            .await;
        assert_eq!(out.code, 3, "{region}: {}", out.stderr);
        assert!(
            out.codes().contains(&"STS_UNREACHABLE".to_owned()),
            "{:?}",
            out.codes()
        );
        assert!(!out
            .codes()
            .contains(&"FIPS_ENDPOINT_UNAVAILABLE".to_owned()));
        let endpoint = sts(&out, "endpoint");
        assert!(
            endpoint
                .as_str()
                .unwrap()
                .contains(&format!("{region}.amazonaws.com")),
            "{region}: {endpoint}"
        );
        assert_eq!(sts(&out, "use_fips"), true);
    }
    let out = isolated("us-east-1", &vol)
        .env("IRSA_DOCTOR_TIMEOUT", "2s")
        .env("AWS_USE_FIPS_ENDPOINT", "true")
        .run()
        .await;
    assert!(
        out.stdout
            .contains("https://sts-fips.us-east-1.amazonaws.com/")
            && out.stdout.contains("FIPS on (AWS_USE_FIPS_ENDPOINT)"),
        "{}",
        out.stdout
    );
}

/// The profile's switches count as the variables do, and dual-stack forms
/// `api.aws` names; the report says the profile chose them.
#[tokio::test]
async fn the_profiles_switches_choose_the_endpoint_and_are_named() {
    let vol = volume();
    let d = isolated("us-west-2", &vol).env("IRSA_DOCTOR_TIMEOUT", "2s");
    std::fs::write(
        d.home().join("aws-config"),
        "[default]\nuse_fips_endpoint = true\nuse_dualstack_endpoint = true\n",
    )
    .unwrap();
    let out = d.json().await;
    assert_eq!(sts(&out, "endpoint"), "https://sts-fips.us-west-2.api.aws/");
    assert_eq!(sts(&out, "use_fips_source"), "profile");
    assert_eq!(sts(&out, "use_dualstack_source"), "profile");

    let out = isolated("eu-west-1", &vol)
        .env("IRSA_DOCTOR_TIMEOUT", "2s")
        .env("AWS_USE_DUALSTACK_ENDPOINT", "true")
        .json()
        .await;
    assert_eq!(sts(&out, "endpoint"), "https://sts.eu-west-1.api.aws/");
    assert_eq!(sts(&out, "use_dualstack"), true);
    assert_eq!(sts(&out, "use_fips"), false);
    assert_eq!(
        out.code,
        3,
        "dual-stack exists in every region: {:?}",
        out.codes()
    );
}

/// False pass: `AWS_USE_FIPS_ENDPOINT=yes` reads as "FIPS" to a person,
/// but aws-config ignores it (and botocore reads it as false): the app
/// talks to the ordinary endpoint. Before, nothing said so.
#[tokio::test]
async fn a_switch_the_sdk_ignores_is_a_finding_and_the_endpoint_is_the_ordinary_one() {
    let vol = volume();
    let out = isolated("us-east-1", &vol)
        .env("IRSA_DOCTOR_TIMEOUT", "2s")
        .env("AWS_USE_FIPS_ENDPOINT", "yes")
        .json()
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let f = out.finding("ENDPOINT_INVALID");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("AWS_USE_FIPS_ENDPOINT"),
        "{f:#}"
    );
    assert_eq!(
        sts(&out, "endpoint"),
        "https://sts.us-east-1.amazonaws.com/"
    );
    assert_eq!(sts(&out, "use_fips"), false);
    assert_eq!(sts(&out, "use_fips_source"), serde_json::Value::Null);
}

/// False pass: the profile's `use_fips_endpoint = yes` (or a quoted
/// `"true"`) reads as "FIPS" to a person, but aws-config ignores it as it
/// ignores the variable (botocore reads it as false): the app talks to the
/// ordinary endpoint. Before, only the variables were judged.
#[tokio::test]
async fn a_profile_switch_the_sdk_ignores_is_a_finding_and_the_endpoint_is_the_ordinary_one() {
    let vol = volume();
    for (profile, selected, key) in [
        (
            "[default]\nuse_fips_endpoint = yes\n",
            None,
            "use_fips_endpoint",
        ),
        (
            "[profile app]\nuse_dualstack_endpoint = \"true\"\n",
            Some("app"),
            "use_dualstack_endpoint",
        ),
    ] {
        let mut d = isolated("us-east-1", &vol).env("IRSA_DOCTOR_TIMEOUT", "2s");
        if let Some(name) = selected {
            d = d.env("AWS_PROFILE", name);
        }
        std::fs::write(d.home().join("aws-config"), profile).unwrap();
        let out = d.json().await;
        assert_eq!(out.code, 1, "{key}: {}", out.stderr);
        let f = out.finding("ENDPOINT_INVALID");
        assert!(f["message"].as_str().unwrap().contains(key), "{f:#}");
        assert_eq!(
            sts(&out, "endpoint"),
            "https://sts.us-east-1.amazonaws.com/"
        );
        assert_eq!(sts(&out, "use_fips"), false);
        assert_eq!(sts(&out, "use_dualstack"), false);
    }
}

/// False fail guard: only what aws-config reads is judged. `False` in any
/// case is a value it takes; a profile the pod does not select is not
/// read; and a set variable is all it reads, so the profile's value then
/// does not matter. None of these is a finding.
#[tokio::test]
async fn a_profile_switch_the_sdk_does_not_read_or_accepts_is_no_finding() {
    let vol = volume();
    let d = isolated("us-east-1", &vol)
        .env("IRSA_DOCTOR_TIMEOUT", "2s")
        .env("AWS_USE_DUALSTACK_ENDPOINT", "false");
    std::fs::write(
        d.home().join("aws-config"),
        "[default]\nuse_fips_endpoint = FALSE\nuse_dualstack_endpoint = yes\n\
         [profile other]\nuse_fips_endpoint = yes\n",
    )
    .unwrap();
    let out = d.json().await;
    assert_eq!(out.code, 3, "{:?} {}", out.codes(), out.stderr);
    assert!(
        !out.codes().contains(&"ENDPOINT_INVALID".to_owned()),
        "{:?}",
        out.codes()
    );
    assert_eq!(
        sts(&out, "endpoint"),
        "https://sts.us-east-1.amazonaws.com/"
    );
}

/// STS's endpoint rules refuse FIPS beside a custom endpoint, so the AWS
/// SDK for Rust sends nothing; the finding says so, and nothing is sent.
#[tokio::test]
async fn fips_beside_a_custom_endpoint_is_named_and_nothing_is_sent() {
    let vol = volume();
    let out = isolated("us-east-1", &vol)
        .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
        .env("AWS_USE_FIPS_ENDPOINT", "true")
        .json()
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let f = out.finding("ENDPOINT_INVALID");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("custom STS endpoint"),
        "{f:#}"
    );
    assert_eq!(sts(&out, "attempts"), 0);
}

/// A Pod Identity agent inside the namespace: brings loopback up, answers
/// every request on 127.0.0.1:8089 with credentials (as the node's agent
/// does), runs the binary, and stops.
const AGENT: &str = r#"
import fcntl, http.server, socket, struct, subprocess, sys, threading
fcntl.ioctl(socket.socket(), 0x8914, struct.pack("16sH", b"lo", 0x1 | 0x40))
BODY = (b'{"AccessKeyId":"ASIAFIPSTEST","SecretAccessKey":"fipstestsecret0123456789",'
        b'"Token":"fipstestsessiontoken0123456789","AccountId":"111122223333",'
        b'"Expiration":"2099-01-01T00:00:00Z"}')
class Agent(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 8089), Agent)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.exit(subprocess.run(sys.argv[1:]).returncode)
"#;

/// Pod Identity: `GetCallerIdentity` with the agent's credentials goes to
/// the FIPS name too, and fails as IRSA's call does. The report names the
/// endpoint the request went to (before: none, since a failed
/// `GetCallerIdentity` did not say where it went).
#[tokio::test]
async fn pod_identity_with_fips_in_a_region_without_it_fails_and_names_the_endpoint() {
    let vol =
        TokenVolume::pod_identity(&Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode());
    let out = doctor!("http://unused.invalid")
        .unset("AWS_ENDPOINT_URL_STS")
        .unset("AWS_ENDPOINT_URL_IAM")
        .pod_identity("http://127.0.0.1:8089/v1/credentials", &vol.path())
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_USE_FIPS_ENDPOINT", "true")
        .env("IRSA_DOCTOR_TIMEOUT", "4s")
        .under(&["unshare", "-rn", "python3", "-c", AGENT])
        .json()
        .await;
    assert_eq!(out.json()["agent"]["status"], 200, "{}", out.stderr);
    assert_eq!(out.code, 1, "{:?}\n{}", out.codes(), out.stderr);
    assert!(out
        .codes()
        .contains(&"FIPS_ENDPOINT_UNAVAILABLE".to_owned()));
    assert_eq!(
        sts(&out, "endpoint"),
        "https://sts-fips.eu-west-1.amazonaws.com/"
    );
}

/// False warning: with FIPS or dual-stack on, STS's endpoint rules never
/// use the global endpoint (`UseGlobalEndpoint` applies only with both
/// off), so `AWS_STS_REGIONAL_ENDPOINTS=legacy` changes nothing for the
/// app. Before, `STS_GLOBAL_ENDPOINT` said it would go to
/// `sts.amazonaws.com`.
#[tokio::test]
async fn legacy_beside_a_switch_is_not_called_the_global_endpoint() {
    let vol = volume();
    for switch in ["AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"] {
        let out = isolated("us-east-1", &vol)
            .env("IRSA_DOCTOR_TIMEOUT", "1s")
            .env("AWS_STS_REGIONAL_ENDPOINTS", "legacy")
            .env(switch, "true")
            .json()
            .await;
        assert!(
            !out.codes().contains(&"STS_GLOBAL_ENDPOINT".to_owned()),
            "{switch}: {:?}",
            out.codes()
        );
        assert_eq!(sts(&out, "app_endpoint"), serde_json::Value::Null);
    }
    // The control: with neither switch, legacy is still named.
    let out = isolated("us-east-1", &vol)
        .env("IRSA_DOCTOR_TIMEOUT", "1s")
        .env("AWS_STS_REGIONAL_ENDPOINTS", "legacy")
        .json()
        .await;
    assert!(
        out.codes().contains(&"STS_GLOBAL_ENDPOINT".to_owned()),
        "{:?}",
        out.codes()
    );
}

/// A real peer's resolver, botocore's (`.venv`), names the same STS
/// endpoint as the report for each region and switch: irsa-doctor runs
/// the AWS SDK for Rust's own rules, and the two SDKs agree.
#[tokio::test]
async fn botocore_names_the_same_sts_endpoint_as_the_report() {
    let python = std::env::var("CYCLONEDX_PYTHON").expect("CYCLONEDX_PYTHON names .venv's python");
    const CASES: [(&str, bool, bool); 6] = [
        ("us-east-1", true, false),
        ("eu-west-1", true, false),
        ("us-west-2", true, true),
        ("eu-west-1", false, true),
        ("us-gov-west-1", true, false),
        ("cn-north-1", false, false),
    ];
    let script = r#"
import sys, botocore.session, botocore.config
region, fips, dual = sys.argv[1], sys.argv[2] == "true", sys.argv[3] == "true"
config = botocore.config.Config(use_fips_endpoint=fips, use_dualstack_endpoint=dual)
client = botocore.session.get_session().create_client(
    "sts", region_name=region, config=config,
    aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="example")
print(client.meta.endpoint_url)
"#;
    let vol = volume();
    for (region, fips, dual) in CASES {
        let (fips, dual) = (fips.to_string(), dual.to_string());
        let boto = std::process::Command::new(&python)
            .args(["-c", script, region, &fips, &dual])
            .env_clear()
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .unwrap();
        assert!(
            boto.status.success(),
            "{}",
            String::from_utf8_lossy(&boto.stderr)
        );
        let boto = String::from_utf8(boto.stdout).unwrap();
        let out = isolated(region, &vol)
            .env("IRSA_DOCTOR_TIMEOUT", "1s")
            .env("AWS_USE_FIPS_ENDPOINT", &fips)
            .env("AWS_USE_DUALSTACK_ENDPOINT", &dual)
            .json()
            .await;
        let ours = sts(&out, "endpoint");
        assert_eq!(
            ours.as_str().unwrap_or_default().trim_end_matches('/'),
            boto.trim(),
            "{region} fips={fips} dualstack={dual}"
        );
    }
}
