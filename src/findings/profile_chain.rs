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
