//! --session-name's parser, and the name chosen from AWS_ROLE_SESSION_NAME
//! and the pod's name: the name sent to STS always follows STS's rule.
#![no_main]

use irsa_doctor::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (parsed, chosen) = fuzzing::session_name(s);
    assert!(fuzzing::is_valid_session_name(&chosen), "{chosen:?}");
    match parsed {
        Some(p) => {
            assert_eq!(p, s);
            assert_eq!(chosen, s);
        }
        None => assert!(!fuzzing::is_valid_session_name(s)),
    }
});
