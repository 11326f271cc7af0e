//! The EKS Pod Identity agent's answer (`STATUS [cut]`, an empty line, the
//! body; or `none` and a reason) through `agent::judge`. A failure's
//! detail is one line and bounded.
#![no_main]

use irsa_doctor::fuzzing::{self, AgentOutcome};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match fuzzing::agent_answer(data) {
        None => {}
        Some(AgentOutcome::Issued(key, _)) => assert!(!key.is_empty()),
        Some(AgentOutcome::Failed(_, detail)) => {
            assert!(!detail.chars().any(char::is_control), "{detail:?}");
            // 600 characters of quote, and a sentence around them.
            assert!(detail.chars().count() <= 800, "{} chars", detail.len());
        }
    }
});
