//! Black-box tests of `irsa-doctor explain`: the trust policy in each form
//! people have it (a file, stdin, `aws iam get-role` output, URL-encoded),
//! against a token file, claims given as flags, or Pod Identity's session
//! tags; the exit codes 0, 1 and 2; text and JSON. Offline: nothing here
//! opens a socket.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use testkit::jwt::{Jwt, TokenVolume, SIGNATURE};
use testkit::world::ISSUER;
use testkit::world::{ACCOUNT, NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};

fn provider() -> String {
    ISSUER.trim_start_matches("https://").to_owned()
}

fn irsa_policy(sub: &str) -> Value {
    let p = provider();
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{p}")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            format!("{p}:sub"): sub,
            format!("{p}:aud"): "sts.amazonaws.com"}}}]})
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn explain(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_irsa-doctor"))
        .arg("explain")
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // The binary stops reading at its bound; what it leaves is a broken
    // pipe here, not a failure.
    let _ = input.write_all(stdin.unwrap_or("").as_bytes());
    drop(input);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Asserts the exit code and that stdout holds each phrase.
fn assert_says(out: &Run, code: i32, phrases: &[&str]) {
    assert_eq!(out.code, code, "{}{}", out.stdout, out.stderr);
    for phrase in phrases {
        assert!(out.stdout.contains(phrase), "{phrase}: {}", out.stdout);
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_token_the_policy_admits_is_allowed_and_the_token_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let sub = format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}");
    let policy = write(&dir, "trust.json", &irsa_policy(&sub).to_string());
    let vol = TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode());
    let token = vol.path().display().to_string();
    let out = explain(
        &[
            "--policy",
            &policy,
            "--role-arn",
            ROLE_ARN,
            "--token",
            &token,
        ],
        None,
    );
    assert_says(
        &out,
        0,
        &[
            "irsa-doctor explain: ALLOWED for ",
            "statement 1, Allow: matches (sts:AssumeRoleWithWebIdentity)",
        ],
    );
    assert!(!out.stdout.contains(SIGNATURE) && !out.stderr.contains(SIGNATURE));
}

#[test]
fn get_role_output_on_stdin_with_a_wildcard_in_string_equals_is_denied_with_the_fix() {
    let policy = irsa_policy("system:serviceaccount:payments:*");
    let get_role = json!({"Role": {"RoleName": "app", "AssumeRolePolicyDocument": policy}});
    let sub = format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}");
    let out = explain(
        &[
            "--policy",
            "-",
            "--role-arn",
            ROLE_ARN,
            "--iss",
            ISSUER,
            "--sub",
            &sub,
            "--aud",
            "sts.amazonaws.com",
            "--output",
            "json",
        ],
        Some(&get_role.to_string()),
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "denied");
    let reason = v["statements"][0]["reason"].as_str().unwrap();
    assert_eq!(
        reason,
        format!(
            "StringEquals on {}:sub expects system:serviceaccount:payments:* but found {sub}: \
             StringEquals does not expand wildcards; use StringLike, which matches",
            provider()
        )
    );
    assert_eq!(
        v["corrected_statement"]["Condition"]["StringEquals"][format!("{}:sub", provider())],
        sub
    );
    assert_eq!(
        v["command"],
        "aws iam update-assume-role-policy --role-name app --policy-document file://trust.json"
    );
}

#[test]
fn a_url_encoded_irsa_policy_refuses_pod_identity_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let text = irsa_policy("system:serviceaccount:payments:app").to_string();
    let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
    let policy = write(&dir, "encoded.txt", &encoded);
    let out = explain(
        &[
            "--policy",
            &policy,
            "--role-arn",
            ROLE_ARN,
            "--pod-identity",
            "--cluster-name",
            "prod",
            "--cluster-arn",
            "arn:aws:eks:us-east-1:111122223333:cluster/prod",
            "--namespace",
            NAMESPACE,
            "--service-account",
            SERVICE_ACCOUNT,
        ],
        None,
    );
    assert_says(
        &out,
        1,
        &[
            "(a role made for IRSA)",
            r#""Service": "pods.eks.amazonaws.com""#,
            r#""aws:RequestTag/kubernetes-namespace": "payments""#,
        ],
    );
}

#[test]
fn unusable_inputs_are_usage_errors_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--iss", ISSUER, "--sub", "s", "--aud", "a"];
    let cases: Vec<(Vec<String>, Option<String>, &str)> = vec![
        (
            vec!["--policy".into(), "/nonexistent/trust.json".into()],
            None,
            "it does not exist",
        ),
        (
            vec!["--policy".into(), "/dev/zero".into()],
            None,
            "not a regular file",
        ),
        (
            vec!["--policy".into(), "-".into()],
            Some("x".repeat(70_000)),
            "more than 65536 bytes",
        ),
        (
            vec![
                "--policy".into(),
                write(&dir, "bad.json", "{\"Statement\": 3}"),
            ],
            None,
            "Statement is not a list",
        ),
        (
            vec![
                "--policy".into(),
                write(&dir, "ok.json", &irsa_policy("s").to_string()),
                "--token".into(),
                write(&dir, "t", "not-a-jwt"),
            ],
            None,
            "the token is not a JWT",
        ),
    ];
    for (args, stdin, phrase) in cases {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(["--role-arn", ROLE_ARN]);
        if !args.iter().any(|a| a == "--token") {
            all.extend(flags);
        }
        let out = explain(&all, stdin.as_deref());
        assert_eq!(out.code, 2, "{all:?}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(phrase), "{all:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    // No identity at all, and two at once, are clap's usage errors.
    let policy = write(&dir, "p.json", &irsa_policy("s").to_string());
    let out = explain(&["--policy", &policy, "--role-arn", ROLE_ARN], None);
    assert_eq!(out.code, 2);
    let out = explain(
        &[
            "--policy",
            &policy,
            "--role-arn",
            ROLE_ARN,
            "--iss",
            ISSUER,
            "--sub",
            "s",
            "--aud",
            "a",
            "--pod-identity",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
}
