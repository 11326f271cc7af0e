//! A document an OIDC issuer serves, as a discovery document and as a key
//! set, through `jwks`'s parsers; every key it holds then asked to verify
//! a signature nobody made.
#![no_main]

use irsa_doctor::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = fuzzing::issuer_documents(data);
    if let Ok((issuer, jwks_uri)) = &out.discovery {
        assert!(!issuer.is_empty() && !jwks_uri.is_empty());
    }
    if let Ok(keys) = &out.keys {
        assert!(keys.len() <= 100, "{} keys", keys.len());
    }
    // The last 64 bytes of the input are no one's signature over the rest.
    assert!(!out.verified, "a made-up signature verified: {out:?}");
});
