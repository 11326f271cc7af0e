//! The shared config and credentials files, read within bounds and handed
//! to aws-config as contents.
//!
//! aws-config reads them with a plain `std::fs::read` on the async thread:
//! `AWS_CONFIG_FILE=/dev/zero` once made it read 517 MiB and then pass, and
//! a FIFO made it hang past `--timeout` and ignore SIGTERM. So irsa-doctor
//! reads them itself, the way aws-config finds them (`AWS_CONFIG_FILE` and
//! `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/config` and
//! `~/.aws/credentials`, `~` being `$HOME`), through [`read_bounded`], and
//! gives aws-config what it read. A missing, unreadable or non-UTF-8 file
//! counts as empty, as it does for aws-config. One that is not a regular
//! file or is over [`MAX_PROFILE_BYTES`] is empty too, with a finding: an
//! app's SDK would hang on it or read without end.

use std::path::{Component, Path, PathBuf};

use aws_runtime::env_config::file::{
    EnvConfigFileKind as ProfileFileKind, EnvConfigFiles as ProfileFiles,
};
use tracing::debug;

use crate::files::{read_bounded, ReadProblem};
use crate::report::{Code, Finding};

/// The most of a config or credentials file read. Real ones are a few KiB;
/// a generated one with hundreds of profiles stays well under this.
pub const MAX_PROFILE_BYTES: usize = 1024 * 1024;

/// The two files, as aws-config would find them.
const FILES: [(&str, &str, ProfileFileKind); 2] = [
    ("AWS_CONFIG_FILE", "~/.aws/config", ProfileFileKind::Config),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        "~/.aws/credentials",
        ProfileFileKind::Credentials,
    ),
];

/// The files' contents for aws-config, and findings for files that could
/// not be used.
pub fn load(lookup: impl Fn(&str) -> Option<String>) -> (ProfileFiles, Vec<Finding>) {
    let home = lookup("HOME");
    let mut files = ProfileFiles::builder();
    let mut findings = vec![];
    for (var, default, kind) in FILES {
        let named = lookup(var);
        let path = expand_home(named.as_deref().unwrap_or(default), home.as_deref());
        let contents = match read_bounded(&path, MAX_PROFILE_BYTES) {
            Ok(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| {
                debug!(path = %path.display(), "not UTF-8; read as empty, as aws-config does");
                String::new()
            }),
            Err(problem @ (ReadProblem::NotAFile(_) | ReadProblem::TooLarge { .. })) => {
                findings.push(unusable(var, named.is_some(), &path, &problem));
                String::new()
            }
            Err(problem) => {
                debug!(path = %path.display(), problem = %problem.describe(), "read as empty, as aws-config does");
                String::new()
            }
        };
        files = files.with_contents(kind, contents);
    }
    (files.build(), findings)
}

/// `~/x` with `home` for `~`, as aws-config expands it; other paths as
/// they are.
fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    let path = Path::new(path);
    let mut components = path.components();
    match (components.next(), home) {
        (Some(Component::Normal(first)), Some(home)) if first == "~" => {
            let mut expanded = PathBuf::from(home);
            expanded.extend(components);
            expanded
        }
        _ => path.to_owned(),
    }
}

fn unusable(var: &str, named: bool, path: &Path, problem: &ReadProblem) -> Finding {
    let source = if named {
        format!("{var} names {}", path.display())
    } else {
        format!("the default file {}", path.display())
    };
    Finding::error(
        Code::ProfileFileInvalid,
        format!(
            "{source}: {}; an app's AWS SDK reads this file whole at start-up and would hang \
             or exhaust its memory",
            problem.describe()
        ),
        format!(
            "Point {var} at a regular shared config file (at most {MAX_PROFILE_BYTES} bytes), \
             or remove it from the container spec so that the SDK reads nothing."
        ),
    )
    .expected("a regular file, or nothing at that path")
    .found(format!("{}: {}", path.display(), problem.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_expanded_like_aws_config() {
        assert_eq!(
            expand_home("~/.aws/config", Some("/home/app")),
            Path::new("/home/app/.aws/config")
        );
        assert_eq!(
            expand_home("~/.aws/config", None),
            Path::new("~/.aws/config")
        );
        assert_eq!(expand_home("/etc/aws", Some("/h")), Path::new("/etc/aws"));
    }

    #[test]
    fn a_device_or_fifo_is_a_finding_and_read_as_empty() {
        let (_, findings) = load(|name| match name {
            "AWS_CONFIG_FILE" => Some("/dev/zero".into()),
            "AWS_SHARED_CREDENTIALS_FILE" => Some("/nonexistent/credentials".into()),
            _ => None,
        });
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].code, Code::ProfileFileInvalid);
        assert!(
            findings[0]
                .message
                .contains("AWS_CONFIG_FILE names /dev/zero"),
            "{}",
            findings[0].message
        );
        assert!(
            findings[0].message.contains("character device"),
            "{}",
            findings[0].message
        );
    }
}
