//! Arbitrary bytes as the body of POST /mutate, through the webhook's
//! review (`Webhook::review`, no lookups), and through `cost` when UTF-8.
//! Never panics; an answer is always `allowed: true` with the request's
//! uid; a refusal (400) only for a body kube does not read as an
//! AdmissionReview with a request, or one that is not UTF-8 or repeats a
//! key in an object. The API server's Go encoder writes neither; kube
//! reads both (serde_json skips an unknown field's string unchecked, and
//! the pod's flattened fields take the last of a repeated key), while the
//! review, which keeps the pod as its text and reads it typed, refuses
//! them: a 400, and the pod is admitted (fuzz/regressions/admission_review/).
#![no_main]

use std::sync::{Arc, LazyLock};

use irsa_doctor_injector::lookup::NoLookups;
use irsa_doctor_injector::webhook::{cost, Metrics, Webhook, LOOKUP_BUDGET};
use irsa_doctor_injector::{Mode, Options, Template};
use kube::core::admission::AdmissionReview;
use kube::core::DynamicObject;
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Built once, as `serve` builds it (webhook/server.rs).
static WEBHOOK: LazyLock<(tokio::runtime::Runtime, Webhook)> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let webhook = Webhook {
        options: Options {
            template: Template::embedded().expect("the embedded template parses"),
            image: Some("registry.example/irsa-doctor:fuzz".to_owned()),
            mode: Mode::Sidecar,
        },
        own_namespace: Some("irsa-doctor".to_owned()),
        lookup_budget: LOOKUP_BUDGET,
        resolver: Arc::new(NoLookups),
        metrics: Arc::new(Metrics::default()),
        inspecting: Webhook::inspecting(),
    };
    (runtime, webhook)
});

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(cost(text) >= text.len());
    }
    let (runtime, webhook) = &*WEBHOOK;
    let reviewed = runtime.block_on(webhook.review(data));
    match reviewed {
        Ok(answer) => {
            let answer: Value = serde_json::from_slice(&answer).expect("the answer is JSON");
            let response = &answer["response"];
            assert_eq!(response["allowed"], Value::Bool(true), "{answer}");
            if let Some(uid) = serde_json::from_slice::<Value>(data)
                .ok()
                .and_then(|v| v["request"]["uid"].as_str().map(str::to_owned))
            {
                assert_eq!(response["uid"].as_str(), Some(uid.as_str()), "{answer}");
            }
        }
        Err(error) => {
            let sent = std::str::from_utf8(data)
                .ok()
                .filter(|text| serde_json::from_str::<NoRepeatedKey>(text).is_ok())
                .map(serde_json::from_str::<AdmissionReview<DynamicObject>>);
            if let Some(Ok(review)) = sent {
                assert!(
                    review.request.is_none(),
                    "{error}: a review kube reads was refused"
                );
            }
        }
    }
});

/// JSON in which no object repeats a key.
struct NoRepeatedKey;

impl<'de> Deserialize<'de> for NoRepeatedKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoRepeatedKey)
    }
}

impl<'de> Visitor<'de> for NoRepeatedKey {
    type Value = NoRepeatedKey;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key) {
                return Err(serde::de::Error::custom("a repeated key"));
            }
            map.next_value::<NoRepeatedKey>()?;
        }
        Ok(NoRepeatedKey)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoRepeatedKey>()?.is_some() {}
        Ok(NoRepeatedKey)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoRepeatedKey)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoRepeatedKey)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoRepeatedKey)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoRepeatedKey)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoRepeatedKey)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(NoRepeatedKey)
    }
}
