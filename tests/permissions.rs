//! `--require`, black-box: the real binary against the kit's STS stand-in,
//! which also emulates IAM's `SimulatePrincipalPolicy` from configured
//! policies (identity statements, a permissions boundary, SCPs), and checks
//! that each request is SigV4-signed for `iam` with the pod's own session.
//!
//! moto (5.2.5, the version .ci/run installs) does not implement
//! `SimulatePrincipalPolicy`, so there is no cross-check against it.

use serde_json::Value;
use testkit::agent::Agent;
use testkit::fake_aws::{
    FakeAws, FakeAwsServer, IamFault, Stmt, SECRET_PREFIX, SESSION_TOKEN_PREFIX,
};
use testkit::jwt::{good_token, Jwt, TokenVolume};
use testkit::serving::metric;
use testkit::world::{NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{doctor, Doctor, Outcome};

const OBJECTS: &str = "s3:GetObject@arn:aws:s3:::orders/*";
const QUEUE: &str = "sqs:SendMessage@arn:aws:sqs:eu-west-1:111122223333:orders";

fn pod(sts: &FakeAwsServer, volume: &TokenVolume) -> Doctor {
    doctor!(&sts.url()).irsa(ROLE_ARN, &volume.path())
}

/// `check --output json` for a healthy IRSA pod, with `--require` for each
/// of `required`.
async fn check(sts: &FakeAwsServer, required: &[&str]) -> Outcome {
    let volume = TokenVolume::new(&good_token());
    let mut d = pod(sts, &volume).arg("--output").arg("json");
    for r in required {
        d = d.arg("--require").arg(r);
    }
    d.run().await
}

/// The role may read the bucket and send to the queue.
fn grant(sts: &FakeAwsServer) {
    sts.aws.set_permissions(
        ROLE_ARN,
        vec![
            Stmt::allow("orders-read", "s3:Get*", "arn:aws:s3:::orders/*"),
            Stmt::allow(
                "orders-queue",
                "sqs:SendMessage",
                "arn:aws:sqs:*:111122223333:orders",
            ),
        ],
    );
}

/// Asserts that the finding's `field` contains `text`.
#[track_caller]
fn says(finding: &Value, field: &str, text: &str) {
    let value = finding[field].as_str().unwrap_or_default();
    assert!(value.contains(text), "{field} lacks {text:?}: {finding:#}");
}

fn results(report: &Value) -> Vec<(String, String)> {
    report["permissions"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!(
                    "{}@{}",
                    r["action"].as_str().unwrap(),
                    r["resource"].as_str().unwrap()
                ),
                r["decision"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn allowed_actions_pass_with_one_signed_request_about_the_role_with_its_path() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    let out = check(&sts, &[OBJECTS, QUEUE]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["verdict"], "pass");
    let p = &report["permissions"];
    assert_eq!(p["evaluated"], true, "{p:#}");
    assert_eq!(p["source_arn"], ROLE_ARN);
    assert_eq!(p["requests"], 1);
    assert_eq!(p["required"], serde_json::json!([OBJECTS, QUEUE]));
    assert!(p["not_covered"]
        .as_str()
        .unwrap()
        .contains("bucket policies"));
    assert_eq!(
        p["results"][0]["matched_statements"][0],
        "orders-read (IAM Policy)"
    );
    assert_eq!(
        results(&report),
        [
            (OBJECTS.to_owned(), "allowed".to_owned()),
            (QUEUE.to_owned(), "allowed".to_owned()),
        ]
    );
    // One request, signed with the session STS gave the pod (the stand-in
    // verifies the signature, the session token and the `iam` scope), about
    // the role with its path (which the assumed-role ARN drops).
    assert_eq!(sts.aws.simulate_calls(), 1);
    assert_eq!(sts.aws.simulated_sources(), [ROLE_ARN]);
}

#[tokio::test]
async fn the_text_report_says_what_a_pass_does_not_prove() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    let volume = TokenVolume::new(&good_token());
    let out = pod(&sts, &volume).arg("--require").arg(OBJECTS).run().await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let row = out
        .stdout
        .lines()
        .find(|l| l.contains("permissions"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(row.contains("ok"), "{row}");
    assert!(row.contains("1 of 1 required allowed"), "{row}");
    assert!(row.contains("resource policies not evaluated"), "{row}");
}

#[tokio::test]
async fn an_implicit_deny_fails_with_the_minimal_statement_to_add() {
    let sts = FakeAws::healthy().await;
    sts.aws.set_permissions(
        ROLE_ARN,
        vec![Stmt::allow("orders-queue", "sqs:SendMessage", "*")],
    );
    let out = check(&sts, &[OBJECTS, QUEUE]).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), ["PERMISSION_DENIED"]);
    let f = out.finding("PERMISSION_DENIED");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("may not s3:GetObject on arn:aws:s3:::orders/*"),
        "{message}"
    );
    assert!(message.contains("implicit deny"), "{message}");
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        remedy.contains(r#""Resource": "arn:aws:s3:::orders/*""#),
        "{remedy}"
    );
    assert!(
        remedy.contains("aws iam put-role-policy --role-name app --policy-name allow-s3-GetObject"),
        "{remedy}"
    );
    let report = out.json();
    assert_eq!(
        results(&report),
        [
            (OBJECTS.to_owned(), "implicit_deny".to_owned()),
            (QUEUE.to_owned(), "allowed".to_owned()),
        ]
    );
}

#[tokio::test]
async fn an_explicit_deny_names_the_statement_and_wins_over_an_allow() {
    let sts = FakeAws::healthy().await;
    sts.aws.set_permissions(
        ROLE_ARN,
        vec![
            Stmt::allow("s3-all", "s3:*", "*"),
            Stmt::deny("no-orders", "s3:GetObject", "arn:aws:s3:::orders/*"),
        ],
    );
    let out = check(&sts, &[OBJECTS]).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("PERMISSION_DENIED");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("a Deny statement denies it (no-orders (IAM Policy))"),
        "{message}"
    );
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        remedy.contains("an Allow never overrides an explicit Deny"),
        "{remedy}"
    );
    assert_eq!(results(&out.json())[0].1, "explicit_deny");
}

#[tokio::test]
async fn a_boundary_or_an_scp_denial_names_the_layer_the_role_cannot_fix() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    sts.aws
        .set_boundary(ROLE_ARN, vec![Stmt::allow("boundary", "sqs:*", "*")]);
    let out = check(&sts, &[OBJECTS]).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("PERMISSION_DENIED");
    says(&f, "message", "permissions boundary");
    says(&f, "remedy", "this role's own policies cannot fix that");
    assert_eq!(
        out.json()["permissions"]["results"][0]["permissions_boundary_allows"],
        false
    );

    let sts = FakeAws::healthy().await;
    grant(&sts);
    sts.aws.set_scp(vec![
        Stmt::deny("no-s3", "s3:*", "*"),
        Stmt::allow("all", "*", "*"),
    ]);
    let out = check(&sts, &[OBJECTS, QUEUE]).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("PERMISSION_DENIED");
    says(&f, "message", "service control policy");
    says(
        &f,
        "remedy",
        "list-policies-for-target --target-id 111122223333",
    );
    let report = out.json();
    assert_eq!(
        report["permissions"]["results"][0]["organizations_allow"],
        false
    );
    // The SCP allows the queue: only the bucket is denied.
    assert_eq!(results(&report)[1].1, "allowed");
}

#[tokio::test]
async fn a_role_that_may_not_simulate_gets_a_warning_and_the_pod_passes() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    sts.aws.refuse_simulation();
    let out = check(&sts, &[OBJECTS]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["verdict"], "pass");
    let f = out.finding("PERMISSIONS_UNVERIFIABLE");
    assert_eq!(f["severity"], "warning");
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        remedy.contains(r#""Action": "iam:SimulatePrincipalPolicy""#),
        "{remedy}"
    );
    assert!(
        remedy.contains(&format!(r#""Resource": "{ROLE_ARN}""#)),
        "{remedy}"
    );
    assert_eq!(report["permissions"]["evaluated"], false);
}

#[tokio::test]
async fn throttling_is_retried_once_and_persistent_throttling_is_inconclusive() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    sts.aws.fail_iam_next(1, IamFault::Throttle);
    let out = check(&sts, &[OBJECTS]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["permissions"]["requests"], 2);

    // IAM's limits are the account's: a check asks at most twice, however
    // long its --timeout.
    let sts = FakeAws::healthy().await;
    grant(&sts);
    sts.aws.fail_iam_next(1000, IamFault::Throttle);
    let out = check(&sts, &[OBJECTS]).await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), ["IAM_THROTTLED"], "{}", out.stdout);
    assert_eq!(sts.aws.simulate_calls(), 2);
}

/// IAM's older answers, one result per action and resource, are read
/// as its current ones are.
#[tokio::test]
async fn answers_of_one_result_per_action_and_resource_are_read_too() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    sts.aws.iam_per_pair_answers();
    let put = "s3:PutObject@arn:aws:s3:::orders/*";
    let get_queue = "s3:GetObject@arn:aws:sqs:eu-west-1:111122223333:orders";
    let out = check(&sts, &[OBJECTS, QUEUE, put, get_queue]).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        results(&out.json()),
        [
            (OBJECTS.to_owned(), "allowed".to_owned()),
            (QUEUE.to_owned(), "allowed".to_owned()),
            (put.to_owned(), "implicit_deny".to_owned()),
            (get_queue.to_owned(), "implicit_deny".to_owned()),
        ]
    );
}

/// A policy scoped by EKS Pod Identity's session tags: the simulation is
/// given the tags the pod's token names, so the Pod Identity pod passes;
/// an IRSA session has no tags, and a deny that only the missing value
/// explains is a warning, not a failure.
#[tokio::test]
async fn conditions_on_session_tags_are_judged_with_the_pod_s_own_values() {
    let sts = FakeAws::healthy().await;
    let by_namespace = Stmt::allow("by-namespace", "s3:GetObject", "arn:aws:s3:::orders/*")
        .when("aws:PrincipalTag/kubernetes-namespace", NAMESPACE);
    sts.aws.set_permissions(ROLE_ARN, vec![by_namespace]);
    let agent = Agent::healthy(&sts.aws).await;
    let volume =
        TokenVolume::pod_identity(&Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode());
    let out = doctor!(&sts.url())
        .pod_identity(&agent.url(), &volume.path())
        .args(&[
            "--output",
            "json",
            "--require",
            OBJECTS,
            "--expected-role-arn",
            ROLE_ARN,
        ])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(results(&out.json())[0].1, "allowed");

    let out = check(&sts, &[OBJECTS]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("PERMISSION_DENIED");
    assert_eq!(f["severity"], "warning", "{f:#}");
    says(&f, "message", "aws:PrincipalTag/kubernetes-namespace");
    let report = out.json();
    assert_eq!(
        report["permissions"]["results"][0]["missing_context_values"][0],
        "aws:PrincipalTag/kubernetes-namespace"
    );
}

#[tokio::test]
async fn an_unreachable_iam_is_inconclusive_and_says_iam_is_global() {
    let sts = FakeAws::healthy().await;
    let closed = testkit::agent::refused_url();
    let volume = TokenVolume::new(&good_token());
    let out = pod(&sts, &volume)
        .env("AWS_ENDPOINT_URL_IAM", &closed)
        .env("IRSA_DOCTOR_TIMEOUT", "2s")
        .args(&["--output", "json", "--require", OBJECTS])
        .run()
        .await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("IAM_UNREACHABLE");
    let remedy = f["remedy"].as_str().unwrap();
    assert!(remedy.contains("IAM is a global service"), "{remedy}");
    let endpoint = out.json()["permissions"]["endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(endpoint.starts_with(&closed), "{endpoint}");
}

#[tokio::test]
async fn an_answer_that_is_not_iam_s_is_an_iam_error() {
    let sts = FakeAws::healthy().await;
    sts.aws.fail_iam_next(1, IamFault::Garbage);
    let out = check(&sts, &[OBJECTS]).await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), ["IAM_ERROR"]);
}

#[tokio::test]
async fn results_on_several_pages_are_all_read() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    sts.aws.iam_page_size(1);
    let put = "s3:PutObject@arn:aws:s3:::orders/*";
    let out = check(&sts, &[OBJECTS, QUEUE, put]).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["permissions"]["requests"], 3);
    assert_eq!(sts.aws.simulate_calls(), 3);
    assert_eq!(
        results(&report),
        [
            (OBJECTS.to_owned(), "allowed".to_owned()),
            (QUEUE.to_owned(), "allowed".to_owned()),
            (put.to_owned(), "implicit_deny".to_owned()),
        ]
    );
}

#[tokio::test]
async fn malformed_entries_are_usage_errors_that_name_the_entry() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let out = pod(&sts, &volume)
        .args(&["--require", "s3:Get*"])
        .run()
        .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(r#"the entry "s3:Get*" has action"#),
        "{}",
        out.stderr
    );
    let out = pod(&sts, &volume)
        .env("IRSA_DOCTOR_REQUIRE", &format!("{OBJECTS},orders"))
        .run()
        .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(r#"the entry "orders""#),
        "{}",
        out.stderr
    );
    assert_eq!(
        sts.aws.assume_calls(),
        0,
        "nothing is checked on a usage error"
    );
}

#[tokio::test]
async fn the_variable_takes_a_comma_separated_list() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    let volume = TokenVolume::new(&good_token());
    let out = pod(&sts, &volume)
        .env("IRSA_DOCTOR_REQUIRE", &format!("{OBJECTS}, {QUEUE}"))
        .args(&["--output", "json"])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(results(&out.json()).len(), 2);
}

#[tokio::test]
async fn pod_identity_simulates_the_expected_role_with_the_agent_s_credentials() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    let agent = Agent::healthy(&sts.aws).await;
    let volume =
        TokenVolume::pod_identity(&Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode());
    let pi = || {
        doctor!(&sts.url())
            .pod_identity(&agent.url(), &volume.path())
            .args(&["--output", "json", "--require", OBJECTS])
    };
    let out = pi().args(&["--expected-role-arn", ROLE_ARN]).run().await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["permissions"]["source_arn"], ROLE_ARN);

    // Without it, the role's path is unknown: IAM does not find the role,
    // and the finding says to give its full ARN.
    let out = pi().run().await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("IAM_ERROR");
    says(&f, "remedy", "--expected-role-arn");
    assert_eq!(
        sts.aws.simulated_sources(),
        [ROLE_ARN, "arn:aws:iam::111122223333:role/app"]
    );
}

#[tokio::test]
async fn no_request_is_made_when_the_identity_is_not_proven() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&Jwt::for_sa(NAMESPACE, "other").encode());
    let out = pod(&sts, &volume)
        .args(&["--output", "json", "--require", OBJECTS])
        .run()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.codes().contains(&"PERMISSION_DENIED".to_owned()));
    let p = &out.json()["permissions"];
    assert_eq!(p["evaluated"], false);
    assert!(
        p["not_evaluated_reason"]
            .as_str()
            .unwrap()
            .contains("not proven"),
        "{p:#}"
    );
    assert_eq!(sts.aws.simulate_calls(), 0);
}

#[tokio::test]
async fn the_credentials_used_to_sign_never_appear_in_any_output() {
    let sts = FakeAws::healthy().await;
    sts.aws.set_permissions(ROLE_ARN, vec![]);
    for format in ["text", "json"] {
        let volume = TokenVolume::new(&good_token());
        let out = pod(&sts, &volume)
            .env("RUST_LOG", "trace")
            .args(&[
                "--log-format",
                format,
                "--output",
                format,
                "--require",
                OBJECTS,
            ])
            .run()
            .await;
        assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
        let all = out.all_output();
        assert!(
            all.contains("SimulatePrincipalPolicy"),
            "trace logs show the call"
        );
        for secret in [SECRET_PREFIX, SESSION_TOKEN_PREFIX] {
            assert!(!all.contains(secret), "{format}: {secret} leaked");
        }
        let token = std::fs::read_to_string(volume.path()).unwrap();
        assert!(!all.contains(token.trim()), "{format}: the token leaked");
    }
}

#[tokio::test]
async fn serve_asks_iam_at_start_and_again_only_after_a_token_rotation() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    let mut volume = TokenVolume::new(&good_token());
    let serving = pod(&sts, &volume)
        .env("IRSA_DOCTOR_TIMEOUT", "3s")
        .args(&["--interval", "1s", "--require", OBJECTS])
        .serve()
        .await;
    let wait_checks = |n: u64| {
        let sts = &sts;
        async move {
            let before = sts.aws.our_assume_calls();
            testkit::serving::until(&format!("{n} more checks"), || {
                sts.aws.our_assume_calls() >= before + n
            })
            .await;
        }
    };
    wait_checks(4).await;
    assert_eq!(sts.aws.simulate_calls(), 1, "{}", serving.logs());
    let status = serving.get("/status").await.json();
    let p = &status["permissions"];
    assert_eq!(p["requests"], 0, "{status:#}");
    assert!(p["reused_since"].as_str().unwrap().ends_with('Z'), "{p:#}");
    let metrics = serving.get("/metrics").await.body;
    // The session that signed IAM's request shows in neither answer, nor
    // in the logs.
    let shown = format!("{status} {metrics} {}", serving.logs());
    for secret in [SECRET_PREFIX, SESSION_TOKEN_PREFIX] {
        assert!(!shown.contains(secret), "{secret} leaked");
    }
    assert_eq!(
        metric(
            &metrics,
            r#"irsa_doctor_iam_requests_total{outcome="success"}"#
        ),
        1
    );

    volume.rotate(&good_token());
    testkit::serving::until("a second simulation", || sts.aws.simulate_calls() == 2).await;
    wait_checks(3).await;
    assert_eq!(sts.aws.simulate_calls(), 2, "{}", serving.logs());
}

/// IAM behind a front that misbehaves at the socket level: every fault ends
/// by `--timeout`, inconclusive, with no secret in any output.
#[tokio::test]
async fn iam_socket_faults_end_by_the_deadline_and_are_inconclusive() {
    use testkit::faulty::{Faulty, Wire};
    let faults = [
        (Wire::Refuse, "IAM_UNREACHABLE"),
        (Wire::Silent, "IAM_UNREACHABLE"),
        (Wire::HeadThenStall, "IAM_UNREACHABLE"),
        (Wire::Trickle, "IAM_UNREACHABLE"),
        (Wire::Endless, "IAM_ERROR"),
        (Wire::ResetMidBody, "IAM_ERROR"),
        (
            Wire::canned("200 OK", "text/html", "<html>blocked</html>"),
            "IAM_ERROR",
        ),
    ];
    let mut runs = tokio::task::JoinSet::new();
    for (wire, code) in faults {
        runs.spawn(async move {
            let sts = FakeAws::healthy().await;
            grant(&sts);
            let upstream = sts.url().split('/').nth(2).unwrap().parse().unwrap();
            let front = Faulty::front(upstream, Some(wire.clone())).await;
            let volume = TokenVolume::new(&good_token());
            let started = std::time::Instant::now();
            let out = pod(&sts, &volume)
                .env("AWS_ENDPOINT_URL_IAM", &front.url())
                .env("IRSA_DOCTOR_TIMEOUT", "4s")
                .args(&["--output", "json", "--require", OBJECTS])
                .run()
                .await;
            let took = started.elapsed();
            (
                format!("{wire:?}").chars().take(40).collect::<String>(),
                code,
                out,
                took,
            )
        });
    }
    while let Some(done) = runs.join_next().await {
        let (wire, code, out, took) = done.unwrap();
        assert_eq!(out.code, 3, "{wire}: {}\n{}", out.stdout, out.stderr);
        assert_eq!(out.codes(), [code], "{wire}: {}", out.stdout);
        assert!(
            took < std::time::Duration::from_secs(9),
            "{wire}: took {took:?} with a 4 s --timeout"
        );
        let all = out.all_output();
        for secret in [SECRET_PREFIX, SESSION_TOKEN_PREFIX] {
            assert!(!all.contains(secret), "{wire}: {secret} leaked");
        }
    }
}

/// `AWS_ENDPOINT_URL` alone (no `AWS_ENDPOINT_URL_IAM`) sends IAM's
/// request where it sends every service's, as the app's SDK would.
#[tokio::test]
async fn the_generic_endpoint_variable_is_honoured_for_iam() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    let volume = TokenVolume::new(&good_token());
    let out = pod(&sts, &volume)
        .unset("AWS_ENDPOINT_URL_IAM")
        .env("AWS_ENDPOINT_URL", &sts.url())
        .args(&["--output", "json", "--require", OBJECTS])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(sts.aws.simulate_calls(), 1);
}

/// IAM's request goes through `HTTP_PROXY` as STS's does: the endpoint's
/// `.invalid` host cannot resolve, so a pass went through the proxy.
#[tokio::test]
async fn iam_behind_a_proxy_is_reached_through_it() {
    use testkit::proxy::{Mode, Proxy};
    let sts = FakeAws::healthy().await;
    grant(&sts);
    let proxy = Proxy::start(Mode::Forward(sts.server.addr)).await;
    let volume = TokenVolume::new(&good_token());
    let out = pod(&sts, &volume)
        .env("AWS_ENDPOINT_URL_IAM", "http://iam.example.invalid")
        .env("HTTP_PROXY", &proxy.url())
        .env("NO_PROXY", "127.0.0.1")
        .args(&["--output", "json", "--require", OBJECTS])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.starts_with("POST http://iam.example.invalid/")),
        "{:?}",
        proxy.requests()
    );
}

/// A malformed IAM endpoint is IAM's problem alone: the identity still
/// passes its steps; with `--require` the setting is `ENDPOINT_INVALID`,
/// judged before IAM is asked (as STS's is; a port `http::Uri` cannot read
/// once sent the signed request to port 80), and no credential shows.
#[tokio::test]
async fn a_malformed_iam_endpoint_is_endpoint_invalid_and_leaks_nothing() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let out = pod(&sts, &volume)
        .env("AWS_ENDPOINT_URL_IAM", "https//iam.example.invalid")
        .env("RUST_LOG", "trace")
        .args(&["--output", "json", "--require", OBJECTS])
        .run()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), ["ENDPOINT_INVALID"], "{}", out.stdout);
    assert_eq!(out.json()["permissions"]["requests"], 0);
    assert!(out.json()["assumed_role_arn"].is_string(), "{}", out.stdout);
    let all = out.all_output();
    for secret in [SECRET_PREFIX, SESSION_TOKEN_PREFIX] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
}

/// `exec` takes `--require` too: a denied action keeps the app from
/// starting (`--on-fail exit`, the default), an allowed one lets it start.
#[tokio::test]
async fn exec_starts_the_app_only_when_the_role_may_do_what_it_needs() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    let volume = TokenVolume::new(&good_token());
    let exec = |required: &str| {
        pod(&sts, &volume)
            .subcommand("exec")
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .args(&["--require", required, "--", "echo", "APP-STARTED"])
    };
    let out = exec(OBJECTS).run().await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "APP-STARTED\n");
    let out = exec("s3:PutObject@arn:aws:s3:::orders/*").run().await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stdout, "", "the app must not start");
    assert!(out.stderr.contains("PERMISSION_DENIED"), "{}", out.stderr);
}

// Issue 24 §3: an EKS Pod Identity association's session policy. The pod
// gets the intersection of the role's policies and that policy; IAM's
// `SimulatePrincipalPolicy` does not see it, `SimulateCustomPolicy` judges
// it alone.

/// Reads the bucket only: no queue.
const READ_ONLY_SESSION: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"read","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::orders/*"}]}"#;

/// A Pod Identity pod acting as `ROLE_ARN`.
fn pod_identity_pod(sts: &FakeAwsServer, agent: &str, volume: &TokenVolume) -> Doctor {
    doctor!(&sts.url())
        .pod_identity(agent, &volume.path())
        .args(&["--expected-role-arn", ROLE_ARN])
}

/// `check --output json` for that pod.
fn pod_identity_check(sts: &FakeAwsServer, agent: &str, volume: &TokenVolume) -> Doctor {
    pod_identity_pod(sts, agent, volume).args(&["--output", "json"])
}

fn pod_identity_volume() -> TokenVolume {
    TokenVolume::pod_identity(&Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode())
}

/// The false pass: the role allows sending to the queue, the association's
/// session policy does not, and the app gets AccessDenied. Given through
/// the variable, which the binary before issue 24 ignored and passed.
#[tokio::test]
async fn a_session_policy_that_does_not_allow_an_entry_fails_though_the_role_allows_it() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    let agent = Agent::healthy(&sts.aws).await;
    let volume = pod_identity_volume();
    let out = pod_identity_check(&sts, &agent.url(), &volume)
        .env("IRSA_DOCTOR_SESSION_POLICY", READ_ONLY_SESSION)
        .args(&["--require", OBJECTS, "--require", QUEUE])
        .run()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), ["PERMISSION_DENIED"]);
    let f = out.finding("PERMISSION_DENIED");
    says(&f, "message", "sqs:SendMessage");
    says(&f, "message", "session policy does not allow it");
    says(&f, "found", "role's policies: allowed");
    // The smallest change: the session policy with one statement more,
    // and the command that puts it on the association.
    says(&f, "remedy", r#""Action": "sqs:SendMessage""#);
    says(&f, "remedy", r#""Sid": "read""#);
    says(&f, "remedy", "aws eks update-pod-identity-association");
    says(&f, "remedy", "--policy file://session-policy.json");
    let report = out.json();
    let p = &report["permissions"];
    assert_eq!(p["session_policy"], "given", "{p:#}");
    assert_eq!(
        results(&report),
        [
            (OBJECTS.to_owned(), "allowed".to_owned()),
            (QUEUE.to_owned(), "implicit_deny".to_owned()),
        ]
    );
    assert_eq!(p["results"][1]["session_policy_decision"], "implicit_deny");
    // One request for the role and one for the session policy, both signed
    // with the agent's credentials (the stand-in checks), the policy sent
    // as given.
    assert_eq!(p["requests"], 2, "{p:#}");
    assert_eq!(sts.aws.simulate_calls(), 1);
    assert_eq!(sts.aws.simulated_policies(), [READ_ONLY_SESSION]);
}

#[tokio::test]
async fn a_deny_in_the_session_policy_is_named_with_its_statement() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    let agent = Agent::healthy(&sts.aws).await;
    let volume = pod_identity_volume();
    let policy = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"no-queues","Effect":"Deny","Action":"sqs:*","Resource":"*"}]}"#;
    let out = pod_identity_check(&sts, &agent.url(), &volume)
        .args(&["--session-policy", policy, "--require", QUEUE])
        .run()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("PERMISSION_DENIED");
    says(
        &f,
        "message",
        "a Deny statement in the EKS Pod Identity association's session policy",
    );
    says(&f, "message", "no-queues");
    says(&f, "remedy", "an Allow never overrides an explicit Deny");
    assert_eq!(results(&out.json())[0].1, "explicit_deny");
}

/// The false fail's counterpart: a session policy that allows exactly the
/// entries (one by its exact ARN, one by a wildcard) passes, and the report
/// no longer says session policies were not evaluated.
#[tokio::test]
async fn a_session_policy_that_allows_the_entries_passes_and_is_not_listed_as_not_covered() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    let agent = Agent::healthy(&sts.aws).await;
    let volume = pod_identity_volume();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::orders/*"},{"Effect":"Allow","Action":"sqs:*","Resource":["arn:aws:sqs:*:111122223333:orders"]}]}"#;
    let out = pod_identity_check(&sts, &agent.url(), &volume)
        .env("IRSA_DOCTOR_SESSION_POLICY", policy)
        .args(&["--require", OBJECTS, "--require", QUEUE])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    let p = &report["permissions"];
    assert_eq!(p["session_policy"], "given", "{p:#}");
    let not_covered = p["not_covered"].as_str().unwrap();
    assert!(!not_covered.contains("session policies"), "{not_covered}");
    assert!(not_covered.contains("--session-policy"), "{not_covered}");
    for r in p["results"].as_array().unwrap() {
        assert_eq!(r["decision"], "allowed", "{r:#}");
        assert_eq!(r["session_policy_decision"], "allowed", "{r:#}");
    }
    assert_eq!(sts.aws.simulated_policies(), [policy]);

    // Without it, the report says the session policy was not evaluated,
    // and how to give it.
    let out = pod_identity_check(&sts, &agent.url(), &volume)
        .args(&["--require", OBJECTS])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let p = &out.json()["permissions"];
    assert_eq!(p["session_policy"], "not_given", "{p:#}");
    assert!(p["not_covered"]
        .as_str()
        .unwrap()
        .contains("only when given with --session-policy"));
    assert_eq!(p["results"][0]["session_policy_decision"], Value::Null);
}

/// EKS turns session tags off when an association has a session policy:
/// a role whose allow depends on them must not pass on the pod's token's
/// tags then.
#[tokio::test]
async fn with_a_session_policy_no_session_tag_is_given_to_the_simulation() {
    let sts = FakeAws::healthy().await;
    sts.aws.set_permissions(
        ROLE_ARN,
        vec![
            Stmt::allow("ns-only", "s3:GetObject", "arn:aws:s3:::orders/*")
                .when("aws:PrincipalTag/kubernetes-namespace", NAMESPACE),
        ],
    );
    let agent = Agent::healthy(&sts.aws).await;
    let volume = pod_identity_volume();
    let out = pod_identity_check(&sts, &agent.url(), &volume)
        .env("IRSA_DOCTOR_SESSION_POLICY", READ_ONLY_SESSION)
        .args(&["--require", OBJECTS])
        .run()
        .await;
    // The binary before issue 24 passed this pod on its token's tags.
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let p = &out.json()["permissions"];
    assert_eq!(p["results"][0]["decision"], "implicit_deny", "{p:#}");
    assert_eq!(
        p["results"][0]["missing_context_values"][0],
        "aws:PrincipalTag/kubernetes-namespace"
    );
    // Known to be absent, not merely unknown: an error, not the warning
    // that the app's own requests may carry the value.
    let f = out.finding("PERMISSION_DENIED");
    assert_eq!(f["severity"], "error", "{f:#}");
    says(&f, "message", "EKS sends no session tags");
}

#[tokio::test]
async fn a_session_policy_iam_will_not_simulate_is_a_warning_that_names_the_action() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    sts.aws.refuse_custom_simulation();
    let agent = Agent::healthy(&sts.aws).await;
    let volume = pod_identity_volume();
    let out = pod_identity_check(&sts, &agent.url(), &volume)
        .env("IRSA_DOCTOR_SESSION_POLICY", READ_ONLY_SESSION)
        .args(&["--require", QUEUE])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("PERMISSIONS_UNVERIFIABLE");
    assert_eq!(f["severity"], "warning");
    says(&f, "remedy", r#""Action": "iam:SimulateCustomPolicy""#);
    let p = &out.json()["permissions"];
    assert_eq!(p["evaluated"], false, "{p:#}");
    says(p, "not_evaluated_reason", "SimulateCustomPolicy");
}

/// An IRSA session carries no association's policy: one given is not
/// used, and the report says so.
#[tokio::test]
async fn a_session_policy_is_not_used_for_irsa() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    let volume = TokenVolume::new(&good_token());
    let out = pod(&sts, &volume)
        .env("IRSA_DOCTOR_SESSION_POLICY", READ_ONLY_SESSION)
        .args(&["--output", "json", "--require", QUEUE])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["permissions"]["session_policy"], "not_used");
    assert_eq!(sts.aws.simulate_custom_calls(), 0);
}

#[tokio::test]
async fn a_session_policy_eks_would_refuse_is_a_usage_error_that_does_not_echo_it() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let long = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{}"}}]}}"#,
        "b".repeat(2048)
    );
    for (bad, why) in [
        (long.as_str(), "characters long; EKS allows at most 2048"),
        ("s3:GetObject", "is not JSON"),
        (r#"{"Version":"2012-10-17"}"#, "has no Statement"),
        (
            r#"{"Statement":[{"Effect":"Permit","Action":"s3:*"}]}"#,
            "Effect",
        ),
    ] {
        for given in ["flag", "variable"] {
            let d = pod(&sts, &volume);
            let d = if given == "flag" {
                d.args(&["--session-policy", bad])
            } else {
                d.env("IRSA_DOCTOR_SESSION_POLICY", bad)
            };
            let out = d.run().await;
            assert_eq!(out.code, 2, "{given} {bad:.30}: {}", out.stderr);
            assert!(
                out.stderr
                    .contains("--session-policy (IRSA_DOCTOR_SESSION_POLICY)"),
                "{}",
                out.stderr
            );
            assert!(out.stderr.contains(why), "{why}: {}", out.stderr);
            assert!(!out.stderr.contains("bbbbbbbb"), "echoed: {}", out.stderr);
        }
    }
    assert_eq!(sts.aws.assume_calls(), 0, "nothing is checked");
}

/// `serve` asks both simulations once, shows the answer again, and counts
/// both requests in `irsa_doctor_iam_requests_total`. The session policy is
/// read once at start: it cannot change under a kept answer.
#[tokio::test]
async fn serve_asks_the_session_policy_once_and_counts_both_requests() {
    let sts = FakeAws::healthy().await;
    grant(&sts);
    let agent = Agent::healthy(&sts.aws).await;
    let volume = pod_identity_volume();
    let serving = pod_identity_pod(&sts, &agent.url(), &volume)
        .env("IRSA_DOCTOR_TIMEOUT", "3s")
        .env("IRSA_DOCTOR_SESSION_POLICY", READ_ONLY_SESSION)
        .args(&["--interval", "1s", "--require", OBJECTS])
        .serve()
        .await;
    let before = sts.aws.caller_identity_calls();
    testkit::serving::until("three more checks", || {
        sts.aws.caller_identity_calls() >= before + 3
    })
    .await;
    assert_eq!(sts.aws.simulate_calls(), 1, "{}", serving.logs());
    assert_eq!(sts.aws.simulate_custom_calls(), 1, "{}", serving.logs());
    let metrics = serving.get("/metrics").await.body;
    assert_eq!(
        metric(
            &metrics,
            r#"irsa_doctor_iam_requests_total{outcome="success"}"#
        ),
        2
    );
    let status = serving.get("/status").await.json();
    assert_eq!(
        status["permissions"]["session_policy"], "given",
        "{status:#}"
    );
}

/// `--require` for a Pod Identity pod whose association's session tags
/// are `tags` (set by the variable, which the old binary ignored), with
/// the role's policy `statements`.
async fn pod_identity_require(statements: Vec<Stmt>, tags: &str) -> Outcome {
    let sts = FakeAws::healthy().await;
    sts.aws.set_permissions(ROLE_ARN, statements);
    let agent = Agent::healthy(&sts.aws).await;
    let volume =
        TokenVolume::pod_identity(&Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode());
    doctor!(&sts.url())
        .pod_identity(&agent.url(), &volume.path())
        .env("IRSA_DOCTOR_SESSION_TAGS", tags)
        .args(&[
            "--output",
            "json",
            "--require",
            OBJECTS,
            "--expected-role-arn",
            ROLE_ARN,
        ])
        .run()
        .await
}

/// Issue 24 §2, a false pass: an ABAC allow on
/// `aws:PrincipalTag/kubernetes-namespace` passed because irsa-doctor
/// gave the simulation the tag; with the association's session tags
/// disabled the app's session has no tag, and IAM denies it.
#[tokio::test]
async fn with_session_tags_disabled_an_abac_allow_is_denied_not_passed() {
    let by_namespace = Stmt::allow("by-namespace", "s3:GetObject", "arn:aws:s3:::orders/*")
        .when("aws:PrincipalTag/kubernetes-namespace", NAMESPACE);
    let out = pod_identity_require(vec![by_namespace], "disabled").await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("PERMISSION_DENIED");
    assert_eq!(f["severity"], "error", "{f:#}");
    says(
        &f,
        "message",
        "sends no session tags, --session-tags disabled",
    );
    says(&f, "message", "aws:PrincipalTag/kubernetes-namespace");
    says(&f, "remedy", "--no-disable-session-tags");
    let report = out.json();
    assert_eq!(report["agent"]["session_tags"], "disabled");
    assert_eq!(results(&report)[0].1, "implicit_deny");
}

/// Issue 24 §2, a false fail: a Deny that applies only to sessions tagged
/// with this namespace failed the pod, though with session tags disabled
/// it never applies to the app's requests.
#[tokio::test]
async fn with_session_tags_disabled_a_deny_on_a_tag_does_not_fail_the_pod() {
    let statements = vec![
        Stmt::allow("read", "s3:GetObject", "arn:aws:s3:::orders/*"),
        Stmt::deny("not-this-namespace", "s3:*", "*")
            .when("aws:PrincipalTag/kubernetes-namespace", NAMESPACE),
    ];
    let out = pod_identity_require(statements.clone(), "disabled").await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(results(&out.json())[0].1, "allowed");
    // With the tags on, the deny applies, as it does to the app.
    let out = pod_identity_require(statements, "enabled").await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(results(&out.json())[0].1, "explicit_deny");
}

/// A false pass: the role's allow hangs on a condition the simulation has
/// no value for (a warning: the app's requests may carry it), but the
/// association's session policy does not allow the entry at all, whatever
/// the request carries. The app is denied, so the pod must fail.
#[tokio::test]
async fn a_session_policy_deny_is_an_error_though_the_role_s_answer_is_undecided() {
    let sts = FakeAws::healthy().await;
    sts.aws.set_permissions(
        ROLE_ARN,
        vec![
            Stmt::allow("vpce-only", "s3:GetObject", "arn:aws:s3:::orders/*")
                .when("aws:SourceVpce", "vpce-1"),
        ],
    );
    let agent = Agent::healthy(&sts.aws).await;
    let volume = pod_identity_volume();
    let queues_only = r#"{"Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"}]}"#;
    let explicit = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"no-s3","Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#;
    for policy in [queues_only, explicit] {
        let out = pod_identity_check(&sts, &agent.url(), &volume)
            .args(&["--session-policy", policy, "--require", OBJECTS])
            .run()
            .await;
        assert_eq!(out.code, 1, "{policy}\n{}\n{}", out.stdout, out.stderr);
        let f = out.finding("PERMISSION_DENIED");
        assert_eq!(f["severity"], "error", "{f:#}");
        says(&f, "message", "session policy");
        says(&f, "message", "whatever the request carries");
        says(
            &f,
            "found",
            "role's policies: implicit_deny, with no value for aws:SourceVpce",
        );
    }
}
