//! SigV4 for the stand-ins, both ways. [`verify`] checks a request the way
//! AWS does (canonical request, string to sign, signature with the secret),
//! so that a stand-in can prove the binary signed with the secret it was
//! handed and sent the session token that goes with it. [`post`] signs the
//! kit's own requests (to moto's STS, and in tests) with aws-sigv4, the
//! SDK's own signer, which also makes it an independent check of `verify`.

use std::time::SystemTime;

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use sha2::{Digest, Sha256};

use crate::http::{exchange, Answer, Req};

/// AWS credentials, as STS or the Pod Identity agent hands them out.
/// `Debug` names only the key ID: the secret and the token are what leak
/// tests look for, and a test's own panic message should not carry them.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Empty for long-term keys.
    pub session_token: String,
    /// Seconds since the epoch.
    pub expiration: i64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct Authorization<'a> {
    /// `20261129/us-east-1/sts/aws4_request`
    scope: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn authorization(req: &Req) -> Option<Authorization<'_>> {
    let value = req.headers.get("authorization")?.to_str().ok()?;
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let field = |name: &str| {
        rest.split(',')
            .find_map(|part| part.trim().strip_prefix(name)?.strip_prefix('='))
    };
    let (_access_key_id, scope) = field("Credential")?.split_once('/')?;
    Some(Authorization {
        scope,
        signed_headers: field("SignedHeaders")?,
        signature: field("Signature")?,
    })
}

/// The access key ID a SigV4 request names, if it is one (without
/// checking the rest of the header).
pub fn access_key_id(req: &Req) -> Option<&str> {
    let value = req.headers.get("authorization")?.to_str().ok()?;
    value.split("Credential=").nth(1)?.split('/').next()
}

/// Whether `req` carries a valid SigV4 signature made with `secret`.
/// Paths are taken as sent and the query's pairs are sorted as sent: enough
/// for STS's `POST /`, not for S3's paths.
pub fn verify(req: &Req, secret: &str) -> bool {
    let Some(auth) = authorization(req) else {
        return false;
    };
    let header = |name: &str| -> String {
        let values: Vec<String> = req
            .headers
            .get_all(name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        values.join(",")
    };
    let mut query: Vec<String> = req
        .query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.contains('=') {
            true => p.to_owned(),
            false => format!("{p}="),
        })
        .collect();
    query.sort();
    let canonical_headers: String = auth
        .signed_headers
        .split(';')
        .map(|name| format!("{name}:{}\n", header(name)))
        .collect();
    let payload_hash = match header("x-amz-content-sha256") {
        h if h.is_empty() => hex_sha256(&req.body),
        h => h,
    };
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{}\n{payload_hash}",
        req.method,
        req.path,
        query.join("&"),
        auth.signed_headers
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{}\n{}",
        header("x-amz-date"),
        auth.scope,
        hex_sha256(canonical_request.as_bytes())
    );
    let mut scope = auth.scope.split('/');
    let (Some(date), Some(region), Some(service)) = (scope.next(), scope.next(), scope.next())
    else {
        return false;
    };
    let Some(day) = day_of(date) else {
        return false;
    };
    let key = v4::generate_signing_key(secret, day, region, service);
    v4::calculate_signature(key, string_to_sign.as_bytes()) == auth.signature
}

/// `20261129` as a time on that day.
fn day_of(date: &str) -> Option<SystemTime> {
    let rfc3339 = format!(
        "{}-{}-{}T00:00:00Z",
        date.get(..4)?,
        date.get(4..6)?,
        date.get(6..8)?
    );
    let day = aws_smithy_types::DateTime::from_str(
        &rfc3339,
        aws_smithy_types::date_time::Format::DateTime,
    )
    .ok()?;
    SystemTime::try_from(day).ok()
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// POSTs the Query-protocol `form` to the STS endpoint at `url`
/// (`http://127.0.0.1:<port>`), signed with `creds` for STS in us-east-1
/// (with `x-amz-security-token` when the credentials have a token).
pub async fn post(url: &str, form: &str, creds: &Credentials) -> Answer {
    let host = url
        .strip_prefix("http://")
        .expect("a plain-HTTP loopback endpoint")
        .trim_end_matches('/');
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let identity = aws_credential_types::Credentials::new(
        &creds.access_key_id,
        &creds.secret_access_key,
        Some(creds.session_token.clone()).filter(|t| !t.is_empty()),
        None,
        "testkit",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("complete signing parameters")
        .into();
    let uri = format!("http://{host}/");
    let signable = SignableRequest::new(
        "POST",
        uri.as_str(),
        [("host", host), ("content-type", content_type)].into_iter(),
        SignableBody::Bytes(form.as_bytes()),
    )
    .expect("a signable request");
    let (instructions, _) = sign(signable, &params)
        .expect("signing succeeds")
        .into_parts();
    let signed: String = instructions
        .headers()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{signed}\r\n{form}",
        form.len()
    );
    exchange(host, raw.as_bytes()).await
}

/// The text of the first `<tag>` element in an XML answer.
pub fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].to_owned())
}
