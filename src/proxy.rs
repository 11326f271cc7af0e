//! Whether the app's SDK reaches STS through the proxy, as irsa-doctor did.
//!
//! SDKs read `NO_PROXY` differently. The AWS SDK for Rust (hyper-util's
//! matcher, which irsa-doctor's own requests go through) applies only IP
//! and CIDR entries to an IP-literal host, so `*` and `host:port` entries
//! do not bypass the proxy for one; botocore (boto3, the AWS CLI) honours
//! `*` and `host:port` but ignores CIDR entries; Go never proxies loopback
//! and honours all three. irsa-doctor cannot see the app's language, so
//! where these readings disagree for the STS endpoint it says so, naming
//! who goes direct and who through the proxy: a pass then holds only for
//! apps whose SDK reads `NO_PROXY` as irsa-doctor did.

use std::net::IpAddr;

use hyper::Uri;
use hyper_util::client::proxy::matcher::Matcher;

use crate::report::{Code, Finding};

/// The proxy settings, each the first of its upper- and lower-case names.
#[derive(Debug, Default, Clone)]
struct ProxyEnv {
    all: Option<String>,
    http: Option<String>,
    https: Option<String>,
    no: Option<String>,
}

impl ProxyEnv {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| lookup(n).filter(|v| !v.trim().is_empty()))
        };
        ProxyEnv {
            all: first(["ALL_PROXY", "all_proxy"]),
            http: first(["HTTP_PROXY", "http_proxy"]),
            https: first(["HTTPS_PROXY", "https_proxy"]),
            no: first(["NO_PROXY", "no_proxy"]),
        }
    }

    /// The proxy a scheme-keyed SDK (botocore, Go) uses for `scheme`.
    fn for_scheme(&self, scheme: &str) -> Option<&str> {
        match scheme {
            "https" => self.https.as_deref(),
            _ => self.http.as_deref(),
        }
    }
}

/// The AWS SDK for Rust's reading: hyper-util's own matcher, built from the
/// same values.
fn rust_proxies(env: &ProxyEnv, uri: &Uri) -> bool {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    Matcher::builder()
        .all(value(&env.all))
        .http(value(&env.http))
        .https(value(&env.https))
        .no(value(&env.no))
        .build()
        .intercept(uri)
        .is_some()
}

/// botocore's reading: urllib's `proxy_bypass_environment` on the URL's
/// netloc (host, and port when the URL has one).
fn botocore_proxies(env: &ProxyEnv, scheme: &str, host: &str, port: Option<u16>) -> bool {
    if env.for_scheme(scheme).is_none() {
        return false;
    }
    let Some(no) = env.no.as_deref() else {
        return true;
    };
    if no.trim() == "*" {
        return false;
    }
    let host = host.to_ascii_lowercase();
    let netloc = match port {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let bypass = no
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .any(|name| {
            let name = name.trim_start_matches('.').to_ascii_lowercase();
            let dotted = format!(".{name}");
            host == name || netloc == name || host.ends_with(&dotted) || netloc.ends_with(&dotted)
        });
    !bypass
}

/// Go's reading: golang.org/x/net/http/httpproxy's `useProxy`.
fn go_proxies(env: &ProxyEnv, scheme: &str, host: &str, port: u16) -> bool {
    if env.for_scheme(scheme).is_none() {
        return false;
    }
    let host = host.to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    let Some(no) = env.no.as_deref() else {
        return true;
    };
    for entry in no.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry == "*" {
            return false;
        }
        if let Ok(net) = entry.parse::<ipnet::IpNet>() {
            if ip.is_some_and(|ip| net.contains(&ip)) {
                return false;
            }
            continue;
        }
        if let Ok(entry_ip) = entry.parse::<IpAddr>() {
            if ip == Some(entry_ip) {
                return false;
            }
            continue;
        }
        let (name, entry_port) = match entry.rsplit_once(':') {
            Some((name, p)) => match p.parse::<u16>() {
                Ok(p) => (name, Some(p)),
                Err(_) => (entry, None),
            },
            None => (entry, None),
        };
        if entry_port.is_some_and(|p| p != port) {
            continue;
        }
        let name = name.to_ascii_lowercase();
        if let Ok(entry_ip) = name.parse::<IpAddr>() {
            if ip == Some(entry_ip) {
                return false;
            }
            continue;
        }
        let suffix = name.trim_start_matches('*');
        let matched = if let Some(bare) = suffix.strip_prefix('.') {
            host.ends_with(suffix) || host == bare
        } else {
            host == suffix || host.ends_with(&format!(".{suffix}"))
        };
        if matched {
            return false;
        }
    }
    true
}

/// `PROXY_BYPASS_DIFFERS` when SDKs disagree on whether `endpoint` is
/// reached through the proxy; `None` when they agree or no proxy is set.
pub fn finding(lookup: impl Fn(&str) -> Option<String>, endpoint: &str) -> Option<Finding> {
    let env = ProxyEnv::from_lookup(lookup);
    if env.all.is_none() && env.http.is_none() && env.https.is_none() {
        return None;
    }
    let uri: Uri = endpoint.parse().ok()?;
    let scheme = uri.scheme_str()?.to_owned();
    let host = uri
        .host()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let default_port = if scheme == "https" { 443 } else { 80 };
    let readings = [
        (
            "the AWS SDK for Rust and irsa-doctor",
            rust_proxies(&env, &uri),
        ),
        (
            "botocore (boto3, the AWS CLI)",
            botocore_proxies(&env, &scheme, &host, uri.port_u16()),
        ),
        (
            "the AWS SDK for Go",
            go_proxies(&env, &scheme, &host, uri.port_u16().unwrap_or(default_port)),
        ),
    ];
    if readings.iter().all(|(_, p)| *p == readings[0].1) {
        return None;
    }
    let list = |proxied: bool| {
        readings
            .iter()
            .filter(|(_, p)| *p == proxied)
            .map(|(who, _)| *who)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let no = env.no.as_deref().unwrap_or("(unset)");
    Some(
        Finding::warning(
            Code::ProxyBypassDiffers,
            format!(
                "SDKs read NO_PROXY={no:?} differently for the STS endpoint {host}: through the \
                 proxy: {}; directly: {}. irsa-doctor's verdict holds for apps whose SDK reads \
                 it as irsa-doctor did",
                list(true),
                list(false)
            ),
            "Write NO_PROXY so that every SDK reads it alike: list the endpoint's host name or \
             IP address itself, without a port, and use neither * nor CIDR ranges for it (the \
             AWS SDK for Rust applies only IP and CIDR entries to an IP address; botocore \
             ignores CIDR ranges; Go never proxies loopback).",
        )
        .expected(format!(
            "every SDK reaching {host} the same way (all through the proxy or all directly)"
        ))
        .found(format!(
            "through the proxy: {}; directly: {}",
            list(true),
            list(false)
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readings(no: &str, endpoint: &str) -> Option<String> {
        finding(
            |name| match name {
                "HTTPS_PROXY" | "HTTP_PROXY" => Some("http://proxy.invalid:3128".into()),
                "NO_PROXY" => Some(no.to_owned()),
                _ => None,
            },
            endpoint,
        )
        .map(|f| f.found.unwrap_or_default())
    }

    #[test]
    fn a_star_or_host_port_entry_splits_rust_from_botocore_for_an_ip_endpoint() {
        let star = readings("*", "http://10.1.2.3:4566").unwrap();
        assert!(
            star.starts_with("through the proxy: the AWS SDK for Rust"),
            "{star}"
        );
        assert!(star.contains("directly: botocore"), "{star}");
        let host_port = readings("10.1.2.3:4566", "http://10.1.2.3:4566").unwrap();
        assert!(
            host_port.starts_with("through the proxy: the AWS SDK for Rust"),
            "{host_port}"
        );
    }

    #[test]
    fn a_cidr_entry_splits_botocore_from_the_rest() {
        let cidr = readings("10.0.0.0/8", "https://10.1.2.3").unwrap();
        assert_eq!(
            cidr,
            "through the proxy: botocore (boto3, the AWS CLI); directly: the AWS SDK for Rust \
             and irsa-doctor, the AWS SDK for Go"
        );
    }

    #[test]
    fn plain_host_entries_and_no_proxy_at_all_agree() {
        assert_eq!(readings("10.1.2.3", "http://10.1.2.3:4566"), None);
        assert_eq!(
            readings(".amazonaws.com", "https://sts.us-west-2.amazonaws.com"),
            None
        );
        assert_eq!(
            readings("example.invalid", "https://sts.us-west-2.amazonaws.com"),
            None
        );
        assert_eq!(
            finding(|_| None, "https://sts.us-west-2.amazonaws.com"),
            None,
            "no proxy configured"
        );
    }
}
