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

/// One SDK's reading of the proxy variables.
#[derive(Debug, Default, Clone)]
struct ProxyEnv {
    all: Option<String>,
    http: Option<String>,
    https: Option<String>,
    no: Option<String>,
}

impl ProxyEnv {
    /// hyper-util's reading (the AWS SDK for Rust): the upper-case name if
    /// it is set at all, even empty, else the lower-case one.
    fn rust(lookup: &impl Fn(&str) -> Option<String>) -> Self {
        let first_set = |upper: &str, lower: &str| lookup(upper).or_else(|| lookup(lower));
        ProxyEnv {
            all: first_set("ALL_PROXY", "all_proxy"),
            http: first_set("HTTP_PROXY", "http_proxy"),
            https: first_set("HTTPS_PROXY", "https_proxy"),
            no: first_set("NO_PROXY", "no_proxy"),
        }
    }

    /// urllib's reading (botocore): the lower-case name wins when set, and
    /// an empty lower-case one removes the setting; no `all_proxy`.
    fn python(lookup: &impl Fn(&str) -> Option<String>) -> Self {
        let read = |upper: &str, lower: &str| match lookup(lower) {
            Some(v) => Some(v).filter(|v| !v.is_empty()),
            None => lookup(upper).filter(|v| !v.is_empty()),
        };
        ProxyEnv {
            all: None,
            http: read("HTTP_PROXY", "http_proxy"),
            https: read("HTTPS_PROXY", "https_proxy"),
            no: read("NO_PROXY", "no_proxy"),
        }
    }

    /// Go's reading (httpproxy.FromEnvironment): the first non-empty of
    /// the upper- and lower-case names; no `ALL_PROXY`.
    fn go(lookup: &impl Fn(&str) -> Option<String>) -> Self {
        let any = |upper: &str, lower: &str| {
            [upper, lower]
                .iter()
                .find_map(|n| lookup(n).filter(|v| !v.is_empty()))
        };
        ProxyEnv {
            all: None,
            http: any("HTTP_PROXY", "http_proxy"),
            https: any("HTTPS_PROXY", "https_proxy"),
            no: any("NO_PROXY", "no_proxy"),
        }
    }

    fn any_proxy(&self) -> bool {
        [&self.all, &self.http, &self.https]
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| !v.is_empty()))
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
/// values it would read.
fn rust_matcher(env: &ProxyEnv) -> Matcher {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    Matcher::builder()
        .all(value(&env.all))
        .http(value(&env.http))
        .https(value(&env.https))
        .no(value(&env.no))
        .build()
}

fn rust_proxies(env: &ProxyEnv, uri: &Uri) -> bool {
    rust_matcher(env).intercept(uri).is_some()
}

/// The proxy the AWS SDK for Rust, and so irsa-doctor, sends a request for
/// `url` through, as `scheme://host:port`: never the user and password a
/// proxy variable may carry. `None` when the request goes directly.
pub fn rust_proxy(lookup: impl Fn(&str) -> Option<String>, url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let intercept = rust_matcher(&ProxyEnv::rust(&lookup)).intercept(&uri)?;
    let proxy = intercept.uri();
    // hyper-util keeps the credentials apart already; cut them anyway.
    let authority = proxy.authority()?.as_str().rsplit('@').next()?;
    Some(format!("{}://{authority}", proxy.scheme_str()?))
}

/// botocore's reading: urllib's `proxy_bypass_environment` on the URL's
/// netloc (`host[:port]`, an IPv6 host in brackets).
fn botocore_proxies(env: &ProxyEnv, scheme: &str, netloc: &str) -> bool {
    if env.for_scheme(scheme).is_none() {
        return false;
    }
    let Some(no) = env.no.as_deref() else {
        return true;
    };
    if no.trim() == "*" {
        return false;
    }
    let netloc = netloc.to_ascii_lowercase();
    // urllib's _splitport: a trailing ":digits" is the port.
    let host = match netloc.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => netloc.as_str(),
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
    let port = port.to_string();
    for entry in no.split(',').map(|e| e.trim().to_ascii_lowercase()) {
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return false;
        }
        if let Ok(net) = entry.parse::<ipnet::IpNet>() {
            if ip.is_some_and(|ip| net.contains(&ip)) {
                return false;
            }
            continue;
        }
        // host:port and [v6]:port; a bare IPv6 address has colons too.
        let (entry_host, entry_port) = match entry.rsplit_once(':') {
            Some((h, p))
                if !p.is_empty()
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && (!h.contains(':') || h.starts_with('[')) =>
            {
                (h.trim_start_matches('[').trim_end_matches(']'), p)
            }
            _ => (entry.as_str(), ""),
        };
        let port_ok = entry_port.is_empty() || entry_port == port;
        if let Ok(entry_ip) = entry_host.parse::<IpAddr>() {
            if ip == Some(entry_ip) && port_ok {
                return false;
            }
            continue;
        }
        // Domain entries never apply to an IP address.
        if ip.is_some() || entry_host.is_empty() {
            continue;
        }
        let bare = entry_host.strip_prefix('*').unwrap_or(entry_host);
        let (suffix, match_host) = match bare.strip_prefix('.') {
            Some(_) => (bare.to_owned(), false),
            None => (format!(".{bare}"), true),
        };
        if (host.ends_with(&suffix) || (match_host && host == suffix[1..])) && port_ok {
            return false;
        }
    }
    true
}

/// Each SDK's answer to "does a request to `url` go through the proxy?";
/// `None` when no proxy is set at all, or `url` is not a URL.
fn readings(
    lookup: &impl Fn(&str) -> Option<String>,
    url: &str,
) -> Option<[(&'static str, bool); 3]> {
    let (rust, python, go) = (
        ProxyEnv::rust(lookup),
        ProxyEnv::python(lookup),
        ProxyEnv::go(lookup),
    );
    if !rust.any_proxy() && !python.any_proxy() && !go.any_proxy() {
        return None;
    }
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_owned();
    let netloc = uri.authority()?.as_str().rsplit('@').next()?.to_owned();
    let host = uri
        .host()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let default_port = if scheme == "https" { 443 } else { 80 };
    Some([
        (RUST, rust_proxies(&rust, &uri)),
        (
            "botocore (boto3, the AWS CLI)",
            botocore_proxies(&python, &scheme, &netloc),
        ),
        (
            "the AWS SDK for Go",
            go_proxies(&go, &scheme, &host, uri.port_u16().unwrap_or(default_port)),
        ),
    ])
}

/// Who [`proxied_by`] names for the AWS SDK for Rust.
pub const RUST: &str = "the AWS SDK for Rust and irsa-doctor";

/// The SDKs that would send a request to `url` through the proxy.
pub fn proxied_by(lookup: impl Fn(&str) -> Option<String>, url: &str) -> Vec<&'static str> {
    readings(&lookup, url).map_or(vec![], |r| {
        r.iter().filter(|(_, p)| *p).map(|(who, _)| *who).collect()
    })
}

/// `PROXY_BYPASS_DIFFERS` when SDKs disagree on whether `endpoint` is
/// reached through the proxy; `None` when they agree or no proxy is set.
pub fn finding(lookup: impl Fn(&str) -> Option<String>, endpoint: &str) -> Option<Finding> {
    let readings = readings(&lookup, endpoint)?;
    let uri: Uri = endpoint.parse().ok()?;
    let host = uri
        .host()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let rust = ProxyEnv::rust(&lookup);
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
    let no = rust.no.as_deref().unwrap_or("(unset)");
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
    fn each_sdk_reads_its_own_variables() {
        // hyper-util takes the upper-case name even when empty; urllib lets
        // the lower-case one win; Go takes the first non-empty one.
        let lookup = |name: &str| match name {
            "HTTPS_PROXY" => Some(String::new()),
            "https_proxy" => Some("http://proxy.invalid:3128".to_owned()),
            _ => None,
        };
        let found = finding(lookup, "https://sts.us-west-2.amazonaws.com")
            .unwrap()
            .found
            .unwrap();
        assert_eq!(
            found,
            "through the proxy: botocore (boto3, the AWS CLI), the AWS SDK for Go; directly: \
             the AWS SDK for Rust and irsa-doctor"
        );
    }

    #[test]
    fn go_domain_entries_follow_x_net() {
        let env = ProxyEnv {
            https: Some("http://p.invalid".into()),
            no: Some(".amazonaws.com".into()),
            ..ProxyEnv::default()
        };
        assert!(!go_proxies(&env, "https", "sts.amazonaws.com", 443));
        assert!(
            go_proxies(&env, "https", "amazonaws.com", 443),
            "a leading dot is subdomains only"
        );
        let env = ProxyEnv {
            no: Some("10.0.0.1:4566,[fd00::1]:443".into()),
            ..env
        };
        assert!(!go_proxies(&env, "https", "10.0.0.1", 4566));
        assert!(go_proxies(&env, "https", "10.0.0.1", 443), "another port");
        assert!(!go_proxies(&env, "https", "fd00::1", 443));
    }

    #[test]
    fn the_proxy_is_named_without_its_credentials() {
        let lookup = |name: &str| match name {
            "HTTPS_PROXY" => Some("http://user:s3cr3t-pass@proxy.invalid:3128".to_owned()),
            "HTTP_PROXY" => Some("plain.invalid:8080".to_owned()),
            "NO_PROXY" => Some("sts.internal.invalid".to_owned()),
            _ => None,
        };
        assert_eq!(
            rust_proxy(lookup, "https://sts.us-west-2.amazonaws.com").as_deref(),
            Some("http://proxy.invalid:3128")
        );
        assert_eq!(
            rust_proxy(lookup, "http://sts.example.invalid:4566").as_deref(),
            Some("http://plain.invalid:8080"),
            "no scheme means http"
        );
        assert_eq!(rust_proxy(lookup, "https://sts.internal.invalid"), None);
        assert_eq!(rust_proxy(|_| None, "https://sts.amazonaws.com"), None);
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
