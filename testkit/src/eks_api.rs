//! A loopback stand-in for the EKS API's two Pod Identity reads (REST-JSON,
//! paths and shapes as aws-sdk-eks serializes them):
//! `GET /clusters/{name}/pod-identity-associations?namespace=&serviceAccount=`
//! (the association summaries) and
//! `GET /clusters/{name}/pod-identity-associations/{id}` (one association).
//! Every request must carry a SigV4 signature for service `eks` made with
//! the stand-in's secret (403 `InvalidSignatureException` otherwise). Faults
//! on command ([`Fault`]) and a request count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::http::{chunked, response, serve, Handler, Req, Resp, Server};
use crate::sigv4;
use crate::world::CLUSTER;

/// An answer other than the normal one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Accepts the request and never answers.
    Hang,
    /// This status with an EKS error of this type (`ServerException`, ...).
    Error(u16, String),
    /// 429 `ThrottlingException`.
    Throttling,
    /// 403 `AccessDeniedException`: the caller's role lacks the action.
    AccessDenied,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a JSON body of [`HUGE_BODY`] bytes (and its length).
    Huge,
    /// The same body, chunked: no length is announced, and it is a valid
    /// answer (no associations) to a client that reads it all.
    HugeChunked,
}

/// The size of [`Fault::Huge`]'s answer.
pub const HUGE_BODY: usize = 8 * 1024 * 1024;

/// One association as DescribePodIdentityAssociation shows it.
#[derive(Clone, Debug, Default)]
pub struct Association {
    pub cluster: String,
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
    pub target_role_arn: Option<String>,
    pub disable_session_tags: bool,
    pub policy: Option<String>,
}

#[derive(Default)]
struct State {
    secret: String,
    associations: Mutex<Vec<(String, Association)>>,
    fault: Mutex<Option<Fault>>,
    requests: AtomicU64,
}

/// The stand-in; it stops when dropped.
pub struct EksApi {
    server: Server,
    state: Arc<State>,
}

impl EksApi {
    /// Starts on a free loopback port; signatures must be made with
    /// `secret_access_key`.
    pub async fn start(secret_access_key: &str) -> EksApi {
        let state = Arc::new(State {
            secret: secret_access_key.to_owned(),
            ..State::default()
        });
        let s = state.clone();
        let handler: Handler = Arc::new(move |req| {
            let s = s.clone();
            Box::pin(async move { answer(&s, req).await })
        });
        EksApi {
            server: serve(handler).await,
            state,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Stops the server, so that the next connection is refused.
    pub async fn close(self) {
        self.server.close().await;
    }

    /// Adds an association and returns its ID.
    pub fn add(&self, association: Association) -> String {
        let mut all = self.state.associations.lock().unwrap();
        let id = format!("a-{:017}", all.len() + 1);
        all.push((id.clone(), association));
        id
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.state.fault.lock().unwrap() = fault;
    }

    /// Requests received, whatever their answer.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }
}

fn error(status: u16, kind: &str, message: &str) -> Resp {
    let mut r = response(
        status,
        "application/json",
        json!({ "message": message }).to_string(),
    );
    r.headers_mut()
        .insert("x-amzn-errortype", kind.parse().unwrap());
    r
}

fn arn(id: &str, a: &Association) -> String {
    format!(
        "arn:aws:eks:us-east-1:111122223333:podidentityassociation/{}/{id}",
        a.cluster
    )
}

async fn answer(state: &State, req: Req) -> Resp {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let fault = state.fault.lock().unwrap().clone();
    match fault {
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::Error(status, kind)) => return error(status, &kind, "fault on command"),
        Some(Fault::Throttling) => return error(429, "ThrottlingException", "Rate exceeded"),
        Some(Fault::AccessDenied) => {
            return error(
                403,
                "AccessDeniedException",
                "User is not authorized to perform: eks:ListPodIdentityAssociations",
            )
        }
        Some(Fault::Garbage) => return response(200, "application/json", "{\"associations\": [tr"),
        Some(Fault::Huge) => return response(200, "application/json", huge_list()),
        Some(Fault::HugeChunked) => return chunked(response(200, "application/json", huge_list())),
        None => {}
    }
    let scope_is_eks = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("/eks/aws4_request"));
    if !scope_is_eks || !sigv4::verify(&req, &state.secret) {
        return error(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["clusters", cluster, "pod-identity-associations"] => list(state, cluster, &req.query),
        ["clusters", cluster, "pod-identity-associations", id] => describe(state, cluster, id),
        _ => error(404, "ResourceNotFoundException", "No such resource"),
    }
}

fn list(state: &State, cluster: &str, query: &str) -> Resp {
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (namespace, service_account) = (param("namespace"), param("serviceAccount"));
    let all = state.associations.lock().unwrap();
    // The kit's cluster exists even without associations; another exists
    // only through its associations.
    if cluster != CLUSTER && !all.iter().any(|(_, a)| a.cluster == cluster) {
        return error(
            404,
            "ResourceNotFoundException",
            &format!("No cluster found for name: {cluster}."),
        );
    }
    let summaries: Vec<Value> = all
        .iter()
        .filter(|(_, a)| a.cluster == cluster)
        .filter(|(_, a)| namespace.as_ref().is_none_or(|n| *n == a.namespace))
        .filter(|(_, a)| {
            service_account
                .as_ref()
                .is_none_or(|s| *s == a.service_account)
        })
        .map(|(id, a)| {
            json!({
                "clusterName": a.cluster, "namespace": a.namespace,
                "serviceAccount": a.service_account, "associationArn": arn(id, a),
                "associationId": id
            })
        })
        .collect();
    response(
        200,
        "application/json",
        json!({ "associations": summaries }).to_string(),
    )
}

fn describe(state: &State, cluster: &str, id: &str) -> Resp {
    let all = state.associations.lock().unwrap();
    let Some((id, a)) = all.iter().find(|(i, a)| i == id && a.cluster == cluster) else {
        return error(404, "ResourceNotFoundException", "No association found");
    };
    let mut association = json!({
        "clusterName": a.cluster, "namespace": a.namespace,
        "serviceAccount": a.service_account, "roleArn": a.role_arn,
        "associationArn": arn(id, a), "associationId": id, "tags": {},
        "createdAt": 1.7648e9, "modifiedAt": 1.7648e9,
        "disableSessionTags": a.disable_session_tags
    });
    if let Some(target) = &a.target_role_arn {
        association["targetRoleArn"] = json!(target);
        association["externalId"] = json!("0e6b1a3c-test-external-id");
    }
    if let Some(policy) = &a.policy {
        association["policy"] = json!(policy);
    }
    response(
        200,
        "application/json",
        json!({ "association": association }).to_string(),
    )
}

/// A ListPodIdentityAssociations answer of [`HUGE_BODY`] bytes: no
/// associations, and a `nextToken` that long.
fn huge_list() -> Vec<u8> {
    let mut body = b"{\"associations\": [], \"nextToken\": \"".to_vec();
    body.resize(HUGE_BODY - 2, b'x');
    body.extend_from_slice(b"\"}");
    body
}
