//! One HTTP answer (`STATUS`, header lines, an empty line, the body) to
//! both STS calls, through the SDK's parsing and irsa-doctor's reading of
//! it. Messages are one line, never quote the token, and the answer to
//! `GetCallerIdentity` never quotes the secret key of the credentials it
//! was signed with (the answer to `AssumeRoleWithWebIdentity` may: that
//! call knows no such key, and the text is only the answer's own).
#![no_main]

use irsa_doctor::fuzzing;
use libfuzzer_sys::fuzz_target;

fn check(message: &str) {
    assert!(!message.chars().any(char::is_control), "{message:?}");
    assert!(!message.contains(fuzzing::STS_TOKEN), "{message:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some(out) = fuzzing::sts_answer(data).expect("an STS answer hung") else {
        return;
    };
    match &out.assume {
        Ok(arn) => assert!(!arn.is_empty()),
        Err((_, message)) => check(message),
    }
    match &out.identity {
        Ok(arn) => assert!(!arn.is_empty()),
        Err((_, message)) => {
            check(message);
            assert!(!message.contains(fuzzing::STS_SECRET_KEY), "{message:?}");
        }
    }
});
