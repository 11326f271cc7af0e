//! A loopback IMDSv2 stand-in: a session token, one instance-profile role,
//! and its credentials, as a node's metadata service serves them.

use std::sync::Arc;

use crate::clock::{now, rfc3339};
use crate::http::{response, serve, Handler, Server};
use crate::world::NODE_ROLE;

pub const NODE_KEY: &str = "ASIANODEEXAMPLE00001";
pub const NODE_SECRET: &str = "NODESECRETKEYDONOTLOG";
pub const NODE_SESSION_TOKEN: &str = "NODESESSIONTOKENDONOTLOG";
pub const NODE_ASSUMED_ARN: &str =
    "arn:aws:sts::111122223333:assumed-role/eks-node-group-role/i-0123456789abcdef0";

pub async fn start() -> Server {
    start_with(false).await
}

/// An IMDS whose credentials answer is 2 MiB of garbage, as from something
/// else listening at its address.
pub async fn start_huge() -> Server {
    start_with(true).await
}

async fn start_with(huge: bool) -> Server {
    let handler: Handler = Arc::new(move |req| {
        Box::pin(async move {
            let has_token = req.headers.get("x-aws-ec2-metadata-token").is_some();
            match (req.method.as_str(), req.path.as_str()) {
                ("PUT", "/latest/api/token") => {
                    let mut resp = response(200, "text/plain", "imds-session-token");
                    resp.headers_mut().insert(
                        "x-aws-ec2-metadata-token-ttl-seconds",
                        "21600".parse().unwrap(),
                    );
                    resp
                }
                (_, _) if !has_token => response(401, "text/plain", ""),
                ("GET", "/latest/meta-data/iam/security-credentials/") => {
                    response(200, "text/plain", NODE_ROLE)
                }
                ("GET", p)
                    if huge
                        && p == format!(
                            "/latest/meta-data/iam/security-credentials/{NODE_ROLE}"
                        ) =>
                {
                    response(200, "application/json", vec![b'{'; 2 * 1024 * 1024])
                }
                ("GET", p)
                    if p == format!("/latest/meta-data/iam/security-credentials/{NODE_ROLE}") =>
                {
                    let expiration = rfc3339(now() + 3600);
                    response(
                        200,
                        "application/json",
                        format!(
                            r#"{{"Code":"Success","LastUpdated":"2026-11-28T00:00:00Z","Type":"AWS-HMAC","AccessKeyId":"{NODE_KEY}","SecretAccessKey":"{NODE_SECRET}","Token":"{NODE_SESSION_TOKEN}","Expiration":"{expiration}"}}"#
                        ),
                    )
                }
                ("GET", "/latest/meta-data/placement/region") => {
                    response(200, "text/plain", "us-east-1")
                }
                _ => response(404, "text/plain", ""),
            }
        })
    });
    serve(handler).await
}
