//! A trust policy's text, in any form `explain` reads (plain JSON, `aws iam
//! get-role`'s output, URL-encoded), through the evaluator, for an IRSA
//! request and an EKS Pod Identity one: a denial has a one-line reason (no
//! control character), and the corrected policy irsa-doctor hands out,
//! parsed again, admits the request it was corrected for.
#![no_main]

use irsa_doctor::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(outcomes) = fuzzing::trust_policy(text) else {
        return;
    };
    for out in outcomes {
        if out.allowed {
            assert!(out.reason.is_none());
            continue;
        }
        let reason = out.reason.expect("a denial says why");
        // One line: no line break, nor any other control character a
        // policy's string could carry into a finding or a terminal.
        assert!(!reason.contains(|c: char| c.is_control()), "{reason:?}");
        assert_eq!(
            out.corrected_allows,
            Some(true),
            "the corrected policy still denies: {reason}"
        );
    }
});
