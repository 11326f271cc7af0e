//! The review itself, without sockets: an AdmissionReview body in, the
//! answer out, through `Webhook::review` as the HTTPS layer calls it. The
//! patch is applied with the json-patch crate and compared with phase 1's
//! `inject()`, the pure function: the webhook must give the same pod.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use irsa_doctor_injector::lookup::{LookupKind, LookupOutcome, LookupRecord, Resolve, Resolved};
use irsa_doctor_injector::webhook::{Metrics, ReviewError, Webhook, LOOKUP_BUDGET};
use irsa_doctor_injector::{Association, Identity, Mode};
use serde_json::{json, Value};
use support::webhook::*;

const ROLE: &str = "arn:aws:iam::111122223333:role/app";

fn webhook(resolver: impl Resolve + 'static, mode: Mode) -> Webhook {
    Webhook {
        options: support::options(mode),
        own_namespace: Some("irsa-doctor".to_owned()),
        lookup_budget: LOOKUP_BUDGET,
        resolver: Arc::new(resolver),
        metrics: Arc::new(Metrics::default()),
        inspecting: Webhook::inspecting(),
    }
}

async fn answer(hook: &Webhook, review: &Value) -> Value {
    let body = hook
        .review(&serde_json::to_vec(review).unwrap())
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"]["uid"], review["request"]["uid"],
        "uid echoed"
    );
    assert_eq!(answer["response"]["allowed"], true, "always allowed");
    answer
}

fn admissions(hook: &Webhook, outcome: &str, mechanism: &str) -> f64 {
    let labels = format!(
        "irsa_doctor_injector_admissions_total{{outcome=\"{outcome}\",mechanism=\"{mechanism}\"}}"
    );
    series(&hook.metrics.render(), &labels)
}

/// Phase 1's result for the same pod: `inject()` on the typed pod, its
/// changes applied to the raw JSON.
fn doctor(pod: &Value) -> Option<&Value> {
    pod["spec"]["initContainers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "irsa-doctor")
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)?["value"]
        .as_str()
}

#[tokio::test]
async fn a_pod_with_irsa_variables_gets_the_doctor_as_phase_one_would_and_a_second_review_adds_nothing(
) {
    let hook = webhook(
        FakeResolve::default().with("payments", "app", irsa(ROLE)),
        Mode::Sidecar,
    );
    let pod = irsa_pod();
    let first = answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await;
    let patched = apply_response(&pod, &first);
    assert_eq!(patched, phase_one(&pod, &irsa(ROLE), Mode::Sidecar));
    let doc = doctor(&patched).expect("irsa-doctor added");
    assert_eq!(doc["restartPolicy"], "Always");
    assert_eq!(env_value(doc, "IRSA_DOCTOR_EXPECTED_ROLE_ARN"), Some(ROLE));
    assert_eq!(env_value(doc, "AWS_ROLE_ARN"), Some(ROLE));
    // reinvocationPolicy: IfNeeded sends the result again.
    let second = answer(&hook, &review_of(patched.clone(), "payments", "CREATE")).await;
    assert_eq!(patch_of(&second), None, "idempotent");
    assert_eq!(admissions(&hook, "injected", "irsa"), 1.0);
    assert_eq!(admissions(&hook, "already_present", "irsa"), 1.0);
}

#[tokio::test]
async fn the_patch_adds_whole_lists_only_where_they_are_absent_or_null() {
    let hook = webhook(FakeResolve::default(), Mode::Init);
    let mut pod = irsa_pod();
    pod["spec"]["initContainers"] =
        json!([{"name": "migrate", "image": "registry.example.com/m:1"}]);
    let answer_with = answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await;
    let ops = patch_of(&answer_with).unwrap();
    assert_eq!(ops[0]["path"], "/spec/initContainers/-", "{ops}");
    let patched = apply_response(&pod, &answer_with);
    assert_eq!(
        patched["spec"]["initContainers"][0]["name"], "migrate",
        "kept"
    );
    assert_eq!(patched, phase_one(&pod, &Identity::Unknown, Mode::Init));

    pod["spec"]["initContainers"] = Value::Null;
    let answer_null = answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await;
    assert_eq!(
        patch_of(&answer_null).unwrap()[0]["path"],
        "/spec/initContainers"
    );
    let patched = apply_response(&pod, &answer_null);
    assert_eq!(
        patched["spec"]["initContainers"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        doctor(&patched).unwrap()["args"],
        json!(["check"]),
        "init mode runs check"
    );
}

#[tokio::test]
async fn an_existing_doctor_gains_only_the_variables_and_mounts_it_lacks() {
    // The EKS webhook ran after us (it does not fill containers added
    // after it ran): our doctor lacks what the app now has.
    let hook = webhook(FakeResolve::default(), Mode::Sidecar);
    let mut pod = irsa_pod();
    pod["spec"]["containers"][0]["env"] = json!([]);
    pod["spec"]["containers"][0]["volumeMounts"] = json!([]);
    let injected = apply_response(
        &pod,
        &answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await,
    );
    assert!(doctor(&injected).is_none(), "no identity yet, no doctor");

    let hook = webhook(
        FakeResolve::default().with("payments", "app", irsa(ROLE)),
        Mode::Sidecar,
    );
    let injected = apply_response(
        &pod,
        &answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await,
    );
    let index = injected["spec"]["initContainers"].as_array().unwrap().len() - 1;
    assert!(doctor(&injected).unwrap().get("volumeMounts").is_none());
    let mut after_eks = injected.clone();
    after_eks["spec"]["containers"][0] = irsa_pod()["spec"]["containers"][0].clone();
    let completed = answer(&hook, &review_of(after_eks.clone(), "payments", "CREATE")).await;
    let ops = patch_of(&completed).unwrap();
    assert!(
        ops.as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"] == format!("/spec/initContainers/{index}/volumeMounts")),
        "{ops}"
    );
    let done = apply_response(&after_eks, &completed);
    assert_eq!(done, phase_one(&after_eks, &irsa(ROLE), Mode::Sidecar));
    assert_eq!(
        env_value(doctor(&done).unwrap(), "AWS_ROLE_ARN"),
        Some(ROLE)
    );
    assert_eq!(
        patch_of(&answer(&hook, &review_of(done, "payments", "CREATE")).await),
        None
    );
    assert_eq!(admissions(&hook, "completed", "irsa"), 1.0);
}

#[tokio::test]
async fn dry_run_requests_are_patched_like_any_other() {
    let hook = webhook(FakeResolve::default(), Mode::Sidecar);
    let mut review = review_of(irsa_pod(), "payments", "CREATE");
    review["request"]["dryRun"] = json!(true);
    assert!(patch_of(&answer(&hook, &review).await).is_some());
}

#[tokio::test]
async fn anything_but_a_pod_create_is_allowed_untouched_and_counted_skipped() {
    let hook = webhook(FakeResolve::default(), Mode::Sidecar);
    let update = review_of(irsa_pod(), "payments", "UPDATE");
    let mut deployment = review_of(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}}),
        "payments",
        "CREATE",
    );
    deployment["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    deployment["request"]["resource"] =
        json!({"group": "apps", "version": "v1", "resource": "deployments"});
    let mut ephemeral = review_of(irsa_pod(), "payments", "CREATE");
    ephemeral["request"]["subResource"] = json!("ephemeralcontainers");
    let kube_system = review_of(irsa_pod(), "kube-system", "CREATE");
    let own = review_of(irsa_pod(), "irsa-doctor", "CREATE");
    let mut delete = review_of(Value::Null, "payments", "DELETE");
    delete["request"]["oldObject"] = irsa_pod();
    for review in [update, deployment, ephemeral, kube_system, own, delete] {
        let answer = answer(&hook, &review).await;
        assert_eq!(patch_of(&answer), None, "{review}");
    }
    assert_eq!(admissions(&hook, "skipped", "none"), 4.0);
    // kube-system and the injector's namespace: counted with what the
    // containers show.
    assert_eq!(admissions(&hook, "skipped", "irsa"), 2.0);
}

#[tokio::test]
async fn the_pod_label_or_annotation_opts_out() {
    let hook = webhook(FakeResolve::default(), Mode::Sidecar);
    for key in ["labels", "annotations"] {
        let mut pod = irsa_pod();
        pod["metadata"][key] = json!({"irsa-doctor.io/inject": "disabled"});
        let answer = answer(&hook, &review_of(pod, "payments", "CREATE")).await;
        assert_eq!(patch_of(&answer), None);
    }
    assert_eq!(
        admissions(&hook, "opted_out", "irsa"),
        2.0,
        "with what the containers show"
    );
}

#[tokio::test]
async fn a_pod_without_identity_is_untouched_unless_its_service_account_names_a_role() {
    let hook = webhook(
        FakeResolve::default().with("payments", "annotated", irsa(ROLE)),
        Mode::Sidecar,
    );
    let none = answer(&hook, &review_of(plain_pod("plain"), "payments", "CREATE")).await;
    assert_eq!(patch_of(&none), None);
    assert_eq!(admissions(&hook, "no_identity", "none"), 1.0);
    // Known from the annotation before the EKS webhook ran: injected
    // anyway (the doctor reports ENV_NOT_INJECTED if EKS never fills it).
    let pod = plain_pod("annotated");
    let known = answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await;
    let patched = apply_response(&pod, &known);
    assert_eq!(
        env_value(doctor(&patched).unwrap(), "IRSA_DOCTOR_EXPECTED_ROLE_ARN"),
        Some(ROLE)
    );
    assert_eq!(admissions(&hook, "injected", "irsa"), 1.0);
}

#[tokio::test]
async fn the_service_account_defaults_as_the_api_server_defaults_it() {
    let hook = webhook(
        FakeResolve::default()
            .with(
                "payments",
                "default",
                irsa("arn:aws:iam::111122223333:role/default"),
            )
            .with(
                "payments",
                "legacy",
                irsa("arn:aws:iam::111122223333:role/legacy"),
            ),
        Mode::Sidecar,
    );
    let mut pod = plain_pod("x");
    pod["spec"]
        .as_object_mut()
        .unwrap()
        .remove("serviceAccountName");
    let by_default = apply_response(
        &pod,
        &answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await,
    );
    assert_eq!(
        env_value(
            doctor(&by_default).unwrap(),
            "IRSA_DOCTOR_EXPECTED_ROLE_ARN"
        ),
        Some("arn:aws:iam::111122223333:role/default")
    );
    pod["spec"]["serviceAccount"] = json!("legacy");
    let by_old_field = apply_response(
        &pod,
        &answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await,
    );
    assert_eq!(
        env_value(
            doctor(&by_old_field).unwrap(),
            "IRSA_DOCTOR_EXPECTED_ROLE_ARN"
        ),
        Some("arn:aws:iam::111122223333:role/legacy")
    );
}

#[tokio::test]
async fn an_association_is_expected_and_counted_as_pod_identity() {
    let association = Identity::Association(Association {
        role_arn: "arn:aws:iam::111122223333:role/hop".into(),
        target_role_arn: Some("arn:aws:iam::444455556666:role/target".into()),
        ..Association::default()
    });
    let hook = webhook(
        FakeResolve::default().with("payments", "app", association.clone()),
        Mode::Sidecar,
    );
    let pod = plain_pod("app");
    let patched = apply_response(
        &pod,
        &answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await,
    );
    assert_eq!(patched, phase_one(&pod, &association, Mode::Sidecar));
    assert_eq!(
        env_value(doctor(&patched).unwrap(), "IRSA_DOCTOR_EXPECTED_ROLE_ARN"),
        Some("arn:aws:iam::444455556666:role/target")
    );
    assert_eq!(admissions(&hook, "injected", "pod_identity"), 1.0);
}

#[tokio::test]
async fn skip_containers_naming_the_only_app_leaves_nothing_to_copy() {
    let hook = webhook(FakeResolve::default(), Mode::Sidecar);
    let mut pod = irsa_pod();
    pod["metadata"]["annotations"] = json!({"eks.amazonaws.com/skip-containers": "app"});
    let answer = answer(&hook, &review_of(pod, "payments", "CREATE")).await;
    assert_eq!(patch_of(&answer), None);
    assert_eq!(admissions(&hook, "no_identity", "irsa"), 1.0);
}

#[tokio::test]
async fn the_mode_annotation_chooses_per_pod_and_a_bad_one_is_a_warning() {
    let hook = webhook(FakeResolve::default(), Mode::Sidecar);
    let mut pod = irsa_pod();
    pod["metadata"]["annotations"] = json!({"irsa-doctor.io/mode": "init"});
    let init = apply_response(
        &pod,
        &answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await,
    );
    assert!(
        doctor(&init).unwrap().get("restartPolicy").is_none(),
        "an init container"
    );
    pod["metadata"]["annotations"] = json!({"irsa-doctor.io/mode": "sidekick"});
    let bad = answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await;
    let warnings = bad["response"]["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("sidekick")),
        "{warnings:?}"
    );
    assert_eq!(
        doctor(&apply_response(&pod, &bad)).unwrap()["restartPolicy"],
        "Always"
    );
}

#[tokio::test]
async fn a_failed_lookup_is_a_warning_and_with_no_identity_an_error_outcome() {
    let resolved = Resolved {
        records: vec![LookupRecord {
            kind: LookupKind::ServiceAccount,
            outcome: LookupOutcome::Denied,
            cached: false,
        }],
        warnings: vec![
            "cannot get serviceaccount payments/app: 403; grant get on serviceaccounts".into(),
        ],
        ..Resolved::default()
    };
    let hook = webhook(
        FakeResolve::default().with_resolved("payments", "app", resolved),
        Mode::Sidecar,
    );
    let answer = answer(&hook, &review_of(plain_pod("app"), "payments", "CREATE")).await;
    assert_eq!(patch_of(&answer), None);
    assert_eq!(
        answer["response"]["warnings"][0],
        "irsa-doctor-injector: cannot get serviceaccount payments/app: 403; grant get on serviceaccounts"
    );
    assert_eq!(admissions(&hook, "error", "none"), 1.0);
    let text = hook.metrics.render();
    assert_eq!(
        series(
            &text,
            "irsa_doctor_injector_lookups_total{lookup=\"service_account\",outcome=\"denied\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn lookups_past_the_budget_admit_with_the_patch_the_containers_allow() {
    let hook = webhook(FakeResolve::hanging(), Mode::Sidecar);
    let started = Instant::now();
    let pod = irsa_pod();
    let answer = answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await;
    let took = started.elapsed();
    // The issue's bound on the answer, with the budget the server uses.
    assert!(took < Duration::from_secs(2), "answered in {took:?}");
    assert_eq!(
        apply_response(&pod, &answer),
        phase_one(&pod, &Identity::Unknown, Mode::Sidecar)
    );
    let warnings = answer["response"]["warnings"].as_array().unwrap();
    assert!(
        warnings[0].as_str().unwrap().contains("took over 1.5s"),
        "{warnings:?}"
    );
    assert_eq!(admissions(&hook, "injected", "irsa"), 1.0);
    let no_vars = answer_for_plain(&hook).await;
    assert_eq!(patch_of(&no_vars), None);
    assert_eq!(
        admissions(&hook, "error", "none"),
        1.0,
        "admitted without the doctor: a lookup failed"
    );
}

async fn answer_for_plain(hook: &Webhook) -> Value {
    answer(hook, &review_of(plain_pod("app"), "payments", "CREATE")).await
}

#[tokio::test]
async fn a_pod_that_does_not_parse_is_admitted_with_a_warning_and_counted_error() {
    let hook = webhook(FakeResolve::default(), Mode::Sidecar);
    let broken = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": "not a list"}});
    let answer = answer(&hook, &review_of(broken, "payments", "CREATE")).await;
    assert_eq!(patch_of(&answer), None);
    let warning = answer["response"]["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("irsa-doctor-injector: admitted without irsa-doctor"),
        "{warning}"
    );
    assert!(warning.len() < 260, "{warning}");
    assert_eq!(admissions(&hook, "error", "none"), 1.0);
}

#[tokio::test]
async fn unknown_fields_of_the_pod_survive_the_patch() {
    let hook = webhook(FakeResolve::default(), Mode::Sidecar);
    let mut pod = irsa_pod();
    pod["spec"]["someFutureField"] = json!({"a": 1});
    pod["spec"]["containers"][0]["futureContainerField"] = json!(true);
    let answer = answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await;
    // A JSON patch touches only what it names: the rest is the API
    // server's own copy. The ops must not name the unknown fields either.
    let ops = patch_of(&answer).unwrap();
    assert!(!ops.to_string().contains("future"), "{ops}");
    assert_eq!(
        apply_response(&pod, &answer)["spec"]["someFutureField"],
        json!({"a": 1})
    );
}

#[tokio::test]
async fn bodies_that_are_no_admission_review_are_errors_for_a_400() {
    let hook = webhook(FakeResolve::default(), Mode::Sidecar);
    assert!(hook.review(b"{not json").await.is_err());
    assert!(hook
        .review(b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}")
        .await
        .is_err());
    let long = format!("{{\"x\": \"{}", "a".repeat(10_000));
    let error = hook.review(long.as_bytes()).await.unwrap_err().to_string();
    assert!(error.len() < 300, "short: {error}");
}

/// fuzz/regressions/admission_review/: bytes that are not UTF-8 in a
/// field nobody reads (serde_json skips such a string unchecked), and a
/// key repeated in the pod (its flattened fields take the last): kube's
/// own AdmissionReview reads both, the review, which keeps the pod as its
/// text and reads it typed, refuses both. The API server's Go encoder
/// writes neither: a 400 (and `failurePolicy: Ignore`) is the answer.
#[tokio::test]
async fn a_body_go_never_writes_is_refused_though_kube_reads_it() {
    type KubeReview = kube::core::admission::AdmissionReview<kube::core::DynamicObject>;
    let hook = webhook(FakeResolve::default(), Mode::Sidecar);
    let mut pod = irsa_pod();
    pod["metadata"]["unknown"] = json!("BAD");
    pod["zzz"] = json!("REPEAT");
    let text = serde_json::to_string(&review_of(pod, "payments", "CREATE")).unwrap();
    let at = text.find("BAD").unwrap();
    let mut not_utf8 = text.clone().into_bytes();
    not_utf8.splice(at..at + 3, [0x98, 0xc7]);
    let repeated = text.replace(r#""zzz":"REPEAT""#, r#""spec":null"#);
    assert_ne!(repeated, text);
    for body in [not_utf8, repeated.into_bytes()] {
        assert!(serde_json::from_slice::<KubeReview>(&body).is_ok());
        assert!(matches!(
            hook.review(&body).await,
            Err(ReviewError::NotJson(_))
        ));
    }
}

#[tokio::test]
async fn a_review_cut_anywhere_is_a_clean_error_never_a_panic() {
    let hook = webhook(FakeResolve::default(), Mode::Sidecar);
    let body = serde_json::to_vec(&review_of(irsa_pod(), "payments", "CREATE")).unwrap();
    let mut refused = 0;
    for end in (0..body.len()).step_by(7) {
        if hook.review(&body[..end]).await.is_err() {
            refused += 1;
        }
    }
    // Every strict prefix of a JSON object is invalid JSON.
    assert_eq!(refused, body.len().div_ceil(7));
    // Wrong types where the review has structure: refused, not a panic.
    for bad in [
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": []}),
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 7}}),
        json!([1, 2, 3]),
        json!("AdmissionReview"),
    ] {
        assert!(
            hook.review(&serde_json::to_vec(&bad).unwrap())
                .await
                .is_err(),
            "{bad}"
        );
    }
    let mut odd = review_of(json!({"kind": "Pod", "spec": null}), "payments", "CREATE");
    let answer = answer(&hook, &odd).await;
    assert_eq!(patch_of(&answer), None);
    odd["request"]["object"] = json!({"kind": "Pod", "metadata": {"name": 5}});
    assert!(hook
        .review(&serde_json::to_vec(&odd).unwrap())
        .await
        .is_err());
}

#[tokio::test]
async fn a_review_without_the_fields_go_omits_when_empty_is_read() {
    // The API server's Go types omit an empty name (generateName pods),
    // oldObject on CREATE, and dryRun when false.
    let hook = webhook(FakeResolve::default(), Mode::Sidecar);
    let mut review = review_of(irsa_pod(), "payments", "CREATE");
    let request = review["request"].as_object_mut().unwrap();
    for field in [
        "name",
        "oldObject",
        "dryRun",
        "options",
        "requestKind",
        "requestResource",
    ] {
        request.remove(field);
    }
    assert!(patch_of(&answer(&hook, &review).await).is_some());
}

/// One deadline covers the wait for room among the pods under review and
/// the lookups together: a review that got its room late does not get a
/// fresh budget for its lookups (the answer must come within 2 s of the
/// API server's 3). On tokio's paused clock, so the figures are exact.
#[tokio::test(start_paused = true)]
async fn the_wait_for_room_and_the_lookups_share_one_deadline() {
    let hook = webhook(FakeResolve::hanging(), Mode::Sidecar);
    let all = u32::try_from(irsa_doctor_injector::webhook::MAX_INSPECTING).unwrap();
    let held = hook
        .inspecting
        .clone()
        .acquire_many_owned(all)
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(held);
    });
    let started = tokio::time::Instant::now();
    let answer = answer(&hook, &review_of(irsa_pod(), "payments", "CREATE")).await;
    let took = started.elapsed();
    release.await.unwrap();
    assert_eq!(answer["response"]["allowed"], true);
    assert!(took <= LOOKUP_BUDGET, "answered after {took:?}");
    assert!(took >= Duration::from_secs(1), "{took:?}");
}

/// The API server fills `metadata.managedFields` on every CREATE: one
/// empty object per field a client set, four per variable. A pod with 800
/// variables is an ordinary one and is injected, and a review whose
/// `managedFields` hold a flat array of a million numbers (a tree of that
/// many JSON values if it were read) is answered without reading it.
#[tokio::test]
async fn managed_fields_are_neither_charged_as_structs_nor_read() {
    let hook = webhook(FakeResolve::default(), Mode::Sidecar);
    let mut pod = irsa_pod();
    let env = pod["spec"]["containers"][0]["env"].as_array_mut().unwrap();
    let mut fields = serde_json::Map::new();
    for i in 0..800 {
        env.push(json!({"name": format!("APP_SETTING_{i}"), "value": "x"}));
        fields.insert(
            format!("k:{{\"name\":\"APP_SETTING_{i}\"}}"),
            json!({".": {}, "f:name": {}, "f:value": {}}),
        );
    }
    pod["metadata"]["managedFields"] = json!([{
        "apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kube-controller-manager",
        "operation": "Update",
        "fieldsV1": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {"f:env": fields}}}}
    }]);
    let ordinary = answer(&hook, &review_of(pod.clone(), "payments", "CREATE")).await;
    assert!(patch_of(&ordinary).is_some(), "{ordinary}");
    assert_eq!(admissions(&hook, "injected", "irsa"), 1.0);

    let mut hostile = irsa_pod();
    hostile["metadata"]["managedFields"] =
        json!([{"fieldsV1": {"f:x": vec![0; 1_000_000]}, "manager": "x"}]);
    let answered = answer(&hook, &review_of(hostile, "payments", "CREATE")).await;
    assert_eq!(answered["response"]["allowed"], true);
    assert!(patch_of(&answered).is_some(), "{answered}");
}
