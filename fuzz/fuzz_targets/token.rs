//! The token file's bytes through the reader's checks and the claims
//! decoder.
#![no_main]

use irsa_doctor::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = fuzzing::token(data);
    if let Ok(token) = &out.token {
        // Trimmed, never empty, and always decoded (or refused).
        assert!(!token.is_empty());
        assert_eq!(token.trim(), token);
        assert!(out.claims.is_some());
        // Header-safe exactly when no byte is a control character but tab.
        let safe = data.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
        assert_eq!(out.header_safe, safe);
    }
});
