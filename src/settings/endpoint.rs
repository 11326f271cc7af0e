//! Endpoint and region settings, validated before anything is sent.
//!
//! A typo in `AWS_ENDPOINT_URL_STS` (`127.0.0.1:9`, a stray space,
//! `https//...`) does not make the SDK refuse to start: it builds a
//! request it cannot send, logs it (the token included, in some versions)
//! and reports a network error, which looks transient and gets retried.
//! Nothing was ever sent. So these settings are judged here first, with
//! the same URL parser aws-config uses, and a bad one is a definitive
//! finding that names the variable; the check then sends nothing at all.

use crate::report::{Code, Finding, Severity};

/// The variables that set an endpoint URL, in the order the SDK reads
/// them: the service-specific one wins over the global one.
pub const ENDPOINT_VARS: [&str; 3] = [
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
];

/// The variables that name a region, in the SDK's order.
pub const REGION_VARS: [&str; 2] = ["AWS_REGION", "AWS_DEFAULT_REGION"];

/// The regions whose STS requests go to the global endpoint
/// `sts.amazonaws.com` under `AWS_STS_REGIONAL_ENDPOINTS=legacy` (STS's
/// endpoint rules, `UseGlobalEndpoint`); every other region stays regional.
const LEGACY_GLOBAL_REGIONS: [&str; 15] = [
    "ap-northeast-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// STS's global endpoint.
pub const GLOBAL_STS_ENDPOINT: &str = "https://sts.amazonaws.com";

/// Whether an SDK that reads `AWS_STS_REGIONAL_ENDPOINTS` (`setting`)
/// sends STS requests for `region` to [`GLOBAL_STS_ENDPOINT`]: `legacy`, a
/// region on the legacy list, and no custom STS endpoint (which every
/// current SDK puts first).
pub fn uses_global_sts(setting: Option<&str>, region: &str, custom_sts_endpoint: bool) -> bool {
    setting.is_some_and(|v| v.trim().eq_ignore_ascii_case("legacy"))
        && !custom_sts_endpoint
        && LEGACY_GLOBAL_REGIONS.contains(&region)
}

/// The switches that change which AWS endpoint an SDK forms, as
/// (variable, profile key, what it selects). aws-config reads each into
/// `SdkConfig` (`default_provider/use_fips.rs`, `use_dual_stack.rs`): the
/// variable first, else the profile's key; `true` or `false` in any case,
/// anything else ignored with a warning (the profile's key too).
pub const SWITCHES: [(&str, &str, &str); 2] = [
    ("AWS_USE_FIPS_ENDPOINT", "use_fips_endpoint", "FIPS"),
    (
        "AWS_USE_DUALSTACK_ENDPOINT",
        "use_dualstack_endpoint",
        "dual-stack",
    ),
];

/// The regions where STS serves a FIPS endpoint. botocore's
/// `data/endpoints.json` (1.43) gives `sts` a `fips` variant in us-east-1,
/// us-east-2, us-west-1, us-west-2, us-gov-east-1 and us-gov-west-1; AWS's
/// FIPS page also names Canada's two regions, kept here so that a region
/// that may have one is never said to lack it. Only used to explain a name
/// that could not be reached: a region missing here whose FIPS name
/// answers is not reported at all.
pub const STS_FIPS_REGIONS: [&str; 8] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "ca-central-1",
    "ca-west-1",
];

/// Whether STS may serve a FIPS endpoint in `region`.
pub fn sts_fips_listed(region: &str) -> bool {
    STS_FIPS_REGIONS.contains(&region)
}

/// How aws-config reads a switch's value: `true` or `false` in any case,
/// nothing trimmed (`environment::parse_bool`).
fn parse_switch(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// `ENDPOINT_INVALID` for a switch variable `name` that aws-config
/// ignores; `what` is what the switch selects.
fn switch_invalid(name: &str, key: &str, what: &str, value: &str) -> Finding {
    Finding::error(
        Code::EndpointInvalid,
        format!(
            "{name} is {value:?}, which is neither true nor false: the AWS SDK for Rust ignores \
             it with a warning (and with it the profile's {key}), and botocore reads anything \
             but true as false, so the app does not use {what} endpoints"
        ),
        format!(
            "Set {name} to true or false (or remove it), in the container spec or wherever \
             the value comes from (envFrom ConfigMaps, the image's ENV): kubectl set env \
             deployment/<name> -n <namespace> {name}=true"
        ),
    )
    .expected("true or false")
    .found(format!("{name}={value:?}"))
}

/// `ENDPOINT_INVALID` for each switch the selected profile (`profile`)
/// sets to a value aws-config ignores, when its variable is not set at all
/// (a set variable, even an empty or invalid one, is the only value
/// aws-config reads: `EnvConfigValue::load` never falls back to the
/// profile then). `values` are the profile's (key, value).
pub fn profile_switches_invalid(
    profile: &str,
    values: &[(&str, String)],
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<Finding> {
    SWITCHES
        .iter()
        .filter(|(name, _, _)| lookup(name).is_none())
        .filter_map(|(name, key, what)| {
            let (_, value) = values.iter().find(|(k, _)| k == key)?;
            parse_switch(value)
                .is_none()
                .then(|| profile_switch_invalid(profile, name, key, what, value))
        })
        .collect()
}

/// `ENDPOINT_INVALID` for the profile's switch `key` that aws-config
/// ignores.
fn profile_switch_invalid(
    profile: &str,
    name: &str,
    key: &str,
    what: &str,
    value: &str,
) -> Finding {
    Finding::error(
        Code::EndpointInvalid,
        format!(
            "the shared config file's {key} (profile {profile:?}) is {value:?}, which is \
             neither true nor false: the AWS SDK for Rust ignores it with a warning, and \
             botocore reads anything but true as false, so the app does not use {what} \
             endpoints"
        ),
        format!(
            "Set {key} to true or false in that profile (~/.aws/config, or the file \
             AWS_CONFIG_FILE names), or set {name}, which takes precedence: kubectl set env \
             deployment/<name> -n <namespace> {name}=true"
        ),
    )
    .expected("true or false")
    .found(format!("{key} = {value:?} in the shared config file"))
}

/// `ENDPOINT_INVALID` for a switch that is on beside a custom STS endpoint:
/// STS's endpoint rules refuse the pair ("Invalid Configuration: FIPS and
/// custom endpoint are not supported"), so the AWS SDK for Rust builds no
/// STS request at all, while botocore drops the switch and uses the URL.
pub fn switch_with_custom_endpoint(switch: &str, reason: &str) -> Finding {
    Finding::error(
        Code::EndpointInvalid,
        format!(
            "{switch} is on and a custom STS endpoint is set (AWS_ENDPOINT_URL_STS or \
             AWS_ENDPOINT_URL): STS's endpoint rules refuse the pair ({reason}), so the AWS SDK \
             for Rust sends no STS request at all (the SDK for Java v2 refuses it too), while \
             botocore ignores the switch and uses the URL"
        ),
        "Either remove the custom endpoint and let the switch choose AWS's endpoint, or turn \
         the switch off and name the endpoint you want (a FIPS one, say \
         https://sts-fips.us-east-1.amazonaws.com) in AWS_ENDPOINT_URL_STS: kubectl set env \
         deployment/<name> -n <namespace> AWS_USE_FIPS_ENDPOINT- AWS_USE_DUALSTACK_ENDPOINT-. \
         irsa-doctor sent nothing.",
    )
    .expected("a custom STS endpoint, or the FIPS and dual-stack switches, not both")
    .found(reason.to_owned())
}

/// Why an endpoint value cannot be used; completes "... is not a valid
/// endpoint URL: ".
fn endpoint_problem(value: &str) -> Option<String> {
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "it contains {} (a stray space or line break from the manifest?)",
            match c {
                ' ' => "a space".to_owned(),
                '\t' => "a tab".to_owned(),
                '\n' | '\r' => "a line break".to_owned(),
                other => format!("the character {:?}", other),
            }
        ));
    }
    let url = match url::Url::parse(value) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return Some(
                if value.starts_with("https//") || value.starts_with("http//") {
                    "its scheme lacks the colon (https:// is written https//)".to_owned()
                } else {
                    "it has no scheme (it must start with https:// or http://)".to_owned()
                },
            )
        }
        Err(e) => return Some(format!("it does not parse as a URL ({e})")),
    };
    if !matches!(url.scheme(), "http" | "https") {
        // "127.0.0.1:9" and "localhost:4566" parse with the host as scheme.
        return Some(if value.contains("://") {
            format!(
                "its scheme is {:?}; only https:// and http:// work",
                url.scheme()
            )
        } else {
            "it has no scheme (it must start with https:// or http://)".to_owned()
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Some("it has no host name".to_owned());
    }
    // The URL parser refuses a port above 65535 or not a number, but takes
    // 0, which no connection can use.
    if url.port() == Some(0) {
        return Some("its port is 0, which no connection can use".to_owned());
    }
    // The SDK puts the value on its requests with `http::Uri`, which is
    // stricter than the WHATWG parser above: that one quietly repairs
    // `https:/host`, `https:host` and `https:\\host`, which the SDK then
    // fails to apply (and once logged the request it failed on).
    match value.parse::<hyper::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.host().is_some_and(|h| !h.is_empty()) =>
        {
            None
        }
        Ok(_) => Some(
            "the SDK reads no scheme and host in it (the // after https: is missing or \
             malformed)"
                .to_owned(),
        ),
        Err(e) => Some(format!("the SDK cannot use it as a URI ({e})")),
    }
}

/// Whether `region` can stand in a host name, which every regional
/// endpoint needs: letters, digits and hyphens, 1 to 63 of them, not
/// starting or ending with a hyphen.
pub fn is_valid_region(region: &str) -> bool {
    (1..=63).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// A URL as it may be shown: any `user:password@` masked, whether or not
/// the URL is well-formed (`https//user:pw@host` too).
pub fn shown(value: &str) -> String {
    let Some(at) = value.rfind('@') else {
        return value.to_owned();
    };
    let start = match value[..at].find("//") {
        Some(slashes) => slashes + 2,
        None => match value[..at].find(':') {
            Some(colon) if value[..colon].bytes().all(|b| b.is_ascii_alphabetic()) => colon + 1,
            _ => 0,
        },
    };
    let start = start + value[start..at].bytes().take_while(|&b| b == b'/').count();
    format!("{}***{}", &value[..start], &value[at..])
}

/// The variables that name a proxy (`NO_PROXY` names none).
pub const PROXY_URL_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Why a proxy value names a port no connection can use exactly; `None`
/// for any other value, which hyper-util either uses as written or ignores
/// (and so does irsa-doctor). hyper-util reads `host:port` as
/// `http://host:port`, and keeps a port `http::Uri` cannot read, then
/// connects to port 80: the proxy's password, and for an http endpoint the
/// whole request, would go to whatever listens there.
fn proxy_problem(value: &str) -> Option<String> {
    let url = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    match url::Url::parse(&url) {
        Err(url::ParseError::InvalidPort) => {
            Some("its port is not a number from 1 to 65535".to_owned())
        }
        Ok(parsed) if parsed.port() == Some(0) => {
            Some("its port is 0, which no connection can use".to_owned())
        }
        _ => None,
    }
}

/// What the endpoint and region settings mean for a check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judged {
    pub findings: Vec<Finding>,
    /// The STS endpoint the SDK would use cannot be built: send nothing,
    /// not even through the SDK's default chain.
    pub stop_sending: bool,
    /// A valid custom STS endpoint is set: the region does not decide
    /// where STS requests go.
    pub custom_sts_endpoint: bool,
    /// `AWS_ENDPOINT_URL_IAM` cannot be used: `ENDPOINT_INVALID`, added
    /// (and IAM not asked) only where IAM is asked at all (`--require`).
    pub iam_endpoint_invalid: Option<Finding>,
    /// The switch variables set (`SWITCHES`), as (name, value): the report
    /// names a switch's source from them.
    pub switch_vars: Vec<(&'static str, String)>,
}

/// Judges the endpoint and region settings `lookup` returns.
///
/// Every bad value is a finding, but only one that breaks the requests to
/// STS stops sending. aws-config ignores (with a warning) an
/// `AWS_ENDPOINT_URL` its URL parser refuses, and a custom STS endpoint
/// makes the region irrelevant to the unsigned call; the IMDS settings
/// matter only where the pod falls back to the node's role, so beside
/// IRSA they are warnings.
pub fn judge(lookup: impl Fn(&str) -> Option<String>) -> Judged {
    let mut judged = Judged::default();
    let set = |name: &str| lookup(name).filter(|v| !v.is_empty());
    let ignore_urls = set("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let irsa = set("AWS_ROLE_ARN").is_some() && set("AWS_WEB_IDENTITY_TOKEN_FILE").is_some();
    // The endpoint the SDK would put on STS requests, if any, and whether
    // it can: the service-specific variable, else a global one aws-config
    // accepts.
    let mut sts_endpoint_ok = None;
    for name in ENDPOINT_VARS {
        let imds = name == "AWS_EC2_METADATA_SERVICE_ENDPOINT";
        if ignore_urls && !imds {
            continue;
        }
        let Some(value) = set(name) else {
            continue;
        };
        let problem = endpoint_problem(&value);
        if !imds && sts_endpoint_ok.is_none() {
            let used = name == "AWS_ENDPOINT_URL_STS" || url::Url::parse(&value).is_ok();
            if used {
                sts_endpoint_ok = Some(problem.is_none());
            }
        }
        if let Some(problem) = problem {
            let mut finding = endpoint_invalid(name, &value, &problem);
            if imds && irsa {
                finding.severity = Severity::Warning;
            }
            judged.findings.push(finding);
        }
    }
    if let Some(value) = set("AWS_ENDPOINT_URL_IAM").filter(|_| !ignore_urls) {
        judged.iam_endpoint_invalid =
            endpoint_problem(&value).map(|p| endpoint_invalid("AWS_ENDPOINT_URL_IAM", &value, &p));
    }
    // A proxy with a port no connection can use: nothing is sent at all,
    // since every request may go through it.
    let mut proxy_ok = true;
    for name in PROXY_URL_VARS {
        if let Some(problem) = set(name).and_then(|v| proxy_problem(&v).map(|p| (v, p))) {
            proxy_ok = false;
            judged
                .findings
                .push(proxy_invalid(name, &problem.0, &problem.1));
        }
    }
    if let Some(mode) = set("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") {
        if !mode.eq_ignore_ascii_case("ipv4") && !mode.eq_ignore_ascii_case("ipv6") {
            let mut finding = imds_mode_invalid(&mode);
            if irsa {
                finding.severity = Severity::Warning;
            }
            judged.findings.push(finding);
        }
    }
    judge_switches(&set, &mut judged);
    let region = REGION_VARS
        .iter()
        .find_map(|name| set(name).map(|v| (*name, v)));
    let mut region_ok = true;
    if let Some((name, value)) = region {
        if !is_valid_region(&value) {
            region_ok = false;
            judged.findings.push(region_invalid(name, &value));
        }
    }
    judged.stop_sending = !proxy_ok
        || match sts_endpoint_ok {
            Some(ok) => !ok,
            None => !region_ok,
        };
    judged.custom_sts_endpoint = sts_endpoint_ok == Some(true);
    judged
}

/// The switch variables set, and a finding for each value aws-config
/// ignores. Nothing stops: the SDK sends on, to the ordinary endpoint.
fn judge_switches(set: &impl Fn(&str) -> Option<String>, judged: &mut Judged) {
    for (name, key, what) in SWITCHES {
        if let Some(value) = set(name) {
            if parse_switch(&value).is_none() {
                judged
                    .findings
                    .push(switch_invalid(name, key, what, &value));
            }
            judged.switch_vars.push((name, value));
        }
    }
}

/// `ENDPOINT_INVALID` for an IMDS endpoint mode the SDK refuses.
fn imds_mode_invalid(mode: &str) -> Finding {
    Finding::error(
        Code::EndpointInvalid,
        format!(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE is {mode:?}: the SDK's IMDS client refuses \
             it, so the node's credentials and region cannot be read"
        ),
        "Set AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE to IPv4 or IPv6, or remove it (IPv4 is \
         the default).",
    )
    .expected("IPv4 or IPv6")
    .found(format!("{mode:?}"))
}

/// `REGION_INVALID` for a region variable `name` set to `value`.
fn region_invalid(name: &str, value: &str) -> Finding {
    Finding::error(
        Code::RegionInvalid,
        format!(
            "{name} is {value:?}, which cannot be a region: every regional endpoint puts the \
             region in a host name, so an SDK cannot build its requests"
        ),
        format!(
            "Set {name} to a region code such as us-west-2 (letters, digits and hyphens only), \
             in the container spec or wherever the value comes from (envFrom ConfigMaps, the \
             image's ENV): kubectl set env deployment/<name> -n <namespace> {name}=<region>"
        ),
    )
    .expected("a region code such as us-west-2")
    .found(format!("{name}={value:?}"))
}

/// `REGION_INVALID` for a region that came from the shared config file
/// (the variables are judged by [`judge`]).
pub fn profile_region_invalid(region: &str) -> Finding {
    Finding::error(
        Code::RegionInvalid,
        format!(
            "the shared config file's region is {region:?}, which cannot be a region: every \
             regional endpoint puts the region in a host name, so an SDK cannot build its \
             requests"
        ),
        "Fix the region key of the profile in use (~/.aws/config, or the file AWS_CONFIG_FILE \
         names), or set AWS_REGION, which takes precedence, to a region code such as us-west-2: \
         kubectl set env deployment/<name> -n <namespace> AWS_REGION=<region>",
    )
    .expected("a region code such as us-west-2")
    .found(format!("region = {region:?} in the shared config file"))
}

/// `ENDPOINT_INVALID` for a proxy variable whose port no connection can
/// use.
fn proxy_invalid(name: &str, value: &str, problem: &str) -> Finding {
    Finding::error(
        Code::EndpointInvalid,
        format!(
            "{name} {:?} is not a usable proxy URL: {problem}; the AWS SDK for Rust would \
             connect to the default port (80, or 443 for https://) instead, with the proxy's \
             password, while botocore and Go refuse it",
            shown(value)
        ),
        format!(
            "Fix {name} in the container spec (or the envFrom ConfigMap or image ENV that sets \
             it) so that it names the proxy's port, from 1 to 65535, or remove it. irsa-doctor \
             sent nothing, so this is not a network problem."
        ),
    )
    .expected("a proxy URL such as http://proxy.example:3128")
    .found(format!("{name}={:?}", shown(value)))
}

fn endpoint_invalid(name: &str, value: &str, problem: &str) -> Finding {
    let what = match name {
        "AWS_EC2_METADATA_SERVICE_ENDPOINT" => "the IMDS endpoint",
        "AWS_ENDPOINT_URL_IAM" => "IAM's endpoint",
        _ => "the STS endpoint",
    };
    let sdk = match name {
        "AWS_ENDPOINT_URL" => {
            "aws-config ignores it with a warning and uses AWS's endpoint, while botocore and \
             the AWS CLI refuse to start"
        }
        "AWS_EC2_METADATA_SERVICE_ENDPOINT" => "an SDK falling back to IMDS fails",
        _ => "an SDK builds requests it cannot send and reports network errors",
    };
    Finding::error(
        Code::EndpointInvalid,
        format!(
            "{name} {:?} is not a valid endpoint URL: {problem}; {sdk}",
            shown(value)
        ),
        format!(
            "Fix {name} in the container spec (or the envFrom ConfigMap or image ENV that sets \
             it) so that it names {what} as an absolute URL, or remove it to use AWS's default \
             endpoint. irsa-doctor sent nothing, so this is not a network problem."
        ),
    )
    .expected("an absolute https:// or http:// URL with a host, such as https://sts.us-west-2.amazonaws.com")
    .found(format!("{name}={:?}", shown(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_legacy_in_a_legacy_region_without_a_custom_endpoint_is_global() {
        assert!(uses_global_sts(Some("legacy"), "us-west-2", false));
        assert!(uses_global_sts(Some(" LEGACY "), "eu-west-1", false));
        assert!(!uses_global_sts(Some("regional"), "us-west-2", false));
        assert!(!uses_global_sts(None, "us-west-2", false));
        assert!(!uses_global_sts(Some("legacy"), "ap-east-1", false));
        assert!(!uses_global_sts(Some("legacy"), "us-west-2", true));
    }

    fn judged(pairs: &[(&str, &str)]) -> Judged {
        judge(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn problems(pairs: &[(&str, &str)]) -> Vec<(Code, String)> {
        judged(pairs)
            .findings
            .into_iter()
            .map(|f| (f.code, f.message))
            .collect()
    }

    #[test]
    fn only_settings_that_break_sts_requests_stop_sending() {
        let irsa = [
            ("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/app"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = irsa.to_vec();
            pairs.extend_from_slice(extra);
            judged(&pairs)
        };
        assert!(with(&[("AWS_ENDPOINT_URL_STS", "127.0.0.1:9")]).stop_sending);
        assert!(
            with(&[("AWS_ENDPOINT_URL", "https:/sts.invalid")]).stop_sending,
            "aws-config takes it"
        );
        assert!(
            !with(&[("AWS_ENDPOINT_URL", "127.0.0.1:9")]).stop_sending,
            "aws-config ignores it"
        );
        assert!(
            !with(&[
                ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9"),
                ("AWS_ENDPOINT_URL", "127.0.0.1:9")
            ])
            .stop_sending
        );
        assert!(with(&[("AWS_REGION", "us west 2")]).stop_sending);
        assert!(
            !with(&[
                ("AWS_REGION", "us west 2"),
                ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
            ])
            .stop_sending
        );
        let imds = with(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "169.254.169.254")]);
        assert!(!imds.stop_sending);
        assert_eq!(imds.findings[0].severity, Severity::Warning, "beside IRSA");
        let no_irsa = judged(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "169.254.169.254")]);
        assert_eq!(no_irsa.findings[0].severity, Severity::Error);
    }

    #[test]
    fn the_typos_that_once_leaked_the_token_are_each_named() {
        for (value, words) in [
            ("127.0.0.1:9", "no scheme"),
            ("localhost:4566", "no scheme"),
            (" http://127.0.0.1:9", "a space"),
            ("http://127.0.0.1:9 ", "a space"),
            ("https//sts.us-west-2.amazonaws.com", "lacks the colon"),
            ("ftp://example.invalid", "only https:// and http://"),
            ("http://", "URL"),
            ("sts.us-west-2.amazonaws.com", "no scheme"),
            ("http://a\nb", "a line break"),
            ("https:/sts.us-west-2.amazonaws.com", "URI"),
            ("https:sts.us-west-2.amazonaws.com", "scheme and host"),
            ("https:///sts.us-west-2.amazonaws.com", "URI"),
            ("https:\\\\sts.us-west-2.amazonaws.com", "URI"),
        ] {
            let found = problems(&[("AWS_ENDPOINT_URL_STS", value)]);
            assert_eq!(found.len(), 1, "{value:?}: {found:?}");
            assert_eq!(found[0].0, Code::EndpointInvalid);
            assert!(found[0].1.contains("AWS_ENDPOINT_URL_STS"), "{found:?}");
            assert!(found[0].1.contains(words), "{value:?}: {}", found[0].1);
        }
    }

    #[test]
    fn good_endpoints_and_regions_pass() {
        assert!(problems(&[
            (
                "AWS_ENDPOINT_URL_STS",
                "https://sts.us-west-2.amazonaws.com"
            ),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/"),
            (
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                "http://[fd00:ec2::254]"
            ),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6"),
            ("AWS_REGION", "eu-central-1"),
        ])
        .is_empty());
    }

    #[test]
    fn a_switch_aws_config_ignores_is_named_and_sends_on() {
        for (name, value) in [
            ("AWS_USE_FIPS_ENDPOINT", "yes"),
            ("AWS_USE_FIPS_ENDPOINT", "1"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "true "),
        ] {
            let found = judged(&[(name, value)]);
            assert!(!found.stop_sending, "{name}={value:?}");
            assert_eq!(found.findings.len(), 1, "{name}={value:?}");
            assert_eq!(found.findings[0].code, Code::EndpointInvalid);
            assert!(found.findings[0].message.contains(name));
        }
        for value in ["true", "FALSE", "True"] {
            let found = judged(&[("AWS_USE_FIPS_ENDPOINT", value)]);
            assert!(found.findings.is_empty(), "{value}");
            assert_eq!(
                found.switch_vars,
                [("AWS_USE_FIPS_ENDPOINT", value.to_owned())]
            );
        }
        assert!(sts_fips_listed("us-gov-west-1") && sts_fips_listed("us-east-1"));
        assert!(!sts_fips_listed("eu-west-1") && !sts_fips_listed("ap-southeast-2"));
    }

    /// The profile's switches are judged as aws-config reads them: only
    /// when the variable is not set, `true`/`false` in any case pass.
    #[test]
    fn a_profile_switch_aws_config_ignores_is_named_unless_the_variable_is_set() {
        let values = |v: &str| {
            vec![
                ("use_fips_endpoint", v.to_owned()),
                ("use_dualstack_endpoint", "TRUE".to_owned()),
            ]
        };
        let none = |_: &str| None;
        for bad in ["yes", "1", "\"true\"", "on"] {
            let found = profile_switches_invalid("app", &values(bad), none);
            assert_eq!(found.len(), 1, "{bad}");
            assert_eq!(found[0].code, Code::EndpointInvalid);
            assert!(found[0].message.contains("use_fips_endpoint"), "{bad}");
            assert!(found[0].remedy.contains("AWS_USE_FIPS_ENDPOINT=true"));
        }
        for good in ["true", "False", "TRUE"] {
            assert!(profile_switches_invalid("app", &values(good), none).is_empty());
        }
        // The variable, set at all, is all aws-config reads.
        let env = |n: &str| (n == "AWS_USE_FIPS_ENDPOINT").then(String::new);
        assert!(profile_switches_invalid("app", &values("yes"), env).is_empty());
    }

    #[test]
    fn ignored_endpoint_urls_are_not_judged() {
        assert!(problems(&[
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
            ("AWS_ENDPOINT_URL_STS", "127.0.0.1:9"),
        ])
        .is_empty());
    }

    #[test]
    fn invalid_regions_and_imds_modes_are_findings() {
        let found = problems(&[("AWS_REGION", "us west 2")]);
        assert_eq!(found[0].0, Code::RegionInvalid);
        let found = problems(&[("AWS_DEFAULT_REGION", "us-west-2/")]);
        assert!(found[0].1.contains("AWS_DEFAULT_REGION"), "{found:?}");
        let found = problems(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "v4")]);
        assert_eq!(found[0].0, Code::EndpointInvalid);
        assert!(is_valid_region("us-gov-west-1"));
        assert!(!is_valid_region("-us"));
        assert!(!is_valid_region(""));
    }

    #[test]
    fn credentials_in_a_url_are_not_shown() {
        for value in [
            "htp://user:hunter22@proxy.invalid",
            "https//user:hunter22@localhost:18080",
            "user:hunter22@localhost:18080",
            "http:/user:hunter22@localhost:18080",
        ] {
            let found = problems(&[("AWS_ENDPOINT_URL_STS", value)]);
            assert!(!found[0].1.contains("hunter22"), "{found:?}");
        }
        assert_eq!(shown("http://u:p@h.invalid/x"), "http://***@h.invalid/x");
        assert_eq!(shown("https://h.invalid"), "https://h.invalid");
    }

    #[test]
    fn an_endpoint_port_no_connection_can_use_is_invalid_and_stops_sending() {
        for port in ["0", "65536", "99999", "eighty"] {
            let value = format!("http://127.0.0.1:{port}");
            let sts = judged(&[("AWS_ENDPOINT_URL_STS", value.as_str())]);
            assert!(sts.stop_sending, "{value}");
            assert_eq!(sts.findings[0].code, Code::EndpointInvalid, "{value}");
            for name in ["AWS_ENDPOINT_URL", "AWS_EC2_METADATA_SERVICE_ENDPOINT"] {
                let other = judged(&[(name, value.as_str())]);
                assert_eq!(
                    other.findings[0].code,
                    Code::EndpointInvalid,
                    "{name}={value}"
                );
            }
            // IAM's is judged apart: it matters only where IAM is asked.
            let iam = judged(&[("AWS_ENDPOINT_URL_IAM", value.as_str())]);
            assert!(iam.findings.is_empty() && !iam.stop_sending, "{value}");
            let finding = iam.iam_endpoint_invalid.expect("refused");
            assert!(
                finding.message.contains("AWS_ENDPOINT_URL_IAM"),
                "{}",
                finding.message
            );
        }
        assert!(judged(&[("AWS_ENDPOINT_URL_IAM", "http://127.0.0.1:4566")])
            .iam_endpoint_invalid
            .is_none());
    }

    #[test]
    fn a_proxy_port_no_connection_can_use_is_invalid_and_stops_sending() {
        for name in PROXY_URL_VARS {
            for value in [
                "http://127.0.0.1:0",
                "http://127.0.0.1:65536",
                "http://u:hunter22pass@127.0.0.1:99999",
                "127.0.0.1:99999",
                "proxy.invalid:3l28",
            ] {
                let found = judged(&[(name, value)]);
                assert!(found.stop_sending, "{name}={value}");
                assert_eq!(found.findings.len(), 1, "{name}={value}");
                let finding = &found.findings[0];
                assert_eq!(finding.code, Code::EndpointInvalid);
                assert!(finding.message.contains(name), "{}", finding.message);
                assert!(!finding.message.contains("hunter22"), "{}", finding.message);
            }
        }
        for fine in [
            "http://proxy.invalid:3128",
            "proxy.invalid:3128",
            "http://[::1]:8080",
        ] {
            let found = judged(&[("HTTPS_PROXY", fine)]);
            assert!(found.findings.is_empty() && !found.stop_sending, "{fine}");
        }
    }
}
