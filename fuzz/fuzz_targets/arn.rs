//! Role and assumed-role ARNs: what parses shows back as itself, and the
//! assumed-role ARN STS makes of a role matches it. `--require`'s entries:
//! what parses shows back as an entry that parses to the same.
#![no_main]

use irsa_doctor::{fuzzing, Requirement, RoleArn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(role) = RoleArn::parse(s) {
        let shown = role.to_string();
        assert_eq!(shown, s);
        assert_eq!(RoleArn::parse(&shown).ok(), Some(role.clone()));
        let assumed = format!(
            "arn:{}:sts::{}:assumed-role/{}/fuzz",
            role.partition, role.account, role.name
        );
        assert_eq!(fuzzing::role_matches(&role, &assumed), Some(true));
    }
    if let Ok(entry) = Requirement::parse(s) {
        assert!(!entry.action.contains('*') && !entry.action.contains('@'));
        assert_eq!(Requirement::parse(&entry.to_string()).ok(), Some(entry));
    }
    if let Some([partition, account, name, session]) = fuzzing::assumed_role_arn(s) {
        let again = format!("arn:{partition}:sts::{account}:assumed-role/{name}/{session}");
        assert_eq!(
            fuzzing::assumed_role_arn(&again),
            Some([partition, account, name, session])
        );
    }
});
