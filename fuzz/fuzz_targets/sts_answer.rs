//! One HTTP answer (`STATUS`, header lines, an empty line, the body) to
//! both STS calls, through the SDK's parsing and irsa-doctor's reading of
//! it. Messages are one line, and never quote the token or the secret key.
#![no_main]

use irsa_doctor::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(out) = fuzzing::sts_answer(data).expect("an STS answer hung") else {
        return;
    };
    for result in [&out.assume, &out.identity] {
        match result {
            Ok(arn) => assert!(!arn.is_empty()),
            Err((_, message)) => {
                assert!(!message.chars().any(char::is_control), "{message:?}");
                assert!(!message.contains(fuzzing::STS_TOKEN), "{message:?}");
                assert!(!message.contains(fuzzing::STS_SECRET_KEY), "{message:?}");
            }
        }
    }
});
