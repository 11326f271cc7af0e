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

/// `explain` with `env` set as well: the old binary ignored variables it
/// did not know, so a test that sets them runs on it too and shows what
/// it used to say.
fn explain_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_irsa-doctor"))
        .arg("explain")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

const ASSOCIATION_ROLE: &str = "arn:aws:iam::111122223333:role/eks-hop";
const TARGET_ROLE: &str = "arn:aws:iam::444455556666:role/data-reader";
const CLUSTER_ARN: &str = "arn:aws:eks:us-east-1:111122223333:cluster/prod";

/// The Pod Identity flags for `payments/app` on the cluster `prod`.
fn pod_identity_flags(policy: &str) -> Vec<String> {
    [
        "--policy",
        policy,
        "--pod-identity",
        "--cluster-name",
        "prod",
        "--cluster-arn",
        CLUSTER_ARN,
        "--namespace",
        NAMESPACE,
        "--service-account",
        SERVICE_ACCOUNT,
    ]
    .map(str::to_owned)
    .to_vec()
}

fn pod_identity_policy(actions: Value, condition: Option<Value>) -> Value {
    let mut statement = json!({"Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": actions});
    if let Some(c) = condition {
        statement["Condition"] = c;
    }
    json!({"Version": "2012-10-17", "Statement": [statement]})
}

/// `aws iam get-role` output for `arn`, with `trust` as its policy.
fn get_role(arn: &str, trust: &Value) -> String {
    let name = arn.rsplit('/').next().unwrap();
    json!({"Role": {"RoleName": name, "Arn": arn, "AssumeRolePolicyDocument": trust}}).to_string()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Issue 24 §1, a false pass: the association's role trusts Pod Identity,
/// but the target role trusts another role. Asked about the first hop
/// only, `explain` said allowed; EKS fails at the second hop.
#[test]
fn a_target_role_that_does_not_trust_the_association_s_role_is_denied_at_the_second_hop() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(
        &dir,
        "first.json",
        &get_role(
            ASSOCIATION_ROLE,
            &pod_identity_policy(json!(["sts:AssumeRole", "sts:TagSession"]), None),
        ),
    );
    let target_trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:role/someone-else"},
        "Action": ["sts:AssumeRole", "sts:TagSession"]}]});
    let target = write(&dir, "target.json", &target_trust.to_string());
    let env = [
        ("IRSA_DOCTOR_TARGET_ROLE_ARN", TARGET_ROLE),
        ("IRSA_DOCTOR_TARGET_POLICY", target.as_str()),
    ];
    let mut args = pod_identity_flags(&first);
    args.extend(["--role-arn".into(), ASSOCIATION_ROLE.into()]);
    let out = explain_env(&strs(&args), &env);
    assert_says(
        &out,
        1,
        &[
            "DENIED",
            "hop 2, the target role arn:aws:iam::444455556666:role/data-reader",
            "denied at the target role's hop",
            &format!(r#""AWS": "{ASSOCIATION_ROLE}""#),
            "--role-name data-reader",
        ],
    );
    args.extend(["--output".into(), "json".into()]);
    let out = explain_env(&strs(&args), &env);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "denied");
    assert_eq!(v["allowed"], true, "the first hop is allowed: {v:#}");
    assert_eq!(v["denied_hop"], "target role");
    assert_eq!(v["target"]["allowed"], false);
    assert_eq!(v["target"]["request"]["principal_type"], "AWS");
    assert_eq!(
        v["target"]["request"]["context"]["aws:PrincipalArn"][0],
        ASSOCIATION_ROLE
    );
}

/// Issue 24 §1, a false fail: `aws iam get-role` output names its role,
/// so `--role-arn` is not needed (the old binary refused to run, exit 2);
/// a target role that trusts the association's account with an
/// `ArnEquals` on `aws:PrincipalArn` admits the first hop's role.
#[test]
fn get_role_output_names_the_role_and_an_account_principal_with_arn_equals_admits_the_hop() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(
        &dir,
        "first.json",
        &get_role(
            ASSOCIATION_ROLE,
            &pod_identity_policy(json!(["sts:AssumeRole", "sts:TagSession"]), None),
        ),
    );
    let target_trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"ArnEquals": {"aws:PrincipalArn": ASSOCIATION_ROLE}}}]});
    let target = write(&dir, "target.json", &get_role(TARGET_ROLE, &target_trust));
    let out = explain_env(
        &strs(&pod_identity_flags(&first)),
        &[("IRSA_DOCTOR_TARGET_POLICY", target.as_str())],
    );
    assert_says(
        &out,
        0,
        &[
            &format!("ALLOWED for {ASSOCIATION_ROLE}"),
            &format!("hop 2, the target role {TARGET_ROLE}"),
        ],
    );
    // A --role-arn that the get-role output contradicts is said to.
    let mut args = pod_identity_flags(&first);
    args.extend(["--role-arn".into(), ROLE_ARN.into()]);
    let out = explain_env(&strs(&args), &[]);
    assert_says(
        &out,
        0,
        &[&format!(
            "note: the policy given is the trust policy of {ASSOCIATION_ROLE} (its Role.Arn), not of {ROLE_ARN}"
        )],
    );
    // IRSA still needs a role: its account names the OIDC provider.
    let plain = write(&dir, "irsa.json", &irsa_policy("s").to_string());
    let out = explain_env(
        &[
            "--policy", &plain, "--iss", ISSUER, "--sub", "s", "--aud", "a",
        ],
        &[],
    );
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("--role-arn is required for IRSA"),
        "{}",
        out.stderr
    );
}

/// Issue 24 §2, a false pass: with session tags disabled, a trust
/// condition on `aws:RequestTag/...` cannot hold; the old binary
/// evaluated the tags anyway and said allowed.
#[test]
fn with_session_tags_disabled_a_tag_condition_denies_and_is_named_as_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let condition = json!({"StringEquals": {"aws:RequestTag/kubernetes-namespace": NAMESPACE}});
    let trust = pod_identity_policy(json!(["sts:AssumeRole", "sts:TagSession"]), Some(condition));
    let policy = write(&dir, "trust.json", &trust.to_string());
    let mut args = pod_identity_flags(&policy);
    args.extend(["--role-arn".into(), ROLE_ARN.into()]);
    let out = explain_env(&strs(&args), &[("IRSA_DOCTOR_SESSION_TAGS", "disabled")]);
    assert_says(
        &out,
        1,
        &[
            "session tags disabled: no tag is sent",
            "the association's session tags are disabled (--session-tags disabled)",
        ],
    );
    assert!(
        !out.stdout
            .contains("aws:RequestTag/kubernetes-namespace = "),
        "{}",
        out.stdout
    );
    // Tags on, as before: allowed.
    let out = explain_env(&strs(&args), &[]);
    assert_says(&out, 0, &["ALLOWED"]);
}

/// Issue 24 §2, a false fail: with no tag to send, EKS asks for
/// `sts:AssumeRole` alone (STS asks for `sts:TagSession` only of a request
/// that carries tags), so a role trusting only that admits the pod; the
/// old binary still demanded `sts:TagSession`. The target role's hop then
/// carries `sts:ExternalId`.
#[test]
fn with_session_tags_disabled_assume_role_alone_and_an_external_id_admit_both_hops() {
    let dir = tempfile::tempdir().unwrap();
    let trust = pod_identity_policy(json!("sts:AssumeRole"), None);
    let policy = write(&dir, "trust.json", &trust.to_string());
    let mut args = pod_identity_flags(&policy);
    args.extend(["--role-arn".into(), ASSOCIATION_ROLE.into()]);
    let out = explain_env(&strs(&args), &[("IRSA_DOCTOR_SESSION_TAGS", "disabled")]);
    assert_says(&out, 0, &["ALLOWED", "asks for sts:AssumeRole\n"]);

    let id = "us-east-1/111122223333/prod/payments/app";
    let target_trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": ASSOCIATION_ROLE}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": id}}}]});
    let target = write(&dir, "target.json", &target_trust.to_string());
    let mut with_target = args.clone();
    with_target.extend([
        "--session-tags".into(),
        "disabled".into(),
        "--target-role-arn".into(),
        TARGET_ROLE.into(),
        "--target-policy".into(),
        target.clone(),
    ]);
    // No external ID given: it is not guessed (the form the user guide
    // gives is unverified, and a wrong guess would pass a trust EKS then
    // refuses); the condition denies and the reason asks for it.
    let out = explain_env(&strs(&with_target), &[]);
    assert_says(
        &out,
        1,
        &["denied at the target role's hop", "--external-id"],
    );
    // The association's own external ID admits the hop.
    let mut given = with_target.clone();
    given.extend(["--external-id".into(), id.into()]);
    let out = explain_env(&strs(&given), &[]);
    assert_says(&out, 0, &["ALLOWED", "sts:ExternalId = us-east-1/"]);
    // Another external ID: the second hop denies, and says so.
    with_target.extend(["--external-id".into(), "something-else".into()]);
    let out = explain_env(&strs(&with_target), &[]);
    assert_says(
        &out,
        1,
        &["denied at the target role's hop", "sts:ExternalId", id],
    );
}

/// `--policy -` and `--target-policy -` both read stdin: the second read
/// saw nothing and was reported as a policy that is not JSON. Said as it
/// is instead.
#[test]
fn both_policies_on_stdin_is_a_usage_error_that_says_so() {
    let trust = pod_identity_policy(json!(["sts:AssumeRole", "sts:TagSession"]), None);
    let mut args = pod_identity_flags("-");
    args.extend([
        "--role-arn".into(),
        ASSOCIATION_ROLE.into(),
        "--target-policy".into(),
        "-".into(),
    ]);
    let out = explain(&strs(&args), Some(&trust.to_string()));
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("--policy and --target-policy cannot both read stdin"),
        "{}",
        out.stderr
    );
}

/// The Pod Identity run with a target role whose trust is `target_trust`,
/// and `extra` flags; `(text run, JSON run)`.
fn with_target(dir: &tempfile::TempDir, target_trust: &Value, extra: &[&str]) -> (Run, Value) {
    let first = write(
        dir,
        "first.json",
        &get_role(
            ASSOCIATION_ROLE,
            &pod_identity_policy(json!(["sts:AssumeRole", "sts:TagSession"]), None),
        ),
    );
    let target = write(dir, "target.json", &get_role(TARGET_ROLE, target_trust));
    let mut args = pod_identity_flags(&first);
    args.extend(["--target-policy".into(), target]);
    for pair in extra.chunks(2) {
        // A flag the defaults already give is replaced, not repeated.
        match args.iter().position(|a| a == pair[0]) {
            Some(at) => args[at + 1] = pair[1].to_owned(),
            None => args.extend(pair.iter().map(|s| (*s).to_owned())),
        }
    }
    let out = explain_env(&strs(&args), &[]);
    args.extend(["--output".into(), "json".into()]);
    let json = explain_env(&strs(&args), &[]);
    let v: Value = serde_json::from_str(&json.stdout)
        .unwrap_or_else(|_| panic!("{}{}", json.stdout, json.stderr));
    (out, v)
}

/// Issue 24 §1, a false fail: the association role's session carries
/// EKS's session tags, which STS gives the target hop as
/// `aws:PrincipalTag/...`; a target trust scoped to the namespace by one
/// admits the pod. The old binary had no principal tag in the hop and
/// denied it. With the tags disabled, the session has none: denied, and
/// the reason says why.
#[test]
fn a_target_trust_on_a_principal_tag_admits_the_tagged_first_session() {
    let dir = tempfile::tempdir().unwrap();
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringEquals": {"aws:PrincipalTag/kubernetes-namespace": NAMESPACE}}}]});
    let (out, v) = with_target(&dir, &trust, &[]);
    assert_says(
        &out,
        0,
        &["ALLOWED", &format!("hop 2, the target role {TARGET_ROLE}")],
    );
    assert_eq!(
        v["target"]["request"]["context"]["aws:PrincipalTag/kubernetes-namespace"][0],
        NAMESPACE
    );
    // Another namespace's tag: denied at the second hop.
    let (out, _) = with_target(&dir, &trust, &["--namespace", "other"]);
    assert_says(&out, 1, &["denied at the target role's hop", "other"]);
    // Tags disabled: the first session has no tag at all.
    let untagged = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": ASSOCIATION_ROLE}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:PrincipalTag/kubernetes-namespace": NAMESPACE}}}]});
    let (out, v) = with_target(&dir, &untagged, &["--session-tags", "disabled"]);
    assert_says(
        &out,
        1,
        &["denied at the target role's hop", "session has no tag"],
    );
    assert!(v["target"]["request"]["context"]
        .get("aws:PrincipalTag/kubernetes-namespace")
        .is_none());
}

/// Issue 24 §1, a false pass: a target trust that admits the cluster's
/// account except for one namespace (`StringNotEqualsIfExists` on a
/// principal tag) was allowed for that very namespace, since the old hop
/// had no principal tag and `IfExists` held; STS denies it.
#[test]
fn a_target_trust_excluding_the_pod_s_namespace_by_principal_tag_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringNotEqualsIfExists":
            {"aws:PrincipalTag/kubernetes-namespace": "kube-system"}}}]});
    let (out, v) = with_target(&dir, &trust, &["--namespace", "kube-system"]);
    assert_says(&out, 1, &["denied at the target role's hop", "kube-system"]);
    assert_eq!(v["denied_hop"], "target role");
    let (out, _) = with_target(&dir, &trust, &[]);
    assert_says(&out, 0, &["ALLOWED"]);
}

/// `aws:PrincipalOrgID` cannot be known from a pod: a target trust on it
/// is denied (never guessed), and the reason says irsa-doctor cannot know
/// it and how to look it up, instead of blaming the request.
#[test]
fn a_target_trust_on_the_principal_s_organization_is_named_unknowable() {
    let dir = tempfile::tempdir().unwrap();
    for key in ["aws:PrincipalOrgID", "aws:PrincipalOrgPaths"] {
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "*"}, "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"StringLike": {key: "o-abc123*"}}}]});
        let (out, _) = with_target(&dir, &trust, &[]);
        assert_says(
            &out,
            1,
            &[
                "denied at the target role's hop",
                "cannot know",
                "aws organizations describe-organization",
            ],
        );
    }
}

/// Issue 24 §1, a false pass: IAM's ARN operators match each of the six
/// colon-separated components, so `arn:aws:iam::*` (four) matches no role;
/// the old whole-string match admitted the hop. The reason names the rule.
#[test]
fn an_arn_like_pattern_short_of_six_components_admits_no_role() {
    let dir = tempfile::tempdir().unwrap();
    let trust = |pattern: &str| {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "*"}, "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"ArnLike": {"aws:PrincipalArn": pattern}}}]})
    };
    let (out, _) = with_target(&dir, &trust("arn:aws:iam::*"), &[]);
    assert_says(
        &out,
        1,
        &[
            "denied at the target role's hop",
            "six colon-separated components",
        ],
    );
    let (out, _) = with_target(&dir, &trust("arn:aws:iam::*:role/eks-*"), &[]);
    assert_says(&out, 0, &["ALLOWED"]);
}
