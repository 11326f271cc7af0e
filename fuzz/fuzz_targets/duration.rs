//! The duration parsers of --timeout, --interval and friends: their
//! bounds hold, and an accepted duration written back parses the same.
#![no_main]

use std::time::Duration;

use irsa_doctor::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let [any, positive, interval] = fuzzing::duration(s);
    if let Some(d) = positive {
        assert_eq!(any, Some(d));
        assert!(!d.is_zero() && d <= Duration::from_secs(86_400), "{d:?}");
        let written = fuzzing::format_duration(d);
        assert_eq!(fuzzing::duration(&written)[1], Some(d), "{written}");
    }
    match interval {
        Some(d) => {
            assert_eq!(positive, Some(d));
            assert!(d >= Duration::from_secs(1), "{d:?}");
        }
        None => assert!(positive.is_none_or(|d| d < Duration::from_secs(1))),
    }
});
