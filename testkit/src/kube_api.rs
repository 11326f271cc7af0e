//! A loopback stand-in for the Kubernetes API server, as much of it as the
//! injector reads: `GET /api/v1/namespaces/{ns}/serviceaccounts/{name}`,
//! answering the ServiceAccount's JSON or a 404 `Status`, after checking
//! the bearer token it was given (401 `Status` otherwise). Faults on
//! command ([`Fault`]), a request count, and a kubeconfig for it.
//!
//! Plain HTTP: kube accepts an `http://` server in a kubeconfig (its
//! connector is `https_or_http`), so no CA is needed to reach it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::http::{chunked, response, serve, Handler, Req, Resp, Server};

/// An answer other than the normal one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Accepts the request and never answers.
    Hang,
    /// This status with a Kubernetes `Status` body (403, 500, ...).
    Status(u16),
    /// 429 with `Retry-After`, as the API server's priority and fairness
    /// answers.
    TooManyRequests { retry_after_seconds: u32 },
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with the ServiceAccount asked for, annotated with the role and
    /// padded by another annotation to [`HUGE_BODY`] bytes (and its length).
    Huge,
    /// The same, chunked: no length announced.
    HugeChunked,
}

/// The size of [`Fault::Huge`]'s answer.
pub const HUGE_BODY: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct State {
    token: String,
    accounts: Mutex<HashMap<(String, String), Value>>,
    fault: Mutex<Option<Fault>>,
    requests: AtomicU64,
}

/// The stand-in; it stops when dropped.
pub struct KubeApi {
    server: Server,
    state: Arc<State>,
}

impl KubeApi {
    /// Starts on a free loopback port; requests must carry `token`.
    pub async fn start(token: &str) -> KubeApi {
        let state = Arc::new(State {
            token: token.to_owned(),
            ..State::default()
        });
        let s = state.clone();
        let handler: Handler = Arc::new(move |req| {
            let s = s.clone();
            Box::pin(async move { answer(&s, req).await })
        });
        KubeApi {
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

    /// Adds (or replaces) a ServiceAccount, with the role annotation when
    /// `role_arn` is given.
    pub fn add_service_account(&self, namespace: &str, name: &str, role_arn: Option<&str>) {
        let mut meta = json!({"name": name, "namespace": namespace, "uid": "5f1c2b7e-0000-4000-8000-000000000001"});
        if let Some(role) = role_arn {
            meta["annotations"] = json!({ "eks.amazonaws.com/role-arn": role });
        }
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta});
        self.state
            .accounts
            .lock()
            .unwrap()
            .insert((namespace.to_owned(), name.to_owned()), sa);
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.state.fault.lock().unwrap() = fault;
    }

    /// Requests received, whatever their answer.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// A kubeconfig naming this server and `token`.
    pub fn kubeconfig_yaml(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {}\n\
             users:\n- name: injector\n  user:\n    token: {token}\n\
             contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: injector\n    namespace: default\n\
             current-context: standin\n",
            self.url()
        )
    }

    /// Writes [`KubeApi::kubeconfig_yaml`] with the right token to
    /// `dir/kubeconfig` and returns its path.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml(&self.state.token)).unwrap();
        path
    }
}

fn status(code: u16, reason: &str, message: &str) -> Resp {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code
    });
    response(code, "application/json", body.to_string())
}

async fn answer(state: &State, req: Req) -> Resp {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let fault = state.fault.lock().unwrap().clone();
    match fault {
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::Status(code)) => return status(code, "InternalError", "fault on command"),
        Some(Fault::TooManyRequests {
            retry_after_seconds,
        }) => {
            let mut r = status(
                429,
                "TooManyRequests",
                "too many requests, please try again later",
            );
            r.headers_mut().insert(
                "retry-after",
                retry_after_seconds.to_string().parse().unwrap(),
            );
            return r;
        }
        Some(Fault::Garbage) => return response(200, "application/json", "<html>not json"),
        Some(Fault::Huge) => return response(200, "application/json", huge_account(&req)),
        Some(Fault::HugeChunked) => {
            return chunked(response(200, "application/json", huge_account(&req)))
        }
        None => {}
    }
    let expected = format!("Bearer {}", state.token);
    let authorized = req
        .headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !authorized {
        return status(401, "Unauthorized", "Unauthorized");
    }
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let (namespace, name) = match parts.as_slice() {
        ["api", "v1", "namespaces", ns, "serviceaccounts", name] if req.method == "GET" => {
            (*ns, *name)
        }
        _ => {
            return status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    };
    let account = state
        .accounts
        .lock()
        .unwrap()
        .get(&(namespace.to_owned(), name.to_owned()))
        .cloned();
    match account {
        Some(sa) => response(200, "application/json", sa.to_string()),
        None => status(
            404,
            "NotFound",
            &format!("serviceaccounts \"{name}\" not found"),
        ),
    }
}

/// The ServiceAccount the request names, with the world's role annotation
/// and a padding annotation that makes it [`HUGE_BODY`] bytes: a valid
/// answer to a client that reads it all.
fn huge_account(req: &Req) -> Vec<u8> {
    let name = req.path.rsplit('/').next().unwrap_or_default();
    let sa = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "annotations": {
            "eks.amazonaws.com/role-arn": crate::world::ROLE_ARN,
            "padding": "PAD",
        }},
    })
    .to_string();
    let pad = HUGE_BODY - (sa.len() - "PAD".len());
    sa.replacen("PAD", &"x".repeat(pad), 1).into_bytes()
}
