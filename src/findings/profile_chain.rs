//! The profile chain's findings: a role chain an AWS config profile asks
//! for (`role_arn` with `source_profile`), where a hop is refused, where the
//! chain cannot be followed at all, and where irsa-doctor cannot follow it
//! but the app's SDK would.

use crate::report::{Code, Finding};
use crate::settings::profile_chain::Problem;

/// One refused hop: `role_arn` assumed with the credentials of
/// `previous_role` (a role ARN), as `profile` asks.
pub struct RefusedHop<'a> {
    pub selected: &'a str,
    pub profile: &'a str,
    pub role_arn: &'a str,
    pub previous_role: &'a str,
    pub external_id: Option<&'a str>,
    /// STS's code and message.
    pub said: &'a str,
}

/// `PROFILE_HOP_DENIED`: STS refused `sts:AssumeRole` into a hop's role
/// with the previous hop's credentials.
pub fn hop_denied(hop: &RefusedHop<'_>) -> Finding {
    let role_name = hop.role_arn.rsplit('/').next().unwrap_or(hop.role_arn);
    let condition = hop.external_id.map_or_else(String::new, |id| {
        format!(r#", "Condition": {{"StringEquals": {{"sts:ExternalId": "{id}"}}}}"#)
    });
    let statement = format!(
        r#"{{"Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": "sts:AssumeRole"{condition}}}"#,
        hop.previous_role
    );
    Finding::error(
        Code::ProfileHopDenied,
        format!(
            "profile {:?} (selected by AWS_PROFILE={}) assumes {} with the credentials of {}, \
             and STS refused it: {}. The app's SDK makes the same call and gets the same refusal",
            hop.profile, hop.selected, hop.role_arn, hop.previous_role, hop.said
        ),
        format!(
            "Add this statement to the trust policy of {role_name}: {statement}. Across \
             accounts, {} also needs an identity policy that allows sts:AssumeRole on {}. See \
             the trust policy now: aws iam get-role --role-name {role_name} --query \
             Role.AssumeRolePolicyDocument; replace it (with the statement added): aws iam \
             update-assume-role-policy --role-name {role_name} --policy-document \
             file://trust.json",
            hop.previous_role, hop.role_arn
        ),
    )
    .expected(format!(
        "the trust policy of {} admits {} for sts:AssumeRole",
        hop.role_arn, hop.previous_role
    ))
    .found(hop.said.to_owned())
}

/// `PROFILE_CHAIN_UNVERIFIABLE`: the chain starts at credentials that the
/// app's SDK would get itself and irsa-doctor does not (`what`), so who
/// the app finally acts as is not proven.
pub fn unverifiable(selected: &str, profile: &str, what: &str, final_role: &str) -> Finding {
    Finding::warning(
        Code::ProfileChainUnverifiable,
        format!(
            "profile {selected:?} (selected by AWS_PROFILE) starts its role chain at profile \
             {profile:?} with {what}: the app's SDK would get those credentials itself, then \
             assume {final_role}; irsa-doctor cannot, so the app's final role is not verified"
        ),
        format!(
            "Check from the app's container what the chain gives: aws sts \
             get-caller-identity --profile {selected}. For irsa-doctor to verify the chain, \
             start it at IRSA's token: role_arn and web_identity_token_file in the source \
             profile (docs/profile-chains.md)."
        ),
    )
    .expected(format!(
        "a role chain irsa-doctor can follow, ending in {final_role}"
    ))
    .found(format!("profile {profile} with {what}"))
}

/// `PROFILE_CHAIN_UNVERIFIABLE` for a hop's `mfa_serial`: aws-config (and
/// irsa-doctor) ignore it, but botocore prompts for a code on a terminal a
/// pod does not have, and the SDKs for Go v2 and JavaScript v3 refuse the
/// profile without a code provider: the verdict holds for a Rust app only.
pub fn hop_mfa(selected: &str, profile: &str, serial: &str) -> Finding {
    Finding::warning(
        Code::ProfileChainUnverifiable,
        format!(
            "profile {profile:?} in profile {selected:?}'s role chain sets mfa_serial = \
             {serial}: botocore (boto3, the AWS CLI) asks for an MFA code on the terminal, \
             which a pod does not have, and the SDKs for Go v2 and JavaScript v3 refuse the \
             profile without a code provider, so an app on them gets no credentials; \
             aws-config (the AWS SDK for Rust) ignores it, and irsa-doctor followed the \
             chain as aws-config does"
        ),
        format!(
            "Remove mfa_serial from profile {profile} in the file AWS_CONFIG_FILE names: \
             nothing in a pod can type a code, and a trust policy that requires MFA cannot \
             be met by a role session (docs/profile-chains.md)."
        ),
    )
    .expected(format!("profile {profile} without mfa_serial"))
    .found(format!("mfa_serial = {serial}"))
}

/// `PROFILE_CHAIN_UNVERIFIABLE` for a hop's `duration_seconds` that STS
/// refuses (`range`): aws-config (and irsa-doctor) send no
/// `DurationSeconds`, botocore sends it and is refused.
pub fn hop_duration(selected: &str, profile: &str, value: &str, chained: bool) -> Finding {
    let (low, high) = if chained { (900, 3600) } else { (900, 43200) };
    let why = if chained {
        "STS takes at most 3600 for a role assumed with another role's session (role \
         chaining) and at least 900"
    } else {
        "STS takes 900 to 43200 (and no more than the role's maximum session duration)"
    };
    Finding::warning(
        Code::ProfileChainUnverifiable,
        format!(
            "profile {profile:?} in profile {selected:?}'s role chain sets duration_seconds = \
             {value}: botocore (boto3, the AWS CLI) sends it as DurationSeconds, as the SDKs \
             for Go and JavaScript do, and {why}, so an app on them is refused; aws-config \
             (the AWS SDK for Rust) sends none, and irsa-doctor followed the chain as \
             aws-config does"
        ),
        format!(
            "Set duration_seconds in profile {profile} to a number from {low} to {high}, or \
             remove it (docs/profile-chains.md)."
        ),
    )
    .expected(format!("duration_seconds from {low} to {high}, or none"))
    .found(format!("duration_seconds = {value}"))
}

/// `PROFILE_CHAIN_INVALID`: the SDK cannot follow the selected profile's
/// chain at all.
pub fn invalid(selected: &str, problem: &Problem) -> Finding {
    let (message, found) = match problem {
        Problem::Loop { profiles, next } => {
            let path = format!("{} -> {next}", profiles.join(" -> "));
            (
                format!(
                    "profile {selected:?}'s role chain loops ({path}): aws-config refuses the \
                     profile and the default chain stops there, so the app gets no \
                     credentials (botocore: InfiniteLoopConfigError)"
                ),
                format!("source_profile loop {path}"),
            )
        }
        Problem::MissingSource { missing, from } => (
            format!(
                "profile {from:?} names source_profile {missing:?}, which no config or \
                 credentials file defines: aws-config skips the profile and the app falls \
                 through to the next credentials it finds (here, usually AWS_ROLE_ARN's web \
                 identity), not the chain's role; botocore fails (InvalidConfigError)"
            ),
            format!("no profile {missing}"),
        ),
        Problem::Invalid { profile, message } => (
            format!(
                "profile {profile:?} in profile {selected:?}'s role chain is not usable: \
                 {message}; aws-config refuses it and the app gets no credentials from it"
            ),
            format!("profile {profile}: {message}"),
        ),
    };
    Finding::error(
        Code::ProfileChainInvalid,
        message,
        format!(
            "Fix the profiles in the file AWS_CONFIG_FILE names (each hop: role_arn and one \
             of source_profile or credential_source; the first: role_arn and \
             web_identity_token_file for IRSA). See what the AWS CLI makes of it: aws \
             configure list --profile {selected} (docs/profile-chains.md)."
        ),
    )
    .expected(format!(
        "profile {selected}'s role chain leads to credentials"
    ))
    .found(found)
}

/// `PROFILE_CHAIN_UNVERIFIABLE` for `AWS_DEFAULT_PROFILE`: botocore
/// (`configprovider.py`: `['AWS_DEFAULT_PROFILE', 'AWS_PROFILE']`, the
/// first set wins) follows it even beside `AWS_PROFILE`; aws-config, which
/// irsa-doctor follows, never reads it. `ours` is the profile aws-config
/// uses (`AWS_PROFILE`, else `default`).
pub fn default_profile(theirs: &str, ours: &str) -> Finding {
    Finding::warning(
        Code::ProfileChainUnverifiable,
        format!(
            "AWS_DEFAULT_PROFILE={theirs} makes a Python app (botocore: boto3, the AWS CLI) \
             use profile {theirs:?}, which botocore reads before AWS_PROFILE, while the AWS \
             SDK for Rust (aws-config), which irsa-doctor follows, never reads it and uses \
             profile {ours:?}: the verdict holds for the profile {ours:?} only"
        ),
        format!(
            "Set the profile the app should use in AWS_PROFILE alone and remove \
             AWS_DEFAULT_PROFILE from the container's env (kubectl set env deployment/APP \
             AWS_DEFAULT_PROFILE-), or check what a Python app gets: aws sts \
             get-caller-identity --profile {theirs} (docs/profile-chains.md)."
        ),
    )
    .expected(format!("every SDK in the container using profile {ours:?}"))
    .found(format!(
        "AWS_DEFAULT_PROFILE={theirs}: botocore uses profile {theirs:?}"
    ))
}

/// IRSA's refusal of `AWS_ROLE_ARN` (`refused`, an error), when the chain
/// the app follows starts at another role or token and was followed to its
/// end: the app never asks for `AWS_ROLE_ARN`, so it is a warning, for the
/// containers without `AWS_PROFILE` that would.
pub fn unused_role_refused(refused: Finding, selected: &str, root_role: &str) -> Finding {
    Finding {
        severity: crate::report::Severity::Warning,
        message: format!(
            "{}; the app does not use AWS_ROLE_ARN: profile {selected:?} (selected by \
             AWS_PROFILE) starts its role chain at {root_role}, which was followed to its \
             end, but a container without AWS_PROFILE would use AWS_ROLE_ARN and fail",
            refused.message
        ),
        remedy: format!(
            "Only containers without AWS_PROFILE need this: {}",
            refused.remedy
        ),
        ..refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_hop_names_the_statement_the_next_role_needs() {
        let f = hop_denied(&RefusedHop {
            selected: "b",
            profile: "b",
            role_arn: "arn:aws:iam::222233334444:role/target",
            previous_role: "arn:aws:iam::111122223333:role/app",
            external_id: Some("x-1"),
            said: "AccessDenied: not authorized",
        });
        assert!(f.remedy.contains(
            r#"{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/app"}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "x-1"}}}"#
        ), "{}", f.remedy);
        assert!(f.remedy.contains("--role-name target"), "{}", f.remedy);
    }

    #[test]
    fn a_loop_shows_its_path() {
        let f = invalid(
            "x",
            &Problem::Loop {
                profiles: vec!["x".into(), "y".into()],
                next: "x".into(),
            },
        );
        assert!(f.message.contains("(x -> y -> x)"), "{}", f.message);
    }
}
