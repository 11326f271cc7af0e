//! The one assertion every output of every run can afford: no secret the
//! kit hands out appears in it. The secrets are the pod's token (every
//! 12-character piece of each of its segments), the kit's token signature,
//! every credential the STS stand-in mints (irsa-doctor's own sessions and
//! the Pod Identity agent's, all of which start with the same prefixes),
//! and the IMDS stand-in's node credentials.

use crate::fake_aws::{SECRET_PREFIX, SESSION_TOKEN_PREFIX};
use crate::imds::{NODE_SECRET, NODE_SESSION_TOKEN};
use crate::jwt::SIGNATURE;

/// Panics, naming `context` and the secret, when `text` holds one.
pub fn assert_no_secret(text: &str, token: &str, context: &str) {
    for secret in [
        SIGNATURE,
        SECRET_PREFIX,
        SESSION_TOKEN_PREFIX,
        NODE_SECRET,
        NODE_SESSION_TOKEN,
    ] {
        assert!(
            !text.contains(secret),
            "{context}: {secret} leaked:\n{text}"
        );
    }
    for segment in token.split('.').filter(|s| s.len() > 8) {
        let bytes = segment.as_bytes();
        for window in bytes.windows(12.min(bytes.len())) {
            let window = String::from_utf8_lossy(window);
            assert!(
                !text.contains(window.as_ref()),
                "{context}: a piece of the token leaked ({window}):\n{text}"
            );
        }
    }
}
