//! The role chain a shared config profile asks for, followed as
//! aws-config's profile provider follows it (`profile/credentials/repr.rs`
//! in aws-config 1.13), over the files `profile.rs` read within bounds and
//! parsed by aws-config's own parser.
//!
//! The user guide's cross-account pattern: `AWS_PROFILE=b` selects
//! `[profile b]` with `role_arn` and `source_profile = a`, and `[profile a]`
//! holds `role_arn` and `web_identity_token_file`. The SDK assumes A with
//! the token, then calls `sts:AssumeRole` into B with A's credentials; the
//! app runs as B.
//!
//! As in aws-config: a profile with `role_arn` (and no
//! `web_identity_token_file`) is a hop, whose source is `source_profile` or
//! `credential_source`; after the first profile, static keys (an access
//! key ID and its secret: a stray `aws_session_token` alone is not keys,
//! for aws-config or botocore) win over anything else a profile holds; a
//! profile seen twice is a loop, and that is the only bound on the chain's
//! length (the files themselves are at most `MAX_PROFILE_BYTES`).
//! `mfa_serial` and `duration_seconds` are read only to be named: aws-config
//! ignores both, botocore acts on both.

use std::borrow::Cow;

use aws_config::profile::{Profile, ProfileSet};
use aws_runtime::env_config::file::EnvConfigFiles;

/// What the selected profile's chain is, when it is one (a profile with
/// `role_arn` and a source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileChain {
    /// The profile `AWS_PROFILE` selects.
    pub selected: String,
    /// Where the first credentials come from.
    pub root: Root,
    /// The roles assumed with `sts:AssumeRole`, in the order the SDK
    /// assumes them: the last one is the app's.
    pub hops: Vec<Hop>,
}

/// The first credentials of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `role_arn` with `web_identity_token_file`: IRSA's token.
    WebIdentity {
        profile: String,
        role_arn: String,
        token_file: String,
        session_name: Option<String>,
    },
    /// Static keys in a profile.
    AccessKey { profile: String },
    /// `credential_source` (`Environment`, `Ec2InstanceMetadata`,
    /// `EcsContainer`): a provider aws-config builds itself.
    NamedSource { profile: String, source: String },
    /// `credential_process`, SSO (`sso_session`, `sso_start_url`) or
    /// `login_session`: the app's SDK would run them; irsa-doctor's build
    /// of aws-config leaves them out.
    Unbuilt { profile: String, what: &'static str },
}

/// One `sts:AssumeRole` of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The profile that names the role.
    pub profile: String,
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    /// `mfa_serial`: aws-config ignores it; botocore prompts for a code.
    pub mfa_serial: Option<String>,
    /// `duration_seconds`: aws-config sends none; botocore sends it.
    pub duration_seconds: Option<String>,
}

/// Why the SDK cannot follow the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A profile names, directly or not, a profile already in the chain.
    Loop { profiles: Vec<String>, next: String },
    /// `source_profile` names a profile no file defines.
    MissingSource { missing: String, from: String },
    /// A profile aws-config refuses (both or neither of `source_profile`
    /// and `credential_source`, a source profile without credentials).
    Invalid { profile: String, message: String },
}

/// The selected profile's chain, from the files `profile.rs` read (their
/// contents, never the disk). `None` when the selected profile is not a
/// role chain at all (then today's default-chain judgement stands).
pub async fn load(
    files: &EnvConfigFiles,
    lookup: impl Fn(&str) -> Option<String>,
) -> Option<Result<ProfileChain, Problem>> {
    resolve(&profile_set(files, lookup).await?)
}

/// The files parsed by aws-config's own parser, with the profile
/// `AWS_PROFILE` selects; `None` when aws-config refuses them.
async fn profile_set(
    files: &EnvConfigFiles,
    lookup: impl Fn(&str) -> Option<String>,
) -> Option<ProfileSet> {
    // aws-config reads AWS_PROFILE alone (not AWS_DEFAULT_PROFILE).
    let profile = lookup("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
    let env = aws_types::os_shim_internal::Env::from_slice(&[("AWS_PROFILE", &profile)]);
    let fs = aws_types::os_shim_internal::Fs::from_slice(&[]);
    aws_config::profile::load(&fs, &env, files, Some(Cow::Owned(profile)))
        .await
        .ok()
}

/// The selected profile's name and its values for `keys`, as aws-config
/// reads them (the keys a profile does not set are left out).
pub async fn selected_values(
    files: &EnvConfigFiles,
    lookup: impl Fn(&str) -> Option<String>,
    keys: &[&'static str],
) -> Option<(String, Vec<(&'static str, String)>)> {
    let set = profile_set(files, lookup).await?;
    let profile = set.get_profile(set.selected_profile())?;
    let values = keys
        .iter()
        .filter_map(|key| profile.get(key).map(|v| (*key, v.to_owned())))
        .collect();
    Some((profile.name().to_owned(), values))
}

/// Follows the selected profile's chain as aws-config's `resolve_chain`
/// does.
pub fn resolve(set: &ProfileSet) -> Option<Result<ProfileChain, Problem>> {
    let selected = set.selected_profile().to_owned();
    let mut name = selected.clone();
    let mut visited: Vec<String> = vec![];
    let mut hops = vec![];
    let root = loop {
        let Some(profile) = set.get_profile(&name) else {
            // The selected profile itself missing is no chain of ours.
            let from = visited.last()?.clone();
            return Some(Err(Problem::MissingSource {
                missing: name,
                from,
            }));
        };
        if visited.contains(&name) {
            return Some(Err(Problem::Loop {
                profiles: visited,
                next: name,
            }));
        }
        visited.push(name.clone());
        if visited.len() > 1 && has_static_keys(profile) {
            // aws-config's `static_creds_from_profile` succeeding: an
            // access key ID and a secret.
            break Root::AccessKey { profile: name };
        }
        let Some(hop) = hop_of(profile) else {
            let base = base_of(profile);
            if visited.len() == 1 {
                // Not a chain: today's judgement of the default chain.
                return None;
            }
            break match base {
                Some(root) => root,
                None => {
                    return Some(Err(Problem::Invalid {
                        profile: name,
                        message: "it holds no credentials to assume the next role with".into(),
                    }))
                }
            };
        };
        hops.push(hop);
        let source = profile.get("source_profile");
        let named = profile.get("credential_source");
        match (source, named) {
            (Some(_), Some(_)) | (None, None) => {
                return Some(Err(Problem::Invalid {
                    profile: name,
                    message: "a profile with role_arn needs exactly one of source_profile and \
                              credential_source"
                        .into(),
                }))
            }
            // Self-reference, or a named source: this profile is also
            // the root.
            (Some(s), None) if s == name => match base_of(profile) {
                Some(root) => break root,
                None => {
                    return Some(Err(Problem::Invalid {
                        profile: name,
                        message: "it names itself as source_profile but holds no credentials"
                            .into(),
                    }))
                }
            },
            (None, Some(source)) => match named_source(&name, source) {
                Ok(root) => break root,
                Err(problem) => return Some(Err(problem)),
            },
            (Some(s), None) => name = s.to_owned(),
        }
    };
    hops.reverse();
    Some(Ok(ProfileChain {
        selected,
        root,
        hops,
    }))
}

/// A hop: `role_arn` without `web_identity_token_file` (web identity is a
/// root, not a hop).
fn hop_of(profile: &Profile) -> Option<Hop> {
    if profile.get("web_identity_token_file").is_some() {
        return None;
    }
    Some(Hop {
        profile: profile.name().to_owned(),
        role_arn: profile.get("role_arn")?.to_owned(),
        external_id: profile.get("external_id").map(str::to_owned),
        session_name: profile.get("role_session_name").map(str::to_owned),
        mfa_serial: profile.get("mfa_serial").map(str::to_owned),
        duration_seconds: profile.get("duration_seconds").map(str::to_owned),
    })
}

/// What a profile gives as a chain's root, in aws-config's order:
/// `credential_source`, web identity, SSO, login session, process, keys.
fn base_of(profile: &Profile) -> Option<Root> {
    let name = profile.name().to_owned();
    let unbuilt = |what| {
        Some(Root::Unbuilt {
            profile: name.clone(),
            what,
        })
    };
    if let Some(source) = profile.get("credential_source") {
        // An unknown name is refused where the hop names it.
        return named_source(&name, source).ok();
    }
    if let (Some(role_arn), Some(token_file)) = (
        profile.get("role_arn"),
        profile.get("web_identity_token_file"),
    ) {
        return Some(Root::WebIdentity {
            profile: name,
            role_arn: role_arn.to_owned(),
            token_file: token_file.to_owned(),
            session_name: profile.get("role_session_name").map(str::to_owned),
        });
    }
    let sso = [
        "sso_session",
        "sso_start_url",
        "sso_account_id",
        "sso_role_name",
        "sso_region",
    ];
    if sso.iter().any(|k| profile.get(k).is_some()) {
        return unbuilt("SSO (sso_session / sso_start_url)");
    }
    if profile.get("login_session").is_some() {
        return unbuilt("login_session");
    }
    if profile.get("credential_process").is_some() {
        return unbuilt("credential_process");
    }
    has_static_keys(profile).then_some(Root::AccessKey { profile: name })
}

/// The providers aws-config builds for `credential_source`, matched
/// without regard to case as its factory matches them; any other name
/// makes it refuse the profile (`UnknownProvider`), and the app's chain
/// fails.
fn named_source(profile: &str, source: &str) -> Result<Root, Problem> {
    const KNOWN: [&str; 3] = ["Environment", "Ec2InstanceMetadata", "EcsContainer"];
    if KNOWN.iter().any(|k| k.eq_ignore_ascii_case(source)) {
        return Ok(Root::NamedSource {
            profile: profile.to_owned(),
            source: source.to_owned(),
        });
    }
    Err(Problem::Invalid {
        profile: profile.to_owned(),
        message: format!(
            "credential_source {source} is none of the names the SDKs know ({})",
            KNOWN.join(", ")
        ),
    })
}

/// Whether aws-config reads static keys from `profile`: an access key ID
/// and a secret (a session token is optional). Any part alone is not keys:
/// aws-config moves on to the profile's other settings after the first
/// profile, and refuses it as a root.
fn has_static_keys(profile: &Profile) -> bool {
    ["aws_access_key_id", "aws_secret_access_key"]
        .iter()
        .all(|k| profile.get(k).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_runtime::env_config::file::EnvConfigFileKind;

    fn chain(config: &str, profile: &str) -> Option<Result<ProfileChain, Problem>> {
        let files = EnvConfigFiles::builder()
            .with_contents(EnvConfigFileKind::Config, config)
            .build();
        let profile = profile.to_owned();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(load(&files, move |n| {
            (n == "AWS_PROFILE").then(|| profile.clone())
        }))
    }

    const GUIDE: &str = "[profile b]\nrole_arn = arn:aws:iam::222233334444:role/b\n\
                         source_profile = a\nexternal_id = x-1\n\
                         [profile a]\nrole_arn = arn:aws:iam::111122223333:role/a\n\
                         web_identity_token_file = /t/token\n";

    #[test]
    fn the_user_guides_pattern_is_one_web_identity_root_and_one_hop() {
        let c = chain(GUIDE, "b").unwrap().unwrap();
        assert_eq!(c.selected, "b");
        assert_eq!(
            c.root,
            Root::WebIdentity {
                profile: "a".into(),
                role_arn: "arn:aws:iam::111122223333:role/a".into(),
                token_file: "/t/token".into(),
                session_name: None,
            }
        );
        assert_eq!(c.hops.len(), 1);
        assert_eq!(c.hops[0].role_arn, "arn:aws:iam::222233334444:role/b");
        assert_eq!(c.hops[0].external_id.as_deref(), Some("x-1"));
        // The web-identity profile alone is no chain: today's judgement.
        assert_eq!(chain(GUIDE, "a"), None);
        assert_eq!(chain(GUIDE, "nope"), None);
    }

    #[test]
    fn hops_come_in_the_order_the_sdk_assumes_them() {
        let config = format!(
            "{GUIDE}[profile c]\nrole_arn = arn:aws:iam::333344445555:role/c\nsource_profile = b\n"
        );
        let c = chain(&config, "c").unwrap().unwrap();
        let roles: Vec<_> = c.hops.iter().map(|h| h.profile.as_str()).collect();
        assert_eq!(roles, ["b", "c"]);
    }

    #[test]
    fn loops_and_missing_sources_are_problems() {
        let looped = "[profile x]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = y\n\
                      [profile y]\nrole_arn = arn:aws:iam::1:role/y\nsource_profile = x\n";
        assert_eq!(
            chain(looped, "x"),
            Some(Err(Problem::Loop {
                profiles: vec!["x".into(), "y".into()],
                next: "x".into()
            }))
        );
        let missing = "[profile x]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = gone\n";
        assert_eq!(
            chain(missing, "x"),
            Some(Err(Problem::MissingSource {
                missing: "gone".into(),
                from: "x".into()
            }))
        );
        let both = "[profile x]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = x\n\
                    credential_source = Environment\n";
        assert!(matches!(
            chain(both, "x"),
            Some(Err(Problem::Invalid { .. }))
        ));
        let unknown = "[profile x]\nrole_arn = arn:aws:iam::1:role/x\ncredential_source = Bogus\n";
        assert!(matches!(
            chain(unknown, "x"),
            Some(Err(Problem::Invalid { .. }))
        ));
    }

    #[test]
    fn process_sso_and_named_sources_are_roots() {
        let process = "[profile x]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = p\n\
                       [profile p]\ncredential_process = /bin/creds\n";
        let c = chain(process, "x").unwrap().unwrap();
        assert!(matches!(
            c.root,
            Root::Unbuilt {
                what: "credential_process",
                ..
            }
        ));
        let sso = "[profile x]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = s\n\
                   [profile s]\nsso_session = corp\nsso_account_id = 1\nsso_role_name = r\n\
                   [sso-session corp]\nsso_region = us-east-1\nsso_start_url = https://x\n";
        let c = chain(sso, "x").unwrap().unwrap();
        assert!(matches!(c.root, Root::Unbuilt { profile, .. } if profile == "s"));
        let named = "[profile x]\nrole_arn = arn:aws:iam::1:role/x\n\
                     credential_source = Ec2InstanceMetadata\n";
        let c = chain(named, "x").unwrap().unwrap();
        assert_eq!(
            c.root,
            Root::NamedSource {
                profile: "x".into(),
                source: "Ec2InstanceMetadata".into()
            }
        );
        // After the first profile, static keys win, as in aws-config.
        let keys = "[profile x]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = k\n\
                    [profile k]\naws_access_key_id = AKIA\naws_secret_access_key = s\n\
                    credential_process = /bin/creds\n";
        let c = chain(keys, "x").unwrap().unwrap();
        assert_eq!(
            c.root,
            Root::AccessKey {
                profile: "k".into()
            }
        );
    }

    #[test]
    fn a_stray_part_of_static_keys_is_not_keys() {
        // aws-config (and botocore) follow a's web identity: a session
        // token alone, or an access key ID without its secret, is no keys.
        for stray in ["aws_session_token = stale", "aws_access_key_id = AKIA"] {
            let config = format!("{GUIDE}{stray}\n");
            let c = chain(&config, "b").unwrap().unwrap();
            assert!(
                matches!(c.root, Root::WebIdentity { .. }),
                "{stray}: {:?}",
                c.root
            );
        }
        // As a root, a part alone is no credentials (aws-config refuses).
        let partial = "[profile x]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = k\n\
                       [profile k]\naws_access_key_id = AKIA\n";
        assert!(matches!(
            chain(partial, "x"),
            Some(Err(Problem::Invalid { .. }))
        ));
    }
}
