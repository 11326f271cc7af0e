//! The token step's findings: the projected token file and its claims.

use std::path::Path;

use crate::guard::files::NotAFile;
use crate::identity::token::{Claims, TokenFileProblem};
use crate::report::{Code, Finding};
use crate::time::format_unix;

/// Where the webhook mounts the token; named in remedies.
pub const WEBHOOK_TOKEN_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

/// Which token a finding is about: the variable that names it, and where
/// the webhook mounts it.
#[derive(Debug, Clone, Copy)]
pub struct TokenSource {
    pub var: &'static str,
    pub webhook_path: &'static str,
}

/// IRSA's token.
pub const IRSA: TokenSource = TokenSource {
    var: "AWS_WEB_IDENTITY_TOKEN_FILE",
    webhook_path: WEBHOOK_TOKEN_PATH,
};

/// EKS Pod Identity's token.
pub const POD_IDENTITY: TokenSource = TokenSource {
    var: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    webhook_path: crate::findings::pod_identity::TOKEN_PATH,
};

/// `TOKEN_FILE_MISSING`, `TOKEN_FILE_UNREADABLE` or `TOKEN_MALFORMED`: the
/// token file could not be read within our bounds.
pub fn token_file_finding(problem: TokenFileProblem, source: &TokenSource) -> Finding {
    let (var, webhook) = (source.var, source.webhook_path);
    match problem {
        TokenFileProblem::Missing { path, detail } => Finding::error(
            Code::TokenFileMissing,
            format!("the token file {} does not exist: {detail}", path.display()),
            format!(
                "The webhook mounts the projected token at {webhook}. If \
                 {var} was set by hand, point it there; if the volume \
                 is missing, the pod was mutated only in part (recreate it); a dangling \
                 ..data symlink means the kubelet's token volume is broken (restart the pod: \
                 kubectl rollout restart deployment/<name> -n <namespace>)."
            ),
        )
        .expected(format!(
            "a projected service-account token at {}",
            path.display()
        ))
        .found(detail),
        TokenFileProblem::Unreadable {
            path,
            detail,
            file,
            process,
        } => {
            let found = match (&file, &process) {
                (Some((mode, uid, gid)), Some(p)) => format!(
                    "file mode {mode:04o}, owner uid {uid} gid {gid}; this process runs as uid {} \
                     gid {} groups {:?}",
                    p.uid, p.gid, p.groups
                ),
                (Some((mode, uid, gid)), None) => {
                    format!("file mode {mode:04o}, owner uid {uid} gid {gid}")
                }
                _ => detail.clone(),
            };
            // fsGroup: 0 would "work" for a root process, by handing the
            // token to the root group; never suggest it.
            let (gid, number) = match &process {
                Some(p) if p.gid != 0 => (p.gid.to_string(), p.gid.to_string()),
                Some(_) => ("65532 (any non-zero GID)".to_owned(), "65532".to_owned()),
                None => ("<the app's gid>".to_owned(), "<gid>".to_owned()),
            };
            Finding::error(
                Code::TokenFileUnreadable,
                format!("cannot read the token file {}: {detail}", path.display()),
                format!(
                    "Set the pod's securityContext.fsGroup (for example fsGroup: {gid}): the \
                     kubelet then makes the token readable by that group. Without fsGroup the \
                     token is readable only by root or by the single UID all containers share \
                     (external-dns#1185). kubectl patch deployment <name> -n <namespace> -p \
                     '{{\"spec\":{{\"template\":{{\"spec\":{{\"securityContext\":{{\"fsGroup\":{number}}}}}}}}}}}'"
                ),
            )
            .expected(format!("{} readable by this process", path.display()))
            .found(found)
        }
        TokenFileProblem::NotAFile { path, kind } => {
            let fix = match kind {
                NotAFile::Directory => {
                    let inside = path.join("token");
                    format!(
                        "{var} must name the token file, not the volume's \
                         directory: point it at {} (the webhook's default is \
                         {webhook}), or remove it from the container spec and let \
                         the webhook set it. fsGroup does not help here.",
                        inside.display()
                    )
                }
                NotAFile::SymlinkLoop => format!(
                    "{} is a chain of symlinks that never ends. The kubelet's projected volume \
                     never does this: if the path was made by hand (in the image, or by an init \
                     container), fix or remove the links; otherwise point \
                     {var} at {webhook} and recreate the pod.",
                    path.display()
                ),
                _ => format!(
                    "{var} must name the projected token, a regular file; \
                     point it at {webhook}, or remove it from the container spec and \
                     let the webhook set it. fsGroup does not help here."
                ),
            };
            Finding::error(
                Code::TokenFileUnreadable,
                format!(
                    "the token path {} is {}, not a file",
                    path.display(),
                    kind.describe()
                ),
                fix,
            )
            .expected(format!(
                "a regular file holding a JWT at {}",
                path.display()
            ))
            .found(kind.describe())
        }
        TokenFileProblem::Malformed { path, detail } => Finding::error(
            Code::TokenMalformed,
            format!(
                "the token file {} is not a usable token: {detail}",
                path.display()
            ),
            format!(
                "{var} must name the projected service-account token \
                 the webhook mounts ({webhook}), not another file."
            ),
        )
        .expected("a JWT of at most 20000 characters")
        .found(detail),
    }
}

/// `TOKEN_EXPIRED` seen locally: the token's `exp` is at or before `now`.
pub fn token_expired_locally(exp: i64, now: i64, claims: &Claims) -> Finding {
    let node = claims
        .kubernetes
        .as_ref()
        .and_then(|k| k.node.as_deref())
        .map_or(String::new(), |n| format!(" on node {n}"));
    Finding::error(
        Code::TokenExpired,
        format!(
            "the token expired at {} ({} s ago)",
            format_unix(exp),
            now.saturating_sub(exp)
        ),
        format!(
            "The kubelet refreshes the projected token when it is 80% through its lifetime, so \
             an expired token means the refresh stopped: check the kubelet{node} and that the \
             file is the projected volume, not a copy baked into the image or a Secret. \
             Restarting the pod gets a fresh token (kubectl rollout restart deployment/<name> \
             -n <namespace>). If the node's clock is wrong, fix NTP."
        ),
    )
    .expected(format!("exp after now ({})", format_unix(now)))
    .found(format!("exp {}", format_unix(exp)))
}

/// `TOKEN_FILE_MISSING` when no token volume is mounted at all: `dir`, the
/// token file's directory, does not exist. The webhook mounts the volume
/// whenever it injects the variables, so the variables came from the
/// container's own spec; `set_vars` names the ones that are set.
pub fn token_volume_missing(path: &Path, dir: &Path, set_vars: &[&str]) -> Finding {
    let mount = Path::new(WEBHOOK_TOKEN_PATH)
        .parent()
        .unwrap_or(Path::new("/"))
        .display();
    Finding::error(
        Code::TokenFileMissing,
        format!(
            "no token volume is mounted in this container: {} does not exist, so the token \
             file {} cannot either",
            dir.display(),
            path.display()
        ),
        format!(
            "The webhook injects AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE and mounts the \
             token volume together. A container whose own spec sets either variable gets \
             neither from the webhook, and when it also sets the region and \
             AWS_STS_REGIONAL_ENDPOINTS the webhook has nothing left to add and mounts no \
             volume: recreating the pod changes nothing. Either drop the hand-set variables \
             (from env, envFrom ConfigMaps and the image's ENV; kubectl set env \
             deployment/<name> -n <namespace> AWS_ROLE_ARN- AWS_WEB_IDENTITY_TOKEN_FILE-) \
             and let the webhook set them \
             from the ServiceAccount's eks.amazonaws.com/role-arn annotation; or mount the \
             token yourself: a projected volume named aws-iam-token with a \
             serviceAccountToken source (audience sts.amazonaws.com, expirationSeconds 86400, \
             path token), mounted read-only at {mount}, with AWS_WEB_IDENTITY_TOKEN_FILE \
             naming {WEBHOOK_TOKEN_PATH}."
        ),
    )
    .expected(format!("a token volume mounted at {}", dir.display()))
    .found(format!(
        "no {}; this container sets {}",
        dir.display(),
        set_vars.join(", ")
    ))
}

/// `TOKEN_FILE_MISSING` when the variable names a path that does not
/// exist while the webhook's token is where it mounts it.
pub fn token_at_webhook_path(path: &Path, detail: &str) -> Finding {
    Finding::error(
        Code::TokenFileMissing,
        format!(
            "the token file {} does not exist ({detail}), but the webhook's token is at \
             {WEBHOOK_TOKEN_PATH}",
            path.display()
        ),
        format!(
            "AWS_WEB_IDENTITY_TOKEN_FILE was set by hand to another path: remove it from the \
             container spec (env, envFrom ConfigMaps, the image's ENV) so the webhook sets \
             it, or set it to {WEBHOOK_TOKEN_PATH}: kubectl set env deployment/<name> -n \
             <namespace> AWS_WEB_IDENTITY_TOKEN_FILE-"
        ),
    )
    .expected(format!("AWS_WEB_IDENTITY_TOKEN_FILE={WEBHOOK_TOKEN_PATH}"))
    .found(format!("AWS_WEB_IDENTITY_TOKEN_FILE={}", path.display()))
}

/// The audience the pod identity webhook puts in IRSA's token unless the
/// ServiceAccount's `eks.amazonaws.com/audience` annotation names another.
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";

/// `TOKEN_AUDIENCE_MISMATCH`: the token's `aud` lacks `expected` (given
/// with `--audience`), or, with `sts_message`, STS refused it. Without an
/// expected audience the provider's client IDs decide, and the finding
/// names the provider.
pub fn audience_mismatch(
    expected: Option<&str>,
    claims: &Claims,
    sts_message: Option<&str>,
) -> Finding {
    let found = if claims.aud.is_empty() {
        "no aud claim".to_owned()
    } else {
        format!("aud [{}]", claims.aud.join(", "))
    };
    let provider = claims.iss.as_deref().map_or_else(
        || "the IAM OIDC provider for the token's issuer".to_owned(),
        |iss| format!("the IAM OIDC provider for {iss}"),
    );
    let message = match (sts_message, expected) {
        (Some(m), _) => format!("STS rejected the token's audience ({m}); the token has {found}"),
        (None, Some(expected)) => {
            format!("the token's audience does not include {expected}: it has {found}")
        }
        (None, None) => {
            format!("the token's audience is not one {provider} accepts: it has {found}")
        }
    };
    let (wanted, expected_text) = match expected {
        Some(expected) => (expected.to_owned(), format!("aud containing {expected}")),
        None => (
            DEFAULT_AUDIENCE.to_owned(),
            format!("aud containing a client ID registered on {provider} (by default {DEFAULT_AUDIENCE})"),
        ),
    };
    let audience = claims.aud.first().map_or("<audience>", String::as_str);
    Finding::error(
        Code::TokenAudienceMismatch,
        message,
        format!(
            "{provider} accepts only its registered client IDs (normally {DEFAULT_AUDIENCE}). \
             Either register the token's audience on the provider: aws iam \
             add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn <provider \
             ARN> --client-id {audience}; or make the token carry a registered one: set the \
             ServiceAccount annotation eks.amazonaws.com/audience={wanted} (or remove it for \
             the default) and recreate the pod. If your provider really uses another audience, \
             pass --audience."
        ),
    )
    .expected(expected_text)
    .found(found)
}

/// `TOKEN_MALFORMED` after reading: the file at `path` holds something
/// that `problem` says is not a JWT.
pub fn token_malformed(path: &Path, problem: &str, source: &TokenSource) -> Finding {
    let (var, webhook) = (source.var, source.webhook_path);
    Finding::error(
        Code::TokenMalformed,
        format!("the token in {} {problem}", path.display()),
        format!(
            "{var} must name the projected service-account token the \
             webhook mounts ({webhook}), not another file. If the env is set by hand \
             in the container spec, remove it and let the webhook set it: kubectl set env \
             deployment/<name> -n <namespace> {var}-"
        ),
    )
    .expected("a JWT: three base64url segments, header.payload.signature")
    .found(format!("a token that {problem}"))
}

/// `SUBJECT_MISMATCH`: the token names another namespace or service
/// account than the pod's own (`--namespace`, `--service-account`, the
/// Downward API or the namespace file), in its `sub` or its
/// `kubernetes.io` claims. `None` when what is known agrees, or there is
/// nothing to compare.
pub fn subject_mismatch(
    namespace: Option<&str>,
    service_account: Option<&str>,
    claims: &Claims,
) -> Option<Finding> {
    let from_sub = claims
        .sub
        .as_deref()
        .and_then(|s| s.strip_prefix("system:serviceaccount:"))
        .and_then(|rest| rest.split_once(':'));
    let k8s = claims.kubernetes.as_ref();
    let token_ns = [
        from_sub.map(|(ns, _)| ns),
        k8s.and_then(|k| k.namespace.as_deref()),
    ];
    let token_sa = [
        from_sub.map(|(_, sa)| sa),
        k8s.and_then(|k| k.service_account.as_deref()),
    ];
    fn differs(ours: Option<&str>, theirs: &[Option<&str>; 2]) -> bool {
        ours.is_some_and(|o| theirs.iter().flatten().any(|t| *t != o))
    }
    let bad_ns = differs(namespace, &token_ns);
    let bad_sa = differs(service_account, &token_sa);
    if !bad_ns && !bad_sa {
        return None;
    }
    let ns = namespace.or(token_ns[0]).unwrap_or("<namespace>");
    let sa = service_account
        .or(token_sa[0])
        .unwrap_or("<service account>");
    let what = match (bad_ns, bad_sa) {
        (true, true) => "namespace and service account",
        (true, false) => "namespace",
        _ => "service account",
    };
    let sub = claims.sub.as_deref().unwrap_or("(no sub claim)");
    let found = format!(
        "sub {sub}; kubernetes.io namespace {}, service account {}",
        token_ns[1].unwrap_or("(none)"),
        token_sa[1].unwrap_or("(none)")
    );
    Some(
        Finding::error(
            Code::SubjectMismatch,
            format!(
                "the token's {what} is not this pod's: it is for {sub}, and this pod runs as \
                 system:serviceaccount:{ns}:{sa}"
            ),
            format!(
                "The token file is not this pod's own: a variable set by hand names a token \
                 copied from another pod or mounted from another service account's volume, or \
                 --namespace/--service-account (IRSA_DOCTOR_NAMESPACE, \
                 IRSA_DOCTOR_SERVICE_ACCOUNT) say something else than the Downward API would. \
                 Inspect the pod's service account: kubectl get pod <pod> -n {ns} -o \
                 jsonpath='{{.spec.serviceAccountName}}'. Remove hand-set \
                 AWS_WEB_IDENTITY_TOKEN_FILE or AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE and \
                 recreate the pods so the webhook injects their own: kubectl rollout restart \
                 deployment/<name> -n {ns}."
            ),
        )
        .expected(format!("sub system:serviceaccount:{ns}:{sa}"))
        .found(found),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn irsa(problem: TokenFileProblem) -> Finding {
        token_file_finding(problem, &IRSA)
    }
    use crate::identity::token::{KubernetesClaims, ProcessIds};
    use crate::report::Severity;

    fn claims(aud: &[&str]) -> Claims {
        Claims {
            iss: Some("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC".into()),
            sub: Some("system:serviceaccount:pay:app".into()),
            aud: aud.iter().map(|a| (*a).to_owned()).collect(),
            kubernetes: Some(KubernetesClaims {
                node: Some("ip-10-0-0-1".into()),
                ..KubernetesClaims::default()
            }),
            ..Claims::default()
        }
    }

    #[test]
    fn a_missing_file_names_the_path_and_the_webhook_path() {
        let f = irsa(TokenFileProblem::Missing {
            path: "/t/token".into(),
            detail: "no such file".into(),
        });
        assert_eq!(
            (f.code, f.severity),
            (Code::TokenFileMissing, Severity::Error)
        );
        assert!(f.message.contains("/t/token does not exist: no such file"));
        assert!(f.remedy.contains(WEBHOOK_TOKEN_PATH));
        assert_eq!(f.found.as_deref(), Some("no such file"));
    }

    #[test]
    fn an_unreadable_file_shows_modes_and_ids_and_the_fsgroup_to_set() {
        let f = irsa(TokenFileProblem::Unreadable {
            path: "/t/token".into(),
            detail: "Permission denied".into(),
            file: Some((0o600, 0, 0)),
            process: Some(ProcessIds {
                uid: 1000,
                gid: 3000,
                groups: vec![],
            }),
        });
        assert_eq!(f.code, Code::TokenFileUnreadable);
        assert_eq!(
            f.found.as_deref(),
            Some("file mode 0600, owner uid 0 gid 0; this process runs as uid 1000 gid 3000 groups []")
        );
        assert!(f.remedy.contains("fsGroup: 3000"), "{}", f.remedy);
    }

    #[test]
    fn a_root_process_is_never_told_to_set_fsgroup_zero() {
        let finding = irsa(TokenFileProblem::Unreadable {
            path: WEBHOOK_TOKEN_PATH.into(),
            detail: "open failed: Permission denied".into(),
            file: Some((0o600, 65534, 65534)),
            process: Some(ProcessIds {
                uid: 0,
                gid: 0,
                groups: vec![],
            }),
        });
        assert!(!finding.remedy.contains("fsGroup: 0"), "{}", finding.remedy);
        assert!(
            finding.remedy.contains("fsGroup: 65532"),
            "{}",
            finding.remedy
        );
    }

    #[test]
    fn a_directory_is_pointed_at_the_token_inside_it() {
        let f = irsa(TokenFileProblem::NotAFile {
            path: "/var/run/secrets/eks.amazonaws.com/serviceaccount".into(),
            kind: NotAFile::Directory,
        });
        assert_eq!(f.code, Code::TokenFileUnreadable);
        assert!(
            f.message.ends_with("is a directory, not a file"),
            "{}",
            f.message
        );
        assert!(
            f.remedy
                .contains("point it at /var/run/secrets/eks.amazonaws.com/serviceaccount/token"),
            "{}",
            f.remedy
        );
        assert_eq!(f.found.as_deref(), Some("a directory"));
        let fifo = irsa(TokenFileProblem::NotAFile {
            path: "/t".into(),
            kind: NotAFile::Fifo,
        });
        assert!(fifo.remedy.contains("a regular file"), "{}", fifo.remedy);
        let looped = irsa(TokenFileProblem::NotAFile {
            path: "/t".into(),
            kind: NotAFile::SymlinkLoop,
        });
        assert!(
            looped.remedy.contains("symlinks that never ends"),
            "{}",
            looped.remedy
        );
    }

    #[test]
    fn pod_identity_s_token_names_its_own_variable_and_path() {
        let f = token_file_finding(
            TokenFileProblem::Missing {
                path: "/p".into(),
                detail: "no such file".into(),
            },
            &POD_IDENTITY,
        );
        assert!(
            f.remedy.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            "{}",
            f.remedy
        );
        assert!(f.remedy.contains("eks-pod-identity-token"), "{}", f.remedy);
        assert!(
            !f.remedy.contains("AWS_WEB_IDENTITY_TOKEN_FILE"),
            "{}",
            f.remedy
        );
        let f = token_malformed(Path::new("/p"), "is not a JWT", &POD_IDENTITY);
        assert!(
            f.remedy.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            "{}",
            f.remedy
        );
    }

    #[test]
    fn an_oversized_or_empty_file_is_malformed() {
        let f = irsa(TokenFileProblem::Malformed {
            path: "/t".into(),
            detail: "the file is empty".into(),
        });
        assert_eq!(f.code, Code::TokenMalformed);
        assert_eq!(f.found.as_deref(), Some("the file is empty"));
    }

    #[test]
    fn a_token_that_is_not_a_jwt_says_why() {
        let f = token_malformed(Path::new("/t"), "is not a JWT: it has 1 segments", &IRSA);
        assert_eq!(
            (f.code, f.severity),
            (Code::TokenMalformed, Severity::Error)
        );
        assert_eq!(f.message, "the token in /t is not a JWT: it has 1 segments");
        assert_eq!(
            f.found.as_deref(),
            Some("a token that is not a JWT: it has 1 segments")
        );
        assert!(f.remedy.contains(WEBHOOK_TOKEN_PATH));
    }

    #[test]
    fn an_expired_token_names_when_and_the_node() {
        let f = token_expired_locally(1_700_000_000, 1_700_000_100, &claims(&[]));
        assert_eq!((f.code, f.severity), (Code::TokenExpired, Severity::Error));
        assert!(f.message.contains("(100 s ago)"), "{}", f.message);
        assert!(
            f.remedy.contains("the kubelet on node ip-10-0-0-1"),
            "{}",
            f.remedy
        );
        assert_eq!(f.found, Some(format!("exp {}", format_unix(1_700_000_000))));
    }

    #[test]
    fn an_audience_mismatch_names_both_audiences_and_the_annotation() {
        let f = audience_mismatch(Some("sts.amazonaws.com"), &claims(&["vault"]), None);
        assert_eq!(
            (f.code, f.severity),
            (Code::TokenAudienceMismatch, Severity::Error)
        );
        assert_eq!(
            f.message,
            "the token's audience does not include sts.amazonaws.com: it has aud [vault]"
        );
        assert!(f
            .remedy
            .contains("eks.amazonaws.com/audience=sts.amazonaws.com"));
        assert_eq!(
            f.expected.as_deref(),
            Some("aud containing sts.amazonaws.com")
        );
        let by_sts = audience_mismatch(Some("sts.amazonaws.com"), &claims(&[]), Some("no"));
        assert!(by_sts
            .message
            .starts_with("STS rejected the token's audience (no)"));
        assert_eq!(by_sts.found.as_deref(), Some("no aud claim"));
    }

    #[test]
    fn a_missing_volume_says_the_variables_were_set_by_hand_and_gives_both_fixes() {
        let path = Path::new(WEBHOOK_TOKEN_PATH);
        let dir = path.parent().unwrap();
        let f = token_volume_missing(
            path,
            dir,
            &["AWS_ROLE_ARN", "AWS_REGION", "AWS_STS_REGIONAL_ENDPOINTS"],
        );
        assert_eq!(f.code, Code::TokenFileMissing);
        assert!(
            f.message.starts_with("no token volume is mounted"),
            "{}",
            f.message
        );
        assert!(!f.remedy.contains("recreate the pod"), "{}", f.remedy);
        assert!(f.remedy.contains("recreating the pod changes nothing"));
        assert!(f.remedy.contains("aws-iam-token"), "{}", f.remedy);
        assert!(
            f.remedy.contains("drop the hand-set variables"),
            "{}",
            f.remedy
        );
        assert_eq!(
            f.found.as_deref(),
            Some(
                "no /var/run/secrets/eks.amazonaws.com/serviceaccount; this container sets \
                 AWS_ROLE_ARN, AWS_REGION, AWS_STS_REGIONAL_ENDPOINTS"
            )
        );
        let elsewhere = token_at_webhook_path(Path::new("/tokens/token"), "no such file");
        assert!(elsewhere.remedy.contains(WEBHOOK_TOKEN_PATH));
        assert_eq!(
            elsewhere.found.as_deref(),
            Some("AWS_WEB_IDENTITY_TOKEN_FILE=/tokens/token")
        );
    }

    #[test]
    fn an_audience_sts_refused_without_audience_names_the_provider_and_the_token_audience() {
        let f = audience_mismatch(
            None,
            &claims(&["my-aud"]),
            Some("InvalidIdentityToken: Incorrect token audience"),
        );
        assert_eq!(
            f.message,
            "STS rejected the token's audience (InvalidIdentityToken: Incorrect token \
             audience); the token has aud [my-aud]"
        );
        assert_eq!(
            f.expected.as_deref(),
            Some(
                "aud containing a client ID registered on the IAM OIDC provider for \
                 https://oidc.eks.eu-west-1.amazonaws.com/id/ABC (by default sts.amazonaws.com)"
            )
        );
        assert!(f.remedy.contains("--client-id my-aud"), "{}", f.remedy);
        assert!(
            f.remedy
                .contains("eks.amazonaws.com/audience=sts.amazonaws.com"),
            "{}",
            f.remedy
        );
    }

    #[test]
    fn subject_mismatch_names_what_differs_and_only_then() {
        let claims = Claims {
            sub: Some("system:serviceaccount:payments:app".into()),
            kubernetes: Some(crate::identity::token::KubernetesClaims {
                namespace: Some("payments".into()),
                service_account: Some("app".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            subject_mismatch(Some("payments"), Some("app"), &claims),
            None
        );
        assert_eq!(subject_mismatch(None, None, &claims), None);
        assert_eq!(
            subject_mismatch(Some("payments"), None, &Claims::default()),
            None
        );
        let f = subject_mismatch(Some("shop"), None, &claims).unwrap();
        assert_eq!(f.code, Code::SubjectMismatch);
        assert_eq!(
            f.message,
            "the token's namespace is not this pod's: it is for \
             system:serviceaccount:payments:app, and this pod runs as \
             system:serviceaccount:shop:app"
        );
        assert_eq!(
            f.expected.as_deref(),
            Some("sub system:serviceaccount:shop:app")
        );
        assert!(f.remedy.contains("kubectl get pod <pod> -n shop"));
        let f = subject_mismatch(Some("payments"), Some("web"), &claims).unwrap();
        assert!(f
            .message
            .starts_with("the token's service account is not this pod's"));
        let f = subject_mismatch(Some("shop"), Some("web"), &claims).unwrap();
        assert!(f
            .message
            .starts_with("the token's namespace and service account"));
    }
}
