//! What an OIDC issuer publishes, parsed, and a token's signature checked
//! against it: the discovery document (`issuer`, `jwks_uri`), the JSON Web
//! Key Set, and JWS signatures with RS256 (RSA PKCS#1 v1.5, SHA-256, keys of
//! 2048 to 8192 bits) or ES256 (ECDSA P-256, SHA-256, the fixed-size
//! signature JWS uses), checked by aws-lc-rs.
//!
//! Invariant: pure (bytes and values in, values out; no I/O, no clock) and a
//! leaf. Only the two algorithms a Kubernetes issuer signs with are ever
//! accepted: `none`, the HMAC family and anything else are refused before a
//! key is looked up, whatever the key set holds.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine as _;
use serde::Deserialize;

/// The most keys of a set irsa-doctor looks at: an issuer publishes a few
/// (the current key and the next or last); more is not a key set.
pub const MAX_KEYS: usize = 100;

/// The discovery document's two fields irsa-doctor uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
}

#[derive(Deserialize)]
struct WireDiscovery {
    issuer: Option<serde_json::Value>,
    jwks_uri: Option<serde_json::Value>,
}

/// Parses a discovery document; says what is wrong with one that is not.
pub fn parse_discovery(bytes: &[u8]) -> Result<Discovery, String> {
    let wire: WireDiscovery =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not a JSON object ({e})"))?;
    let text = |value: Option<serde_json::Value>, name: &str| match value {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(format!("its {name} is not a non-empty string")),
        None => Err(format!("it has no {name}")),
    };
    Ok(Discovery {
        issuer: text(wire.issuer, "issuer")?,
        jwks_uri: text(wire.jwks_uri, "jwks_uri")?,
    })
}

/// A public key of the set, as irsa-doctor can use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// `kty: RSA`: the modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// `kty: EC`, `crv: P-256`: the uncompressed point (0x04, x, y).
    P256 { point: Vec<u8> },
    /// Any other key, or one whose fields do not decode: why it is unusable.
    Unusable(String),
}

/// One key of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The key's own `alg`, when it names one.
    pub alg: Option<String>,
    pub key: Key,
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// Whether a key has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The key IDs, for messages.
    pub fn kids(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.kid.clone().unwrap_or_else(|| "(no kid)".to_owned()))
            .collect()
    }
}

#[derive(Deserialize)]
struct WireJwks {
    keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Parses a key set; says what is wrong with one that is not. A key that
/// cannot be used is kept as [`Key::Unusable`], so that a token naming it
/// is told why.
pub fn parse_jwks(bytes: &[u8]) -> Result<Jwks, String> {
    let wire: WireJwks = serde_json::from_slice(bytes)
        .map_err(|e| format!("it is not a JSON object with a keys array ({e})"))?;
    if wire.keys.len() > MAX_KEYS {
        return Err(format!(
            "it has {} keys, more than the {MAX_KEYS} irsa-doctor reads",
            wire.keys.len()
        ));
    }
    Ok(Jwks {
        keys: wire.keys.iter().map(jwk).collect(),
    })
}

fn jwk(fields: &serde_json::Map<String, serde_json::Value>) -> Jwk {
    let text = |name: &str| fields.get(name).and_then(|v| v.as_str());
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        let value = text(name).ok_or_else(|| format!("it has no {name}"))?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value.trim_end_matches('='))
            .map_err(|_| format!("its {name} is not base64url"))
    };
    let key = match (text("kty"), text("crv")) {
        (Some("RSA"), _) => match (bytes("n"), bytes("e")) {
            (Ok(n), Ok(e)) => Key::Rsa { n, e },
            (Err(why), _) | (_, Err(why)) => Key::Unusable(why),
        },
        (Some("EC"), Some("P-256")) => match (bytes("x"), bytes("y")) {
            (Ok(x), Ok(y)) if x.len() == 32 && y.len() == 32 => {
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Key::P256 { point }
            }
            (Ok(_), Ok(_)) => Key::Unusable("its x or y is not 32 bytes, as P-256's are".into()),
            (Err(why), _) | (_, Err(why)) => Key::Unusable(why),
        },
        (Some("EC"), crv) => Key::Unusable(format!(
            "it is an EC key on the curve {}, not P-256",
            crv.unwrap_or("(none)")
        )),
        (kty, _) => Key::Unusable(format!(
            "its kty is {}, not RSA or EC",
            kty.unwrap_or("(none)")
        )),
    };
    Jwk {
        kid: text("kid").map(str::to_owned),
        alg: text("alg").map(str::to_owned),
        key,
    }
}

/// The algorithms accepted: the ones a Kubernetes issuer signs with.
pub const ACCEPTED_ALGS: [&str; 2] = ["RS256", "ES256"];

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The header's `alg` is not RS256 or ES256 (`none`, `HS256`, ...), or
    /// there is none. Refused before any key is looked at.
    Alg(Option<String>),
    /// No key of the set has the token's `kid` (or, without a `kid`, none
    /// fits its `alg`).
    KeyUnknown { kid: Option<String> },
    /// The key the `kid` names cannot check this signature: another key
    /// type, another `alg`, or unusable. Says why.
    KeyUnfit { kid: Option<String>, why: String },
    /// The key is the right one, and the signature does not verify with
    /// it: the token was altered, or signed by another key under this
    /// `kid`.
    Invalid { kid: Option<String> },
    /// The key is RSA of `bits` bits, outside [`RSA_BITS`]: it is not
    /// used. `matches` says whether the signature would verify with it
    /// (known for 1024 to 8192 bits; `None` below), so that the finding
    /// does not call a genuine token altered.
    RsaKeySize {
        kid: Option<String>,
        bits: u32,
        matches: Option<bool>,
    },
}

/// The RSA key sizes RS256 is checked with, in bits: aws-lc-rs's
/// `RSA_PKCS1_2048_8192_SHA256`. Smaller keys are breakable (NIST has
/// disallowed RSA under 2048 bits for signatures since 2013); larger ones
/// only cost time.
pub const RSA_BITS: std::ops::RangeInclusive<u32> = 2048..=8192;

/// The size in bits of an RSA modulus, big-endian.
pub fn rsa_bits(n: &[u8]) -> u32 {
    let n = &n[n.iter().take_while(|b| **b == 0).count()..];
    match n.first() {
        None => 0,
        Some(top) => u32::try_from(n.len() * 8).unwrap_or(u32::MAX) - top.leading_zeros(),
    }
}

/// Checks `signature` over `signing_input` with the key `kid` names in
/// `jwks`; returns the `kid` of the key that verified it.
pub fn verify(
    jwks: &Jwks,
    alg: Option<&str>,
    kid: Option<&str>,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<Option<String>, Refusal> {
    let alg = match alg {
        Some(a) if ACCEPTED_ALGS.contains(&a) => a,
        other => return Err(Refusal::Alg(other.map(str::to_owned))),
    };
    let owned_kid = kid.map(str::to_owned);
    let candidates: Vec<&Jwk> = match kid {
        Some(kid) => jwks
            .keys
            .iter()
            .filter(|k| k.kid.as_deref() == Some(kid))
            .collect(),
        // No kid: any key of the algorithm's type may have signed it.
        None => jwks.keys.iter().filter(|k| fits(k, alg).is_ok()).collect(),
    };
    if candidates.is_empty() {
        return Err(Refusal::KeyUnknown { kid: owned_kid });
    }
    let mut unfit = None;
    for key in candidates {
        match fits(key, alg) {
            Err(why) => unfit = Some(why),
            Ok(()) => {
                if let Key::Rsa { n, e } = &key.key {
                    let bits = rsa_bits(n);
                    if !RSA_BITS.contains(&bits) {
                        // Only to word the finding: a token that matches
                        // such a key is still not accepted.
                        let legacy = &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY;
                        let matches = (1024..=8192).contains(&bits).then(|| {
                            RsaPublicKeyComponents { n, e }
                                .verify(legacy, signing_input, signature)
                                .is_ok()
                        });
                        return Err(Refusal::RsaKeySize {
                            kid: owned_kid,
                            bits,
                            matches,
                        });
                    }
                }
                if checks(&key.key, signing_input, signature) {
                    return Ok(key.kid.clone());
                }
                return Err(Refusal::Invalid { kid: owned_kid });
            }
        }
    }
    Err(Refusal::KeyUnfit {
        kid: owned_kid,
        why: unfit.unwrap_or_default(),
    })
}

/// Whether `key` can check an `alg` signature; says why not.
fn fits(key: &Jwk, alg: &str) -> Result<(), String> {
    if let Some(own) = key.alg.as_deref().filter(|own| *own != alg) {
        return Err(format!(
            "the key is for {own}, the token is signed with {alg}"
        ));
    }
    match (&key.key, alg) {
        (Key::Rsa { .. }, "RS256") | (Key::P256 { .. }, "ES256") => Ok(()),
        (Key::Unusable(why), _) => Err(format!("the key cannot be used: {why}")),
        (Key::Rsa { .. }, _) => Err(format!("the key is RSA, the token is signed with {alg}")),
        (Key::P256 { .. }, _) => Err(format!(
            "the key is EC P-256, the token is signed with {alg}"
        )),
    }
}

fn checks(key: &Key, message: &[u8], signature: &[u8]) -> bool {
    match key {
        Key::Rsa { n, e } => RsaPublicKeyComponents { n, e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
            .is_ok(),
        Key::P256 { point } => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
            .verify(message, signature)
            .is_ok(),
        Key::Unusable(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::oidc::Signer;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn set(keys: &[serde_json::Value]) -> Jwks {
        parse_jwks(serde_json::json!({ "keys": keys }).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn an_rs256_signature_verifies_with_its_key_and_fails_when_altered() {
        let key = Signer::rs256("a");
        let jwks = set(&[key.jwk()]);
        let sig = key.sign_bytes(b"head.body");
        assert_eq!(
            verify(&jwks, Some("RS256"), Some("a"), b"head.body", &sig),
            Ok(Some("a".into()))
        );
        assert_eq!(
            verify(&jwks, Some("RS256"), Some("a"), b"head.bodz", &sig),
            Err(Refusal::Invalid {
                kid: Some("a".into())
            })
        );
        // Another key under the same kid.
        let other = set(&[Signer::rs256("a").jwk()]);
        assert!(matches!(
            verify(&other, Some("RS256"), Some("a"), b"head.body", &sig),
            Err(Refusal::Invalid { .. })
        ));
    }

    #[test]
    fn an_es256_signature_verifies_with_its_key_and_fails_when_altered() {
        let key = Signer::es256("e");
        let jwks = set(&[key.jwk()]);
        let sig = key.sign_bytes(b"h.p");
        assert_eq!(sig.len(), 64, "JWS's fixed-size form");
        assert_eq!(
            verify(&jwks, Some("ES256"), Some("e"), b"h.p", &sig),
            Ok(Some("e".into()))
        );
        assert!(matches!(
            verify(&jwks, Some("ES256"), Some("e"), b"h.q", &sig),
            Err(Refusal::Invalid { .. })
        ));
        // Without a kid, any key of the type is tried.
        assert_eq!(
            verify(&jwks, Some("ES256"), None, b"h.p", &sig),
            Ok(Some("e".into()))
        );
    }

    #[test]
    fn none_and_hmac_are_refused_whatever_the_set_holds() {
        let jwks = set(&[
            serde_json::json!({"kty": "oct", "kid": "a", "k": b64(b"secret")}),
            Signer::rs256("r").jwk(),
        ]);
        for alg in [
            Some("none"),
            Some("HS256"),
            Some("RS512"),
            Some("PS256"),
            None,
        ] {
            assert_eq!(
                verify(&jwks, alg, Some("a"), b"x.y", b""),
                Err(Refusal::Alg(alg.map(str::to_owned))),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn an_unknown_kid_is_unknown_and_a_misfit_key_says_why() {
        let jwks = set(&[Signer::rs256("a").jwk(), Signer::es256("e").jwk()]);
        assert_eq!(
            verify(&jwks, Some("RS256"), Some("zzz"), b"m", b"s"),
            Err(Refusal::KeyUnknown {
                kid: Some("zzz".into())
            })
        );
        match verify(&jwks, Some("RS256"), Some("e"), b"m", b"s") {
            Err(Refusal::KeyUnfit { why, .. }) => assert!(why.contains("for ES256"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Without its own alg, the key's type decides.
        let mut bare = Signer::es256("e").jwk();
        bare.as_object_mut().unwrap().remove("alg");
        match verify(&set(&[bare]), Some("RS256"), Some("e"), b"m", b"s") {
            Err(Refusal::KeyUnfit { why, .. }) => assert!(why.contains("EC P-256"), "{why}"),
            other => panic!("{other:?}"),
        }
        // The key's own alg is held to.
        match verify(&jwks, Some("ES256"), Some("a"), b"m", b"s") {
            Err(Refusal::KeyUnfit { why, .. }) => assert!(why.contains("RS256"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_that_cannot_be_used_are_kept_with_the_reason() {
        let jwks = set(&[
            serde_json::json!({"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"}),
            serde_json::json!({"kty": "RSA", "kid": "bad", "n": "!!", "e": "AQAB"}),
            serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "short", "x": "AA", "y": "AA"}),
            serde_json::json!({"kid": "nokty"}),
        ]);
        let why: Vec<String> = jwks
            .keys
            .iter()
            .map(|k| match &k.key {
                Key::Unusable(why) => why.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(why[0].contains("P-384"), "{why:?}");
        assert!(why[1].contains("n is not base64url"), "{why:?}");
        assert!(why[2].contains("32 bytes"), "{why:?}");
        assert!(why[3].contains("(none)"), "{why:?}");
        assert_eq!(jwks.kids(), ["p384", "bad", "short", "nokty"]);
    }

    #[test]
    fn a_small_rsa_key_is_refused_for_its_size() {
        // A real 1024-bit key and a signature it made: refused for the
        // key's size, not called altered; and a signature it did not make.
        let key = Signer::rs256_1024("small");
        let jwks = set(&[key.jwk()]);
        let sig = key.sign_bytes(b"head.body");
        assert_eq!(
            verify(&jwks, Some("RS256"), Some("small"), b"head.body", &sig),
            Err(Refusal::RsaKeySize {
                kid: Some("small".into()),
                bits: 1024,
                matches: Some(true),
            })
        );
        assert_eq!(
            verify(&jwks, Some("RS256"), Some("small"), b"head.bodz", &sig),
            Err(Refusal::RsaKeySize {
                kid: Some("small".into()),
                bits: 1024,
                matches: Some(false),
            })
        );
        // Under 1024 bits, nothing says whether it matches.
        let tiny = set(&[
            serde_json::json!({"kty": "RSA", "kid": "k", "n": b64(&[0x7f; 64]), "e": "AQAB"}),
        ]);
        assert_eq!(
            verify(&tiny, Some("RS256"), Some("k"), b"m", &[1; 64]),
            Err(Refusal::RsaKeySize {
                kid: Some("k".into()),
                bits: 511,
                matches: None,
            })
        );
    }

    #[test]
    fn rsa_key_sizes_are_counted_in_significant_bits() {
        assert_eq!(rsa_bits(&[]), 0);
        assert_eq!(rsa_bits(&[0, 0, 1]), 1);
        assert_eq!(rsa_bits(&[0x80; 256]), 2048);
        assert_eq!(rsa_bits(&[0x7f; 256]), 2047);
        assert_eq!(rsa_bits(&[0xff; 1024]), 8192);
        assert!(!RSA_BITS.contains(&2047) && RSA_BITS.contains(&2048));
        assert!(RSA_BITS.contains(&8192) && !RSA_BITS.contains(&8193));
        let rsa = Signer::rs256("k").jwk();
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(rsa["n"].as_str().unwrap())
            .unwrap();
        assert_eq!(rsa_bits(&n), 2048);
    }

    #[test]
    fn discovery_documents_and_key_sets_are_judged() {
        let doc = parse_discovery(
            br#"{"issuer":"https://oidc.example/id/X","jwks_uri":"https://oidc.example/keys","x":1}"#,
        )
        .unwrap();
        assert_eq!(doc.issuer, "https://oidc.example/id/X");
        assert_eq!(doc.jwks_uri, "https://oidc.example/keys");
        for (bad, says) in [
            (&b"<html>"[..], "not a JSON object"),
            (br#"{"jwks_uri":"u"}"#, "no issuer"),
            (br#"{"issuer":"i"}"#, "no jwks_uri"),
            (br#"{"issuer":7,"jwks_uri":"u"}"#, "issuer is not"),
            (br#"[]"#, "not a JSON object"),
        ] {
            let why = parse_discovery(bad).unwrap_err();
            assert!(why.contains(says), "{why}");
        }
        assert!(parse_jwks(b"{}").unwrap_err().contains("keys array"));
        assert!(parse_jwks(br#"{"keys":{}}"#).is_err());
        let many = serde_json::json!({ "keys": vec![serde_json::json!({}); MAX_KEYS + 1] });
        assert!(parse_jwks(many.to_string().as_bytes())
            .unwrap_err()
            .contains("more than"));
    }
}
