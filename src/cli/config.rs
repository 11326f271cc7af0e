//! Command-line flags. Every flag can also be set through an `IRSA_DOCTOR_*`
//! environment variable, so a pod manifest can configure irsa-doctor with
//! `env:` alone. This is the only place irsa-doctor reads its own settings;
//! the AWS variables the SDK owns are read in `env.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::check::CheckConfig;
use crate::guard::telemetry::LogFormat;
use crate::identity::arn::{is_session_char, is_valid_session_name, Requirement, RoleArn};
use crate::identity::mechanism::SessionTags;
use crate::identity::session_policy::SessionPolicy;
use crate::settings::env::AwsEnv;

/// Proves, from inside a Kubernetes pod and with the pod's own token, that
/// the pod gets its IAM role, by IAM Roles for Service Accounts (IRSA) or by
/// EKS Pod Identity: the token is readable and valid, STS (or the Pod
/// Identity agent) hands out the role, the role is the expected one, and an
/// AWS SDK in this container would really use it. Otherwise it says exactly
/// what is wrong and what to change.
#[derive(Debug, Parser)]
#[command(name = "irsa-doctor", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stderr; RUST_LOG sets the level (default info)
    #[arg(
        long,
        global = true,
        env = "IRSA_DOCTOR_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check once, print the report, and exit 0 (pass), 1 (fail) or 3
    /// (inconclusive). Made for init containers and `kubectl exec`.
    Check(CheckArgs),
    /// Keep checking for the pod's whole life and serve the verdict on
    /// /livez, /readyz, /status and /metrics. Made for sidecars.
    Serve(ServeArgs),
    /// Check from inside the app's own container, then become the app:
    /// `exec [OPTIONS] -- CMD [ARGS]...` replaces itself with CMD (same PID,
    /// argv, environment and descriptors). The report goes to stderr.
    Exec(ExecArgs),
    /// Copy this binary into DIR (an emptyDir the app's container mounts),
    /// atomically and with mode 0555, and print its path. Made for an init
    /// container before `exec`.
    Install(InstallArgs),
    /// Evaluate a role's trust policy offline against a pod's identity
    /// (IRSA's token or its claims, or EKS Pod Identity's session tags):
    /// which statement and condition refuse it, on what value, and the
    /// corrected policy. Exit 0 (allowed), 1 (denied) or 2 (usage).
    Explain(ExplainArgs),
}

/// `explain`: a trust policy evaluated against an identity, offline.
#[derive(Debug, Clone, Args)]
#[command(group(
    ArgGroup::new("identity")
        .required(true)
        .args(["token", "iss", "pod_identity"])
))]
pub struct ExplainArgs {
    /// The trust policy: plain JSON, the output of `aws iam get-role`
    /// (whole, or its Role.AssumeRolePolicyDocument), or URL-encoded as
    /// IAM's API returns it; - reads stdin (at most 64 KiB either way)
    #[arg(long, env = "IRSA_DOCTOR_POLICY", value_name = "FILE|-")]
    pub policy: PathBuf,

    /// The role the policy belongs to: its partition and account name the
    /// OIDC provider IRSA's token must come through. Taken from --policy
    /// when that is `aws iam get-role` output (its Role.Arn); else required
    /// for IRSA (with a target role: the association's role, the first
    /// hop)
    #[arg(long, env = "IRSA_DOCTOR_ROLE_ARN", value_parser = parse_role_arn)]
    pub role_arn: Option<RoleArn>,

    /// IRSA: a service-account token file, whose iss, sub and aud claims are
    /// evaluated (the token is never printed)
    #[arg(long, env = "IRSA_DOCTOR_TOKEN_FILE", value_name = "FILE")]
    pub token: Option<PathBuf>,

    /// IRSA, without a token: the issuer
    /// (https://oidc.eks.REGION.amazonaws.com/id/ID)
    #[arg(long, env = "IRSA_DOCTOR_ISS", requires_all = ["sub", "aud"], conflicts_with = "token")]
    pub iss: Option<String>,

    /// IRSA, without a token: the subject
    /// (system:serviceaccount:NAMESPACE:SERVICE_ACCOUNT)
    #[arg(long, env = "IRSA_DOCTOR_SUB", requires = "iss")]
    pub sub: Option<String>,

    /// IRSA, without a token: the audience; repeat (or separate with
    /// commas) for several
    #[arg(long, env = "IRSA_DOCTOR_AUD", requires = "iss", value_delimiter = ',')]
    pub aud: Vec<String>,

    /// EKS Pod Identity: evaluate the request EKS makes for the pod, with
    /// the session tags given below
    #[arg(
        long,
        env = "IRSA_DOCTOR_POD_IDENTITY",
        conflicts_with_all = ["token", "iss"],
        requires_all = ["cluster_name", "cluster_arn", "namespace", "service_account"]
    )]
    pub pod_identity: bool,

    /// Pod Identity: the eks-cluster-name session tag
    #[arg(long, env = "IRSA_DOCTOR_CLUSTER_NAME")]
    pub cluster_name: Option<String>,

    /// Pod Identity: the eks-cluster-arn session tag
    #[arg(long, env = "IRSA_DOCTOR_CLUSTER_ARN")]
    pub cluster_arn: Option<String>,

    /// Pod Identity: the kubernetes-namespace session tag
    #[arg(long, env = "IRSA_DOCTOR_NAMESPACE")]
    pub namespace: Option<String>,

    /// Pod Identity: the kubernetes-service-account session tag
    #[arg(long, env = "IRSA_DOCTOR_SERVICE_ACCOUNT")]
    pub service_account: Option<String>,

    /// Pod Identity: the kubernetes-pod-name session tag
    #[arg(long, env = "IRSA_DOCTOR_POD_NAME")]
    pub pod_name: Option<String>,

    /// Pod Identity: the kubernetes-pod-uid session tag
    #[arg(long, env = "IRSA_DOCTOR_POD_UID")]
    pub pod_uid: Option<String>,

    /// Pod Identity: whether the association sends its session tags
    /// (disabled: its disableSessionTags is true, and no tag is evaluated)
    #[arg(long, env = "IRSA_DOCTOR_SESSION_TAGS", value_enum, default_value_t = SessionTags::Enabled)]
    pub session_tags: SessionTags,

    /// Pod Identity, cross-account: the association's targetRoleArn. Its
    /// trust policy (--target-policy) is evaluated for the second hop, with
    /// --role-arn's role as the principal
    #[arg(
        long,
        env = "IRSA_DOCTOR_TARGET_ROLE_ARN",
        value_parser = parse_role_arn,
        requires_all = ["pod_identity", "target_policy"]
    )]
    pub target_role_arn: Option<RoleArn>,

    /// Pod Identity, cross-account: the target role's trust policy, in any
    /// form --policy takes; - reads stdin
    #[arg(
        long,
        env = "IRSA_DOCTOR_TARGET_POLICY",
        value_name = "FILE|-",
        requires = "pod_identity"
    )]
    pub target_policy: Option<PathBuf>,

    /// Pod Identity, cross-account: the association's externalId (aws eks
    /// describe-pod-identity-association), sent as sts:ExternalId on the
    /// second hop. Not guessed: without it, a condition on sts:ExternalId
    /// denies, and the reason asks for it
    #[arg(long, env = "IRSA_DOCTOR_EXTERNAL_ID", requires = "target_policy")]
    pub external_id: Option<String>,

    /// Result format on stdout: json is one line, json-pretty the same
    /// indented
    #[arg(long, env = "IRSA_DOCTOR_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `check`: one verification, then a report and an exit code.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub verify: VerifyArgs,

    /// Report format on stdout: json is one line, json-pretty the same
    /// report indented
    #[arg(long, env = "IRSA_DOCTOR_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// Where to write the one-line summary that `kubectl describe pod` shows
    /// (at most 4 KiB); skipped silently when the default is not writable;
    /// `off` disables it
    #[arg(
        long,
        env = "IRSA_DOCTOR_TERMINATION_LOG",
        default_value = DEFAULT_TERMINATION_LOG
    )]
    pub termination_log: PathBuf,
}

/// `exec`: one verification in the app's container, then the app.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub verify: VerifyArgs,

    /// Report format on stderr (stdout is the app's): json is one line,
    /// json-pretty the same report indented
    #[arg(long, env = "IRSA_DOCTOR_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// Where to write the one-line summary that `kubectl describe pod`
    /// shows (at most 4 KiB); not written unless given
    #[arg(long, env = "IRSA_DOCTOR_TERMINATION_LOG")]
    pub termination_log: Option<PathBuf>,

    /// On a failing check: exit 1 without starting CMD, or warn (log the
    /// report at error level) and start it anyway
    #[arg(long, env = "IRSA_DOCTOR_ON_FAIL", value_enum, default_value_t = OnVerdict::Exit)]
    pub on_fail: OnVerdict,

    /// On an inconclusive check (STS unreachable, throttled): warn and start
    /// CMD, or exit 3 without starting it
    #[arg(long, env = "IRSA_DOCTOR_ON_INCONCLUSIVE", value_enum, default_value_t = OnVerdict::Warn)]
    pub on_inconclusive: OnVerdict,

    /// The app's command and its arguments, after `--`; found through PATH
    /// as execvp finds it
    #[arg(last = true, required = true, num_args = 1.., value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// What `exec` does with a verdict that is not a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnVerdict {
    Exit,
    Warn,
}

/// `install`: the binary, copied where `exec` can run it.
#[derive(Debug, Clone, Args)]
pub struct InstallArgs {
    /// The directory to install into, created if missing; the binary is
    /// DIR/irsa-doctor
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// `serve`: verification in a loop, its verdict over HTTP.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub verify: VerifyArgs,

    /// Address for /livez, /readyz, /status and /metrics
    #[arg(long, env = "IRSA_DOCTOR_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Time between checks, with ±10% jitter; a rotated token is checked
    /// within seconds regardless
    #[arg(long, env = "IRSA_DOCTOR_INTERVAL", default_value = "5m", value_parser = parse_interval)]
    pub interval: Duration,

    /// How long a passing verdict keeps /readyz at 200 while later checks
    /// are inconclusive (STS unreachable, throttled) [default: 3 intervals]
    #[arg(long, env = "IRSA_DOCTOR_STALE_AFTER", value_parser = parse_positive_duration)]
    pub stale_after: Option<Duration>,

    /// On SIGTERM or SIGINT, how long in-flight requests may take to finish
    #[arg(long, env = "IRSA_DOCTOR_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

/// The default `--listen`: all interfaces, because the kubelet probes the
/// pod IP; a port no common app or exporter uses (not 80, 443, 8080, 8443,
/// 9090 or Prometheus exporters' 91xx).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8475";

/// What one verification needs, shared by `check` and `serve`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The role this pod must act as [default: $AWS_ROLE_ARN, or the last
    /// role of the profile chain AWS_PROFILE selects; EKS Pod Identity has
    /// none, so give it there]. With a Pod Identity target
    /// role (cross-account), this is the target role: the pod acts as it
    #[arg(long, env = "IRSA_DOCTOR_EXPECTED_ROLE_ARN", value_parser = parse_role_arn)]
    pub expected_role_arn: Option<RoleArn>,

    /// EKS Pod Identity with a target role: the association's own role
    /// (its roleArn, the first hop, in the cluster's account). The report
    /// shows both hops, and a refusal names the hop that most likely failed
    #[arg(long, env = "IRSA_DOCTOR_ASSOCIATION_ROLE_ARN", value_parser = parse_role_arn)]
    pub association_role_arn: Option<RoleArn>,

    /// EKS Pod Identity: whether the association sends its session tags
    /// (disabled: its disableSessionTags is true; --session-policy implies
    /// it, as EKS takes a session policy only with tags off). Disabled,
    /// --require and --trust-policy are judged without them
    #[arg(long, env = "IRSA_DOCTOR_SESSION_TAGS", value_enum, default_value_t = SessionTags::Enabled)]
    pub session_tags: SessionTags,

    /// The audience IRSA's token must carry, checked before STS is asked.
    /// Unset, any audience STS accepts passes, as it does for the app; the
    /// webhook's default is sts.amazonaws.com (EKS Pod Identity's is always
    /// pods.eks.amazonaws.com)
    #[arg(long, env = "IRSA_DOCTOR_AUDIENCE")]
    pub audience: Option<String>,

    /// STS session name for IRSA [default: $AWS_ROLE_SESSION_NAME, else irsa-doctor-<pod name>]
    #[arg(long, env = "IRSA_DOCTOR_SESSION_NAME", value_parser = parse_session_name)]
    pub session_name: Option<String>,

    /// This pod's name, for the session name (Downward API metadata.name) [default: hostname]
    #[arg(long, env = "IRSA_DOCTOR_POD_NAME")]
    pub pod_name: Option<String>,

    /// This pod's namespace, for remedies and compared with the token's
    /// (SUBJECT_MISMATCH) (Downward API metadata.namespace) [default: the
    /// in-pod service-account namespace file]
    #[arg(long, env = "IRSA_DOCTOR_NAMESPACE")]
    pub namespace: Option<String>,

    /// This pod's service account, for remedies and compared with the
    /// token's (SUBJECT_MISMATCH) (Downward API spec.serviceAccountName)
    #[arg(long, env = "IRSA_DOCTOR_SERVICE_ACCOUNT")]
    pub service_account: Option<String>,

    /// The node this pod runs on (Downward API spec.nodeName): EKS Pod
    /// Identity does not work on Fargate, whose nodes are named fargate-*
    /// (POD_IDENTITY_UNSUPPORTED_COMPUTE) [default: the node the token
    /// names, in tokens of Kubernetes 1.30 and later]
    #[arg(long, env = "IRSA_DOCTOR_NODE_NAME")]
    pub node_name: Option<String>,

    /// A copy of the role's trust policy (a mounted ConfigMap, say; any form
    /// `explain` reads): when STS or the Pod Identity agent refuses the role,
    /// the finding names the statement and condition that refuse it, and the
    /// corrected policy. Read afresh on each refusal
    #[arg(long, env = "IRSA_DOCTOR_TRUST_POLICY", value_name = "FILE")]
    pub trust_policy: Option<PathBuf>,

    /// An IAM action the app needs, on a resource (* when none is given):
    /// once the identity is proven, IAM's policy simulator is asked, with
    /// the pod's own credentials, whether the role allows it
    /// (PERMISSION_DENIED). Repeatable; the variable takes a comma-separated
    /// list. Resource-based policies are not evaluated. Example:
    /// s3:GetObject@arn:aws:s3:::orders/*
    #[arg(
        long,
        env = "IRSA_DOCTOR_REQUIRE",
        value_name = "ACTION[@RESOURCE_ARN]",
        value_delimiter = ',',
        value_parser = parse_requirement
    )]
    pub require: Vec<Requirement>,

    /// The session policy of the pod's EKS Pod Identity association, the
    /// policy text itself (JSON, at most 2,048 characters; aws eks
    /// describe-pod-identity-association shows it): with --require, an entry
    /// passes only if the role allows it and this policy allows it too
    /// (IAM's SimulateCustomPolicy). Nothing in the pod shows it, so give it
    /// when the association has one. Not used for IRSA
    #[arg(
        long,
        env = "IRSA_DOCTOR_SESSION_POLICY",
        value_name = "JSON",
        value_parser = SessionPolicyParser
    )]
    pub session_policy: Option<SessionPolicy>,

    /// Also check the token against its issuer, independently of STS: fetch
    /// {iss}/.well-known/openid-configuration and its jwks_uri (over https,
    /// cached for an hour by serve), require the published issuer to be the
    /// token's, and verify the token's RS256 or ES256 signature with the
    /// key its kid names. An issuer this pod cannot reach is only a warning
    #[arg(long, env = "IRSA_DOCTOR_VERIFY_ISSUER")]
    pub verify_issuer: bool,

    /// For tests only: let --verify-issuer fetch a loopback issuer
    /// (127.0.0.1, ::1, localhost) over plain HTTP. Any other plain-HTTP
    /// issuer is still refused
    #[arg(
        long,
        env = "IRSA_DOCTOR_ALLOW_HTTP_ISSUER",
        requires = "verify_issuer"
    )]
    pub allow_http_issuer: bool,

    /// Upper bound on the whole check, retries included
    #[arg(long, env = "IRSA_DOCTOR_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration)]
    pub timeout: Duration,

    /// Also retry AccessDenied (and the Pod Identity agent's trust and
    /// association answers) for this long, to ride out IAM's and EKS's
    /// propagation delay right after a role, trust policy or association is
    /// created
    #[arg(long, env = "IRSA_DOCTOR_RETRY_DENIED_FOR", default_value = "0s", value_parser = parse_duration)]
    pub retry_denied_for: Duration,
}

impl ServeArgs {
    /// `--stale-after`, or three intervals.
    pub fn stale_after(&self) -> Duration {
        self.stale_after.unwrap_or(self.interval.saturating_mul(3))
    }
}

/// Where Kubernetes reads a container's termination message by default.
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";

/// The `--termination-log` value that turns it off.
pub const TERMINATION_LOG_OFF: &str = "off";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    // One line, which a log pipeline keeps as one record.
    Json,
    JsonPretty,
}

fn parse_requirement(s: &str) -> Result<Requirement, String> {
    Requirement::parse(s).map_err(|e| format!("the entry {:?} {e}", s.trim()))
}

/// `--session-policy`'s parser. clap's own message would quote the whole
/// value back (kilobytes of JSON on one line); this one says only what is
/// wrong with it, and exits 2 as clap's other usage errors do.
#[derive(Debug, Clone, Copy)]
struct SessionPolicyParser;

impl clap::builder::TypedValueParser for SessionPolicyParser {
    type Value = SessionPolicy;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<SessionPolicy, clap::Error> {
        let why = match value.to_str() {
            // A ConfigMap's block scalar ends in a newline EKS never saw.
            Some(text) => match SessionPolicy::parse(text.trim()) {
                Ok(policy) => return Ok(policy),
                Err(why) => why,
            },
            None => "is not UTF-8".to_owned(),
        };
        let message = format!(
            "the session policy given with --session-policy (IRSA_DOCTOR_SESSION_POLICY) {why}\n"
        );
        Err(clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).with_cmd(cmd))
    }
}

fn parse_role_arn(s: &str) -> Result<RoleArn, String> {
    RoleArn::parse(s.trim()).map_err(|e| format!("the role ARN {e}"))
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (examples: 500ms, 30s, 5m)"))
}

/// The longest `--timeout` accepted: a day is already far past any rollout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// The shortest `--interval`: a second keeps tests quick; anything that
/// short in production costs STS calls for nothing.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) fn parse_interval(s: &str) -> Result<Duration, String> {
    match parse_positive_duration(s)? {
        d if d < MIN_INTERVAL => Err("must be at least 1s".into()),
        d => Ok(d),
    }
}

pub(crate) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be more than zero".into()),
        d if d > MAX_TIMEOUT => Err("must be at most 24h".into()),
        d => Ok(d),
    }
}

pub(crate) fn parse_session_name(s: &str) -> Result<String, String> {
    if is_valid_session_name(s) {
        Ok(s.to_owned())
    } else {
        Err("must be 2-64 characters of letters, digits and _+=,.@-".into())
    }
}

/// What the check learns from the host it runs on, read once at start.
/// Tests build one by hand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Host {
    /// The pod's name: a pod's hostname is its name.
    pub hostname: Option<String>,
    /// The namespace, from the service account volume.
    pub namespace: Option<String>,
}

/// The in-pod file that names the pod's namespace.
const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

impl Host {
    /// Reads the hostname and the namespace file, within bounds; either
    /// is `None` when absent or unusable.
    pub fn read() -> Self {
        Host {
            hostname: read_small("/proc/sys/kernel/hostname"),
            namespace: read_small(NAMESPACE_FILE),
        }
    }
}

/// A small text file's trimmed contents, if it is one.
fn read_small(path: &str) -> Option<String> {
    let bytes = crate::guard::files::read_bounded(std::path::Path::new(path), 4096).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let text = text.trim();
    (!text.is_empty() && text.len() <= 253).then(|| text.to_owned())
}

impl VerifyArgs {
    /// The check's configuration: these flags, then the AWS variables,
    /// then the host, in that order of precedence.
    pub fn check_config(&self, env: &AwsEnv, host: &Host) -> CheckConfig {
        let pod_name = self.pod_name.as_deref().or(host.hostname.as_deref());
        CheckConfig {
            expected_role_arn: self.expected_role_arn.clone(),
            association_role_arn: self.association_role_arn.clone(),
            // EKS accepts a session policy only with session tags off, so
            // the report must not claim tags a session-policy pod lacks.
            session_tags: match self.session_policy {
                Some(_) => SessionTags::Disabled,
                None => self.session_tags,
            },
            audience: self.audience.clone(),
            session_name: resolve_session_name(
                self.session_name.as_deref(),
                env.role_session_name.as_deref(),
                pod_name,
            ),
            namespace: self.namespace.clone().or_else(|| host.namespace.clone()),
            service_account: self.service_account.clone(),
            node_name: self.node_name.clone().filter(|n| !n.trim().is_empty()),
            timeout: self.timeout,
            retry_denied_for: self.retry_denied_for,
            seen_from: crate::report::SeenFrom::OwnContainer,
            trust_policy: self.trust_policy.clone(),
            require: dedup(&self.require),
            session_policy: self.session_policy.clone(),
            issuer: self
                .verify_issuer
                .then(|| crate::check::IssuerCheck::new(self.allow_http_issuer)),
        }
    }
}

/// `--require`'s entries, each once, in the order given.
fn dedup(entries: &[Requirement]) -> Vec<Requirement> {
    let mut out: Vec<Requirement> = vec![];
    for e in entries {
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    out
}

/// Picks the session name: the flag, else a valid `AWS_ROLE_SESSION_NAME`,
/// else `irsa-doctor-<pod>` made to fit STS's rule (so CloudTrail shows
/// which pod asked). An invalid `AWS_ROLE_SESSION_NAME` is reported by the
/// check, not used.
pub fn resolve_session_name(
    flag: Option<&str>,
    aws_role_session_name: Option<&str>,
    pod_name: Option<&str>,
) -> String {
    if let Some(name) = flag {
        return name.to_owned();
    }
    if let Some(name) = aws_role_session_name.filter(|n| is_valid_session_name(n)) {
        return name.to_owned();
    }
    let raw = match pod_name {
        Some(pod) => format!("irsa-doctor-{pod}"),
        None => "irsa-doctor".to_owned(),
    };
    let mut name: String = raw
        .chars()
        .map(|c| if is_session_char(c) { c } else { '-' })
        .take(64)
        .collect();
    if name.len() < 2 {
        name = "irsa-doctor".to_owned();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn session_name_prefers_flag_then_env_then_pod() {
        assert_eq!(resolve_session_name(Some("x1"), Some("y"), Some("p")), "x1");
        assert_eq!(
            resolve_session_name(None, Some("from-env"), Some("p")),
            "from-env"
        );
        assert_eq!(
            resolve_session_name(None, None, Some("web-7d9f")),
            "irsa-doctor-web-7d9f"
        );
        assert_eq!(resolve_session_name(None, None, None), "irsa-doctor");
    }

    #[test]
    fn a_session_policy_means_no_session_tags() {
        let config = |args: &[&str]| {
            let parsed = Cli::try_parse_from(args).unwrap();
            let Command::Check(args) = parsed.command else {
                panic!("check parses as check")
            };
            args.verify
                .check_config(&AwsEnv::default(), &Host::default())
        };
        let cfg = config(&["irsa-doctor", "check"]);
        assert_eq!(cfg.session_tags, SessionTags::Enabled);
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        let cfg = config(&["irsa-doctor", "check", "--session-policy", policy]);
        assert_eq!(cfg.session_tags, SessionTags::Disabled);
    }

    #[test]
    fn flags_come_before_the_aws_variables_and_the_host() {
        let host = Host {
            hostname: Some("web-7d9f".into()),
            namespace: Some("pay".into()),
        };
        let env = AwsEnv::default();
        let parsed = Cli::try_parse_from(["irsa-doctor", "check"]).unwrap();
        let Command::Check(args) = parsed.command else {
            panic!("check parses as check")
        };
        let cfg = args.verify.check_config(&env, &host);
        assert_eq!(cfg.namespace.as_deref(), Some("pay"));
        assert_eq!(cfg.session_name, "irsa-doctor-web-7d9f");
        let parsed = Cli::try_parse_from([
            "irsa-doctor",
            "check",
            "--namespace",
            "ops",
            "--pod-name",
            "job-1",
        ])
        .unwrap();
        let Command::Check(args) = parsed.command else {
            panic!("check parses as check")
        };
        let cfg = args.verify.check_config(&env, &host);
        assert_eq!(cfg.namespace.as_deref(), Some("ops"));
        assert_eq!(cfg.session_name, "irsa-doctor-job-1");
        let cfg = args.verify.check_config(&env, &Host::default());
        assert_eq!(cfg.namespace.as_deref(), Some("ops"));
    }

    #[test]
    fn session_name_is_sanitised_to_sts_rules() {
        let name = resolve_session_name(None, Some("a b/c:d"), Some("web:1"));
        assert_eq!(name, "irsa-doctor-web-1", "an invalid env name is not used");
        let long = resolve_session_name(None, None, Some(&"p".repeat(100)));
        assert_eq!(long.len(), 64);
        assert!(is_valid_session_name(&long));
        assert_eq!(resolve_session_name(None, Some(""), None), "irsa-doctor");
    }

    #[test]
    fn zero_timeout_is_a_usage_error() {
        assert!(parse_positive_duration("0s").is_err());
        assert_eq!(
            parse_positive_duration("2m").unwrap(),
            Duration::from_secs(120)
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_positive_duration("10000000000000000000s").is_err());
        assert!(parse_positive_duration("25h").is_err());
    }
}
