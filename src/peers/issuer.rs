//! The token's OIDC issuer, asked what it publishes (`--verify-issuer`):
//! `{iss}/.well-known/openid-configuration`, whose `issuer` must be the
//! token's `iss` to the byte, then its `jwks_uri`; the token's signature is
//! then checked against the key its `kid` names (`jwks`). This catches,
//! before STS gives its generic answer, an issuer the world cannot reach
//! and a token another cluster signed.
//!
//! Invariant: the only module that talks to an issuer. It sends a plain
//! `GET`, never the token, over the SDK's own HTTPS stack
//! (`traffic::plain_connector`: `AWS_CA_BUNDLE`'s trust and the proxy
//! variables as the STS client has them), follows no redirect, reads at
//! most [`DISCOVERY_MAX_BYTES`] and [`JWKS_MAX_BYTES`], and gives up at
//! [`TIME_LIMIT`] or the check's deadline, whichever is first. Plain HTTP
//! only to a loopback issuer, and only with `--allow-http-issuer` (tests).
//! What it fetched is kept in a [`Cache`] for [`CACHE_FOR`], fetched again
//! when a token names a key the kept set lacks (key rotation), at most once
//! per [`REFETCH_AFTER`] for each such key.
//! Imports `jwks`, `token` (the signed parts), `traffic` (the connector
//! and its rule on ports), `redact` (a URL's userinfo is a secret) and
//! `sts`'s text helpers; nothing above them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_http_client::tls::TlsContext;
use aws_smithy_runtime_api::client::http::{HttpConnector, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

use crate::identity::jwks::{Discovery, Jwks, Refusal, ACCEPTED_ALGS};
use crate::identity::token::RawToken;

/// The most of a discovery document read: EKS's is under 1 KiB.
pub const DISCOVERY_MAX_BYTES: usize = 64 * 1024;

/// The most of a key set read: a few RSA keys are a few KiB.
pub const JWKS_MAX_BYTES: usize = 256 * 1024;

/// How long what was fetched is used before it is fetched again. EKS
/// rotates its signing key every 7 days and publishes the next key ahead;
/// a token naming a key the kept set lacks fetches again at once.
pub const CACHE_FOR: Duration = Duration::from_secs(3600);

/// How long a key ID the kept set lacks waits before its issuer is asked
/// again for it: a token from another cluster names a key its issuer will
/// never publish, and `serve` checks every `--interval`; without this it
/// would fetch both documents at every check. Another key ID is fetched at
/// once: a rotation is not held back by an older unknown key.
pub const REFETCH_AFTER: Duration = Duration::from_secs(300);

/// The most key IDs whose last fetch is remembered: one token is checked
/// at a time, and it rotates a few times a day.
const ASKED_FOR_MAX: usize = 16;

/// The longest the issuer's two documents may take together, within the
/// check's deadline: the issuer is asked beside STS, and must not hold a
/// check whose STS answer came long ago.
pub const TIME_LIMIT: Duration = Duration::from_secs(10);

/// Where OIDC discovery puts the document, below the issuer.
pub const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// What an issuer published, as fetched for one `iss`.
#[derive(Debug, Clone)]
struct Published {
    iss: String,
    jwks_uri: String,
    jwks: Arc<Jwks>,
    fetched_at: Instant,
}

/// What was fetched, kept between the checks of `serve` (one per
/// process; `check` makes one check).
#[derive(Default)]
pub struct Cache(Mutex<Kept>);

#[derive(Default)]
struct Kept {
    published: Option<Published>,
    /// Key IDs tokens named when the issuer was last asked, and when: a
    /// key ID still missing is not asked for again before
    /// [`REFETCH_AFTER`].
    asked_for: Vec<(String, Instant)>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("issuer::Cache(..)")
    }
}

impl Cache {
    /// What is kept for `iss`, fresh at `now`, that a token naming `kid`
    /// can use: the set when it has `kid` (or the token names none), and
    /// also when it lacks `kid` but the issuer was asked for `kid` less
    /// than [`REFETCH_AFTER`] ago. `None`: ask the issuer.
    fn usable(&self, iss: &str, kid: Option<&str>, now: Instant) -> Option<Published> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let published = kept
            .published
            .as_ref()
            .filter(|p| p.iss == iss && now.saturating_duration_since(p.fetched_at) < CACHE_FOR)?;
        let Some(kid) = kid.filter(|kid| !published.jwks.has_kid(kid)) else {
            return Some(published.clone());
        };
        let recently = kept
            .asked_for
            .iter()
            .any(|(asked, at)| asked == kid && now.saturating_duration_since(*at) < REFETCH_AFTER);
        if recently {
            return Some(published.clone());
        }
        None
    }

    /// Keeps `published`, fetched for a token naming `kid`.
    fn put(&self, published: Published, kid: Option<&str>) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let at = published.fetched_at;
        kept.asked_for.retain(|(asked, when)| {
            Some(asked.as_str()) != kid && at.saturating_duration_since(*when) < REFETCH_AFTER
        });
        if let Some(kid) = kid {
            if kept.asked_for.len() >= ASKED_FOR_MAX {
                kept.asked_for.remove(0);
            }
            kept.asked_for.push((kid.to_owned(), at));
        }
        kept.published = Some(published);
    }
}

/// How the issuer may be reached.
pub struct Settings<'a> {
    /// `--allow-http-issuer`: plain HTTP to a loopback issuer (tests).
    pub allow_http: bool,
    /// `AWS_CA_BUNDLE`'s trust, when set.
    pub tls: Option<TlsContext>,
    pub deadline: Instant,
    pub cache: &'a Cache,
}

/// Which document could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Discovery,
    Jwks,
}

impl Document {
    pub fn words(self) -> &'static str {
        match self {
            Document::Discovery => "discovery document",
            Document::Jwks => "key set (jwks_uri)",
        }
    }
}

/// What the issuer check came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The key `kid` names verified the signature.
    Verified,
    /// The signature was not accepted (`jwks::Refusal`).
    Refused(Refusal),
    /// The token's signature segment is not base64url: it is no JWS.
    NotSigned(String),
    /// The discovery document names another issuer.
    Mismatch { url: String, published: String },
    /// A document could not be had: `refused` when irsa-doctor would not
    /// ask (a plain-HTTP issuer), else it asked and got nothing usable.
    Unreachable {
        url: String,
        document: Document,
        why: String,
        refused: bool,
    },
}

/// The issuer check, and what it saw.
#[derive(Debug, Clone)]
pub struct Verification {
    pub outcome: Outcome,
    pub alg: Option<String>,
    pub kid: Option<String>,
    /// The key set's URL, once the discovery document gave it.
    pub jwks_uri: Option<String>,
    /// The key IDs of the set, for a finding about an unknown one.
    pub kids: Vec<String>,
    /// The documents came from the cache, not from the issuer.
    pub cached: bool,
}

/// Checks `token`, whose claims say `iss`, against what `iss` publishes.
pub async fn verify(settings: &Settings<'_>, token: &RawToken, iss: &str) -> Verification {
    let mut seen = Verification {
        outcome: Outcome::Verified,
        alg: None,
        kid: None,
        jwks_uri: None,
        kids: vec![],
        cached: false,
    };
    let signed = match crate::identity::token::signed_parts(token) {
        Ok(signed) => signed,
        Err(e) => {
            seen.outcome = Outcome::NotSigned(e.to_string());
            return seen;
        }
    };
    seen.alg = signed.alg.clone();
    seen.kid = signed.kid.clone();
    // `none`, HMAC and the rest are refused before anything is fetched.
    if !signed
        .alg
        .as_deref()
        .is_some_and(|a| ACCEPTED_ALGS.contains(&a))
    {
        seen.outcome = Outcome::Refused(Refusal::Alg(signed.alg.clone()));
        return seen;
    }
    let published = match published(settings, iss, signed.kid.as_deref()).await {
        Ok((published, cached)) => {
            seen.cached = cached;
            published
        }
        Err(outcome) => {
            seen.outcome = outcome;
            return seen;
        }
    };
    seen.jwks_uri = Some(published.jwks_uri.clone());
    seen.kids = published.jwks.kids();
    seen.outcome = match crate::identity::jwks::verify(
        &published.jwks,
        signed.alg.as_deref(),
        signed.kid.as_deref(),
        signed.signing_input.as_bytes(),
        &signed.signature,
    ) {
        Ok(_) => Outcome::Verified,
        Err(refusal) => Outcome::Refused(refusal),
    };
    seen
}

/// The issuer's documents: kept ones while they are fresh and know `kid`
/// (or were fetched for `kid` less than [`REFETCH_AFTER`] ago), else
/// fetched (and kept). Says `true` when they came from the cache.
async fn published(
    settings: &Settings<'_>,
    iss: &str,
    kid: Option<&str>,
) -> Result<(Published, bool), Outcome> {
    if let Some(kept) = settings.cache.usable(iss, kid, Instant::now()) {
        return Ok((kept, true));
    }
    tracing::debug!(
        kid = kid.unwrap_or(""),
        "fetching the issuer's documents (none kept, or the kept key set lacks the token's key)"
    );
    let until = settings.deadline.min(Instant::now() + TIME_LIMIT);
    let connector = crate::peers::traffic::plain_connector(settings.tls.clone());
    let discovery_url = format!("{}{WELL_KNOWN}", iss.trim_end_matches('/'));
    let unreachable = |url: &str, document, why: String, refused| Outcome::Unreachable {
        url: url.to_owned(),
        document,
        why,
        refused,
    };
    judge_url(iss, settings.allow_http)
        .map_err(|why| unreachable(&discovery_url, Document::Discovery, why, true))?;
    let body = get(&connector, &discovery_url, DISCOVERY_MAX_BYTES, until)
        .await
        .map_err(|why| unreachable(&discovery_url, Document::Discovery, why, false))?;
    let Discovery { issuer, jwks_uri } =
        crate::identity::jwks::parse_discovery(&body).map_err(|why| {
            let why = format!("is not a discovery document: {why}");
            unreachable(&discovery_url, Document::Discovery, why, false)
        })?;
    if issuer != iss {
        return Err(Outcome::Mismatch {
            url: discovery_url,
            published: crate::guard::redact::one_line(issuer),
        });
    }
    let jwks_uri = crate::guard::redact::one_line(jwks_uri);
    crate::guard::redact::register_url_userinfo(&jwks_uri);
    judge_url(&jwks_uri, settings.allow_http)
        .map_err(|why| unreachable(&jwks_uri, Document::Jwks, why, true))?;
    let body = get(&connector, &jwks_uri, JWKS_MAX_BYTES, until)
        .await
        .map_err(|why| unreachable(&jwks_uri, Document::Jwks, why, false))?;
    let jwks = crate::identity::jwks::parse_jwks(&body).map_err(|why| {
        let why = format!("is not a key set: {why}");
        unreachable(&jwks_uri, Document::Jwks, why, false)
    })?;
    let published = Published {
        iss: iss.to_owned(),
        jwks_uri,
        jwks: Arc::new(jwks),
        fetched_at: Instant::now(),
    };
    settings.cache.put(published.clone(), kid);
    Ok((published, false))
}

/// Whether irsa-doctor asks `url`: https anywhere; plain http only to a
/// loopback host and only with `--allow-http-issuer`. Says why not.
pub fn judge_url(url: &str, allow_http: bool) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
    let host = parsed.host().ok_or("has no host")?;
    // The URL parser refuses a port above 65535 or not a number; 0 it
    // takes, and no connection can use it.
    if parsed.port() == Some(0) {
        return Err("names the port 0, which no connection can use".to_owned());
    }
    let loopback = match host {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_http && loopback => Ok(()),
        "http" if loopback => Err(
            "is plain HTTP, which irsa-doctor asks only with --allow-http-issuer (for tests)"
                .to_owned(),
        ),
        "http" => Err(
            "is plain HTTP on a host that is not loopback: OIDC and IAM require https, and \
             --allow-http-issuer allows only loopback issuers (for tests)"
                .to_owned(),
        ),
        other => Err(format!("has the scheme {other}, not https")),
    }
}

/// One `GET`, within `until`: the body of a 200 of at most `limit`
/// bytes, or why there is none.
async fn get(
    connector: &SharedHttpConnector,
    url: &str,
    limit: usize,
    until: Instant,
) -> Result<Bytes, String> {
    // As read for the request, which `http::Uri` may read otherwise than
    // the URL parser that judged it: a port it cannot read went to 443.
    crate::peers::traffic::url_port(url).map_err(|why| format!("cannot be asked: {why}"))?;
    let mut request = HttpRequest::get(url).map_err(|e| format!("cannot be asked ({e})"))?;
    request.headers_mut().insert("accept", "application/json");
    let budget = until.saturating_duration_since(Instant::now());
    let waited = || {
        format!(
            "gave no answer in time (irsa-doctor waited {:.1} s: at most {} s for the \
             issuer, within --timeout)",
            budget.as_secs_f64(),
            TIME_LIMIT.as_secs()
        )
    };
    let response = tokio::time::timeout_at(until.into(), connector.call(request))
        .await
        .map_err(|_| waited())?
        .map_err(|e| {
            format!(
                "could not be reached: {}",
                crate::guard::redact::one_line(crate::guard::text::describe(&e))
            )
        })?;
    let status = response.status().as_u16();
    if status != 200 {
        let redirect = if (300..400).contains(&status) {
            " (a redirect, which irsa-doctor does not follow)"
        } else {
            ""
        };
        return Err(format!("answered HTTP {status}{redirect}"));
    }
    let body = Limited::new(response.into_body(), limit).collect();
    match tokio::time::timeout_at(until.into(), body).await {
        Err(_) => Err(waited()),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(format!(
            "answered more than {limit} bytes, the most irsa-doctor reads of it"
        )),
        Ok(Err(e)) => Err(format!(
            "broke off its answer: {}",
            crate::guard::redact::one_line(crate::guard::text::describe(e.as_ref()))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_asked_only_on_loopback_and_only_when_allowed() {
        assert_eq!(
            judge_url("https://oidc.eks.eu-west-1.amazonaws.com/id/X", false),
            Ok(())
        );
        assert_eq!(judge_url("http://127.0.0.1:8080", true), Ok(()));
        assert_eq!(judge_url("http://[::1]:8080/x", true), Ok(()));
        assert_eq!(judge_url("http://localhost:1", true), Ok(()));
        let why = judge_url("http://127.0.0.1:8080", false).unwrap_err();
        assert!(why.contains("--allow-http-issuer"), "{why}");
        let why = judge_url("http://oidc.example.com", true).unwrap_err();
        assert!(why.contains("not loopback"), "{why}");
        assert!(judge_url("ftp://x", true).unwrap_err().contains("ftp"));
        assert!(judge_url("not a url", true).is_err());
    }

    fn set_of(kids: &[&str]) -> Arc<Jwks> {
        Arc::new(Jwks {
            keys: kids
                .iter()
                .map(|kid| crate::identity::jwks::Jwk {
                    kid: Some((*kid).to_owned()),
                    alg: None,
                    key: crate::identity::jwks::Key::Unusable("a test key".into()),
                })
                .collect(),
        })
    }

    #[test]
    fn an_issuer_port_no_connection_can_use_is_refused() {
        for url in [
            "https://127.0.0.1:0/id/X",
            "https://127.0.0.1:65536/id/X",
            "https://127.0.0.1:99999/id/X",
            "https://127.0.0.1:x/id/X",
            "http://127.0.0.1:99999",
        ] {
            assert!(judge_url(url, true).is_err(), "{url}");
        }
    }

    #[tokio::test]
    async fn a_port_http_uri_cannot_read_is_not_asked() {
        // Past the URL parser's judgment, the request's own reading: the
        // connector would have gone to port 443.
        let connector = crate::peers::traffic::plain_connector(None);
        let until = Instant::now() + Duration::from_secs(5);
        let why = get(&connector, "https://127.0.0.1:99999/keys", 10, until)
            .await
            .unwrap_err();
        assert!(why.contains("above 65535"), "{why}");
    }

    #[test]
    fn the_cache_keeps_one_issuer_for_an_hour() {
        let cache = Cache::default();
        let t0 = Instant::now();
        let published = Published {
            iss: "https://a".into(),
            jwks_uri: "https://a/keys".into(),
            jwks: set_of(&["k"]),
            fetched_at: t0,
        };
        cache.put(published, Some("k"));
        assert!(cache.usable("https://a", Some("k"), t0).is_some());
        assert!(cache.usable("https://a", None, t0).is_some());
        assert!(
            cache.usable("https://b", Some("k"), t0).is_none(),
            "another issuer"
        );
        assert!(
            cache
                .usable("https://a", Some("k"), t0 + CACHE_FOR)
                .is_none(),
            "an hour old"
        );
    }

    #[test]
    fn an_unknown_kid_is_asked_for_once_per_five_minutes_and_another_at_once() {
        let cache = Cache::default();
        let t0 = Instant::now();
        let fetched = |at| Published {
            iss: "https://a".into(),
            jwks_uri: "https://a/keys".into(),
            jwks: set_of(&["published"]),
            fetched_at: at,
        };
        // Fetched for a token naming "foreign", which the set lacks.
        cache.put(fetched(t0), Some("foreign"));
        for later in [
            Duration::ZERO,
            Duration::from_secs(1),
            REFETCH_AFTER - Duration::from_millis(1),
        ] {
            let kept = cache.usable("https://a", Some("foreign"), t0 + later);
            assert!(
                kept.is_some_and(|k| !k.jwks.has_kid("foreign")),
                "{later:?}: the kept set, still lacking it"
            );
        }
        assert!(
            cache
                .usable("https://a", Some("foreign"), t0 + REFETCH_AFTER)
                .is_none(),
            "asked again after five minutes"
        );
        assert!(
            cache
                .usable("https://a", Some("rotated"), t0 + Duration::from_secs(1))
                .is_none(),
            "another kid is asked for at once"
        );
        // The fetch for "rotated" does not reset "foreign"'s wait.
        cache.put(fetched(t0 + Duration::from_secs(2)), Some("rotated"));
        assert!(cache
            .usable("https://a", Some("foreign"), t0 + Duration::from_secs(3))
            .is_some());
        assert!(cache
            .usable("https://a", Some("rotated"), t0 + Duration::from_secs(3))
            .is_some());
        assert!(cache
            .usable("https://a", Some("published"), t0 + Duration::from_secs(3))
            .is_some());
    }

    #[test]
    fn the_cache_remembers_a_bounded_number_of_kids() {
        let cache = Cache::default();
        let t0 = Instant::now();
        for i in 0..ASKED_FOR_MAX * 3 {
            cache.put(
                Published {
                    iss: "https://a".into(),
                    jwks_uri: "https://a/keys".into(),
                    jwks: set_of(&[]),
                    fetched_at: t0,
                },
                Some(&format!("k{i}")),
            );
        }
        let kept = cache.0.lock().unwrap();
        assert_eq!(kept.asked_for.len(), ASKED_FOR_MAX);
        assert_eq!(
            kept.asked_for.last().unwrap().0,
            format!("k{}", ASKED_FOR_MAX * 3 - 1)
        );
    }
}
