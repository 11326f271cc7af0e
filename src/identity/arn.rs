//! IAM role ARNs and the STS assumed-role ARNs they turn into.
//!
//! STS drops a role's path and changes the service when it assumes it:
//! `arn:aws:iam::111122223333:role/team/payments/app` becomes
//! `arn:aws:sts::111122223333:assumed-role/app/<session>`. Two ARNs name the
//! same role when partition, account and role name agree; that is the only
//! comparison this module offers, so no caller compares ARN strings by hand.
//!
//! Also `--require`'s entries ([`Requirement`]): an action and the resource
//! ARN it is needed on.

use std::fmt;

/// The partitions IRSA exists in. Anything else is a typo, not a new region.
pub const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

/// A parsed `arn:<partition>:iam::<account>:role/<path/><name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    pub partition: String,
    pub account: String,
    /// `/` for a role without a path, else `/team/payments/`.
    pub path: String,
    pub name: String,
}

/// A parsed `arn:<partition>:sts::<account>:assumed-role/<name>/<session>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedRoleArn {
    pub partition: String,
    pub account: String,
    pub role_name: String,
    pub session: String,
}

/// Why an ARN did not parse; the message completes "the role ARN ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    #[error("has leading or trailing whitespace, which the SDK sends to STS as it is")]
    Whitespace,
    #[error("does not have the six colon-separated parts of arn:PARTITION:iam::ACCOUNT:role/NAME")]
    Shape,
    #[error("has partition {0:?}, expected one of aws, aws-cn, aws-us-gov")]
    Partition(String),
    #[error("names service {0:?}, expected iam")]
    Service(String),
    #[error("has region {0:?}, but IAM ARNs have an empty region field")]
    Region(String),
    #[error("has account {0:?}, expected 12 digits")]
    Account(String),
    #[error("has resource {0:?}, expected role/NAME or role/PATH/NAME")]
    Resource(String),
}

// IAM's limits: names are 1-64 of [\w+=,.@-], paths 1-512 characters.
fn is_iam_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

fn split_arn(s: &str) -> Result<[&str; 6], ArnError> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let parts: [&str; 6] = parts.try_into().map_err(|_| ArnError::Shape)?;
    if parts[0] != "arn" {
        return Err(ArnError::Shape);
    }
    if !PARTITIONS.contains(&parts[1]) {
        return Err(ArnError::Partition(parts[1].to_owned()));
    }
    Ok(parts)
}

fn check_account(account: &str) -> Result<(), ArnError> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ArnError::Account(account.to_owned()))
    }
}

impl RoleArn {
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        // STS accepts 20-2048 characters; longer input is not worth scanning.
        if s.len() > 2048 {
            return Err(ArnError::Shape);
        }
        if s.trim() != s {
            return Err(ArnError::Whitespace);
        }
        let [_, partition, service, region, account, resource] = split_arn(s)?;
        if service != "iam" {
            return Err(ArnError::Service(service.to_owned()));
        }
        if !region.is_empty() {
            return Err(ArnError::Region(region.to_owned()));
        }
        check_account(account)?;
        let bad_resource = || ArnError::Resource(resource.to_owned());
        let rest = resource.strip_prefix("role/").ok_or_else(bad_resource)?;
        let (path, name) = match rest.rfind('/') {
            Some(i) => (format!("/{}", &rest[..=i]), &rest[i + 1..]),
            None => ("/".to_owned(), rest),
        };
        let path_ok = path.len() <= 512
            && path
                .split('/')
                .filter(|seg| !seg.is_empty())
                .all(is_iam_name)
            && !path.contains("//");
        if !is_iam_name(name) || !path_ok {
            return Err(bad_resource());
        }
        Ok(RoleArn {
            partition: partition.to_owned(),
            account: account.to_owned(),
            path,
            name: name.to_owned(),
        })
    }

    /// True when both ARNs name the same role: partition, account and name
    /// agree. The path is ignored, as STS ignores it when assuming.
    pub fn same_role(&self, other: &RoleArn) -> bool {
        self.identity() == other.identity()
    }

    /// True when STS assuming this role yields `assumed`: partition, account
    /// and name agree (the path is not part of an assumed-role ARN).
    pub fn matches(&self, assumed: &AssumedRoleArn) -> bool {
        self.identity() == (&assumed.partition, &assumed.account, &assumed.role_name)
    }

    /// What names a role, for comparisons: partition, account and name.
    fn identity(&self) -> (&String, &String, &String) {
        (&self.partition, &self.account, &self.name)
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:iam::{}:role{}{}",
            self.partition, self.account, self.path, self.name
        )
    }
}

impl AssumedRoleArn {
    /// Parses an assumed-role ARN; `None` for any other principal (an IAM
    /// user, the account root), which never matches a role.
    pub fn parse(s: &str) -> Option<Self> {
        let [_, partition, service, _, account, resource] = split_arn(s).ok()?;
        if service != "sts" || check_account(account).is_err() {
            return None;
        }
        let rest = resource.strip_prefix("assumed-role/")?;
        let (role_name, session) = rest.split_once('/')?;
        Some(AssumedRoleArn {
            partition: partition.to_owned(),
            account: account.to_owned(),
            role_name: role_name.to_owned(),
            session: session.to_owned(),
        })
    }
}

/// STS's rule for `RoleSessionName`: 2-64 characters of `[\w+=,.@-]`.
pub fn is_valid_session_name(s: &str) -> bool {
    (2..=64).contains(&s.len()) && s.chars().all(is_session_char)
}

pub fn is_session_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// One `--require` entry: an IAM action the app needs, and the resource
/// it needs it on (`*` when none is given), as IAM's policy simulator
/// takes them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Requirement {
    /// `service:Action`, as IAM names it (`s3:GetObject`).
    pub action: String,
    /// A resource ARN, or `*`.
    pub resource: String,
}

/// IAM's limits on a simulated action name and resource ARN.
const MAX_ACTION_CHARS: usize = 128;
const MAX_RESOURCE_CHARS: usize = 2048;

impl Requirement {
    /// Parses `ACTION[@RESOURCE_ARN]`: the action is `service:Action` with
    /// no wildcard (the simulator evaluates API operations, not patterns);
    /// the resource, split at the first `@`, is `*` or an ARN with its six
    /// parts. The error completes "the entry ... ".
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is empty (a doubled or trailing comma?)".into());
        }
        let (action, resource) = match text.split_once('@') {
            Some((action, resource)) => (action.trim(), resource.trim()),
            None => (text, "*"),
        };
        let service_and_name = action.split_once(':').filter(|(service, name)| {
            !service.is_empty()
                && !name.is_empty()
                && service
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && name.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if service_and_name.is_none() || action.len() > MAX_ACTION_CHARS {
            return Err(format!(
                "has action {action:?}, expected SERVICE:Action such as s3:GetObject, without \
                 wildcards"
            ));
        }
        let arn_parts = resource.splitn(6, ':').collect::<Vec<_>>();
        let arn_ok = arn_parts.len() == 6
            && arn_parts[0] == "arn"
            && !arn_parts[1].is_empty()
            && !arn_parts[2].is_empty()
            && !arn_parts[5].is_empty();
        let printable = resource.chars().all(|c| !c.is_control() && c != ' ');
        if !(resource == "*" || arn_ok && printable) || resource.len() > MAX_RESOURCE_CHARS {
            return Err(format!(
                "has resource {resource:?}, expected * or an ARN such as \
                 arn:aws:s3:::BUCKET/KEY (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)"
            ));
        }
        Ok(Requirement {
            action: action.to_owned(),
            resource: resource.to_owned(),
        })
    }
}

impl fmt::Display for Requirement {
    /// As it was given: `ACTION@RESOURCE`, or the action alone for `*`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.resource == "*" {
            f.write_str(&self.action)
        } else {
            write!(f, "{}@{}", self.action, self.resource)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_parse_with_and_without_a_resource() {
        let r = Requirement::parse(" s3:GetObject@arn:aws:s3:::orders/* ").unwrap();
        assert_eq!(
            (r.action.as_str(), r.resource.as_str()),
            ("s3:GetObject", "arn:aws:s3:::orders/*")
        );
        assert_eq!(r.to_string(), "s3:GetObject@arn:aws:s3:::orders/*");
        let r = Requirement::parse("sts:GetCallerIdentity").unwrap();
        assert_eq!(r.resource, "*");
        assert_eq!(r.to_string(), "sts:GetCallerIdentity");
        // An IAM user's name may hold an @: the split is at the first.
        let r = Requirement::parse("iam:GetUser@arn:aws:iam::111122223333:user/bob@example.com")
            .unwrap();
        assert_eq!(r.resource, "arn:aws:iam::111122223333:user/bob@example.com");
        let r = Requirement::parse("sqs:SendMessage@arn:aws:sqs:eu-west-1:111122223333:orders")
            .unwrap();
        assert_eq!(r.action, "sqs:SendMessage");
    }

    #[test]
    fn malformed_requirements_say_what_is_wrong() {
        for (text, says) in [
            ("", "is empty"),
            ("  ", "is empty"),
            ("GetObject", "has action"),
            ("s3:", "has action"),
            ("s3:Get*", "has action"),
            ("S3:GetObject", "has action"),
            ("s3 :GetObject", "has action"),
            ("s3:GetObject@", "has resource"),
            ("s3:GetObject@orders/*", "has resource"),
            ("s3:GetObject@arn:aws:s3:::", "has resource"),
            ("s3:GetObject@arn:aws:s3", "has resource"),
            ("s3:GetObject@arn:aws:s3:::a b", "has resource"),
        ] {
            let err = Requirement::parse(text).unwrap_err();
            assert!(err.starts_with(says), "{text:?}: {err}");
        }
        let long = format!("s3:GetObject@arn:aws:s3:::{}", "k".repeat(3000));
        assert!(Requirement::parse(&long).is_err());
    }

    #[test]
    fn role_with_path_parses_and_matches_its_assumed_arn() {
        let role = RoleArn::parse("arn:aws:iam::111122223333:role/team/payments/app").unwrap();
        assert_eq!(role.path, "/team/payments/");
        assert_eq!(role.name, "app");
        assert_eq!(
            role.to_string(),
            "arn:aws:iam::111122223333:role/team/payments/app"
        );
        let assumed =
            AssumedRoleArn::parse("arn:aws:sts::111122223333:assumed-role/app/sess").unwrap();
        assert!(role.matches(&assumed));
    }

    #[test]
    fn other_partition_account_or_name_does_not_match() {
        let role = RoleArn::parse("arn:aws-cn:iam::111122223333:role/app").unwrap();
        for other in [
            "arn:aws:sts::111122223333:assumed-role/app/s",
            "arn:aws-cn:sts::999999999999:assumed-role/app/s",
            "arn:aws-cn:sts::111122223333:assumed-role/app2/s",
        ] {
            assert!(
                !role.matches(&AssumedRoleArn::parse(other).unwrap()),
                "{other}"
            );
        }
    }

    #[test]
    fn malformed_role_arns_say_what_is_wrong() {
        let cases = [
            ("arn:aws:iam::111122223333", ArnError::Shape),
            ("nope:aws:iam::111122223333:role/x", ArnError::Shape),
            (
                "arn:aws-mars:iam::111122223333:role/x",
                ArnError::Partition("aws-mars".into()),
            ),
            (
                "arn:aws:sts::111122223333:role/x",
                ArnError::Service("sts".into()),
            ),
            (
                "arn:aws:iam:us-east-1:111122223333:role/x",
                ArnError::Region("us-east-1".into()),
            ),
            ("arn:aws:iam::1111:role/x", ArnError::Account("1111".into())),
            (
                "arn:aws:iam::111122223333:user/x",
                ArnError::Resource("user/x".into()),
            ),
            (
                "arn:aws:iam::111122223333:role/",
                ArnError::Resource("role/".into()),
            ),
            ("arn:aws:iam::111122223333:role/app\n", ArnError::Whitespace),
            (
                "arn:aws:iam::111122223333:role/has space",
                ArnError::Resource("role/has space".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(RoleArn::parse(input), Err(want), "{input}");
        }
    }

    #[test]
    fn huge_input_is_rejected_without_scanning() {
        let huge = format!("arn:aws:iam::111122223333:role/{}", "a".repeat(10_000));
        assert_eq!(RoleArn::parse(&huge), Err(ArnError::Shape));
    }

    #[test]
    fn non_role_principals_are_not_assumed_roles() {
        assert!(AssumedRoleArn::parse("arn:aws:iam::111122223333:user/moto").is_none());
        assert!(AssumedRoleArn::parse("arn:aws:sts::111122223333:federated-user/x").is_none());
    }
}
