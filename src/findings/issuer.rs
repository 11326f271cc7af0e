//! The issuer step's findings (`--verify-issuer`): the token's OIDC issuer
//! could not be asked, publishes another issuer, lacks the token's key, or
//! the signature does not verify. Imports `jwks`'s `Refusal`, the type it
//! words, and nothing that does I/O.

use crate::identity::jwks::{Refusal, ACCEPTED_ALGS, RSA_BITS};
use crate::report::{Code, Finding};

/// What the findings name: the token's issuer and what it signed with.
pub struct Signed<'a> {
    pub iss: &'a str,
    pub alg: Option<&'a str>,
    pub kid: Option<&'a str>,
}

/// `ISSUER_UNREACHABLE`: the issuer's `document` at `url` could not be had
/// (`why` completes "it ..."); `refused` when irsa-doctor would not ask.
/// A warning: the pod's egress may be closed on purpose, and STS asks the
/// issuer from AWS's side, not from the pod.
pub fn issuer_unreachable(
    iss: &str,
    document: &str,
    url: &str,
    why: &str,
    refused: bool,
) -> Finding {
    let message = if refused {
        format!("the token's issuer {iss} was not asked for its {document}: {url} {why}")
    } else {
        format!("the token's issuer {iss} could not be checked: its {document} at {url} {why}")
    };
    Finding::warning(
        Code::IssuerUnreachable,
        message,
        format!(
            "This pod could not check the token's issuer itself; the signature is left to \
             STS. That alone does not fail anything: STS fetches the issuer's documents \
             from AWS's side, and a pod's egress may be closed on purpose (a \
             NetworkPolicy, no NAT or proxy route to the internet). What STS needs is \
             that the issuer is reachable from the internet over https with a publicly \
             trusted certificate: on a self-managed cluster, publish the discovery \
             document and key set there (an S3 bucket or a CDN in front of it). Check \
             from outside the cluster: curl -sS {url}. Where egress is closed by design, \
             leave --verify-issuer off."
        ),
    )
    .expected(format!("a 200 with the {document} from {url}"))
    .found(why)
}

/// `ISSUER_MISMATCH`: the discovery document at `url` names `published`,
/// not the token's `iss`.
pub fn issuer_mismatch(iss: &str, url: &str, published: &str) -> Finding {
    Finding::error(
        Code::IssuerMismatch,
        format!(
            "the token's issuer {iss} publishes a discovery document that names another \
             issuer, {published}: STS refuses a token whose issuer does not publish itself"
        ),
        format!(
            "The issuer in the token, the issuer in {url} and the IAM OIDC provider's URL \
             must be the same text, to the trailing slash. On EKS, compare with aws eks \
             describe-cluster --name <cluster> --query cluster.identity.oidc.issuer \
             --output text. On a self-managed cluster, the API server's \
             --service-account-issuer must equal the issuer in the published document: \
             fix whichever is wrong, republish the document (curl -sS {url} shows what is \
             served), and recreate the pod for a new token."
        ),
    )
    .expected(iss)
    .found(published)
}

/// `SIGNING_KEY_UNKNOWN`: no key of the issuer's set at `jwks_uri` (whose
/// key IDs are `kids`) has the token's `kid`.
pub fn signing_key_unknown(signed: &Signed<'_>, jwks_uri: &str, kids: &[String]) -> Finding {
    let kid = signed.kid.unwrap_or("(none)");
    Finding::error(
        Code::SigningKeyUnknown,
        format!(
            "the token is signed with the key {kid}, which its issuer {} does not publish \
             at {jwks_uri}: it was signed by another cluster, or by a key the issuer no \
             longer publishes",
            signed.iss
        ),
        format!(
            "A token signed by a key its issuer does not publish is refused by STS. A token \
             copied from another cluster (a Secret, a file baked into the image, \
             AWS_WEB_IDENTITY_TOKEN_FILE pointing at it) carries that cluster's key: use \
             the projected token the kubelet writes for this pod. On a self-managed \
             cluster, publish every key the API server signs with \
             (--service-account-signing-key-file): compare kubectl get --raw \
             /openid/v1/jwks with curl -sS {jwks_uri}, republish, and recreate the pod."
        ),
    )
    .expected(format!("a key with kid {kid} in {jwks_uri}"))
    .found(if kids.is_empty() {
        "no keys".to_owned()
    } else {
        format!("keys {}", kids.join(", "))
    })
}

/// `TOKEN_SIGNATURE_INVALID`: the signature was not accepted (`refusal`),
/// or the token's signature segment is no signature (`not_signed`).
pub fn token_signature_invalid(signed: &Signed<'_>, refusal: Result<&Refusal, &str>) -> Finding {
    let alg = signed.alg.unwrap_or("(none)");
    let kid = signed.kid.unwrap_or("(none)");
    let why = match refusal {
        Err(not_signed) => format!("the token {not_signed}"),
        Ok(Refusal::Alg(_)) => format!(
            "the token's header says alg {alg}, which is never accepted: a service-account \
             token is signed with {}",
            ACCEPTED_ALGS.join(" or ")
        ),
        Ok(Refusal::KeyUnfit { why, .. }) => {
            format!("the key {kid} cannot check its {alg} signature: {why}")
        }
        Ok(Refusal::RsaKeySize { bits, matches, .. }) => format!(
            "the issuer's key {kid} is a {bits}-bit RSA key, and irsa-doctor checks {alg} only \
             with RSA keys of {} to {} bits{}",
            RSA_BITS.start(),
            RSA_BITS.end(),
            match matches {
                Some(true) =>
                    " (the signature does match that key: the token is intact, but \
                               its issuer signs with a key too small to trust)",
                Some(false) => " (and the signature does not match that key either)",
                None => "",
            }
        ),
        Ok(Refusal::Invalid { .. } | Refusal::KeyUnknown { .. }) => format!(
            "its {alg} signature does not verify with the issuer's key {kid}: the token was \
             altered, or signed by another key under the same kid"
        ),
    };
    let remedy = match refusal {
        Ok(Refusal::RsaKeySize { bits, .. }) => format!(
            "The cluster's issuer signs with a {bits}-bit RSA key. Keys under {} bits can \
             be broken, and current libraries, aws-lc-rs here, refuse them for RS256. \
             Give the API server a new signing key of {} bits or more (openssl genrsa \
             -out sa.key {}; --service-account-signing-key-file and \
             --service-account-key-file), publish its key set (kubectl get --raw \
             /openid/v1/jwks shows it), and recreate the pods for tokens signed with it. \
             EKS's own issuers sign with 2048-bit keys.",
            RSA_BITS.start(),
            RSA_BITS.start(),
            RSA_BITS.start(),
        ),
        _ => "STS refuses a token whose signature its issuer's keys do not verify. The \
              token file must hold the token the kubelet wrote, unchanged: point \
              AWS_WEB_IDENTITY_TOKEN_FILE (or AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) at \
              the projected token, never at a copy or a hand-made one, and recreate the \
              pod: kubectl delete pod <pod> -n <namespace>. On a self-managed cluster, \
              compare the published keys with the API server's: kubectl get --raw \
              /openid/v1/jwks."
            .to_owned(),
    };
    let expected = match refusal {
        Ok(Refusal::RsaKeySize { .. }) => format!(
            "an RSA key of {} to {} bits under kid {kid}",
            RSA_BITS.start(),
            RSA_BITS.end()
        ),
        _ => format!(
            "a {} signature that the issuer's key {kid} verifies",
            ACCEPTED_ALGS.join(" or ")
        ),
    };
    Finding::error(
        Code::TokenSignatureInvalid,
        format!(
            "the token's signature is not valid for its issuer {}: {why}",
            signed.iss
        ),
        remedy,
    )
    .expected(expected)
    .found(why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Severity;

    const ISS: &str = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC";

    fn signed(alg: &'static str) -> Signed<'static> {
        Signed {
            iss: ISS,
            alg: Some(alg),
            kid: Some("k1"),
        }
    }

    #[test]
    fn an_unreachable_issuer_is_a_warning_that_says_why_it_may_be_deliberate() {
        let f = issuer_unreachable(
            ISS,
            "discovery document",
            "https://x/.well-known/openid-configuration",
            "gave no answer in time",
            false,
        );
        assert_eq!(
            (f.code, f.severity),
            (Code::IssuerUnreachable, Severity::Warning)
        );
        assert!(f.message.contains("could not be checked"), "{}", f.message);
        assert!(f.remedy.contains("on purpose"), "{}", f.remedy);
        assert!(
            f.remedy.contains("curl -sS https://x/.well-known"),
            "{}",
            f.remedy
        );
        let refused =
            issuer_unreachable(ISS, "discovery document", "http://x", "is plain HTTP", true);
        assert!(
            refused.message.contains("was not asked"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn a_mismatch_names_both_issuers() {
        let f = issuer_mismatch(
            ISS,
            "https://x/.well-known/openid-configuration",
            "https://other",
        );
        assert_eq!(
            (f.code, f.severity),
            (Code::IssuerMismatch, Severity::Error)
        );
        assert_eq!(f.expected.as_deref(), Some(ISS));
        assert_eq!(f.found.as_deref(), Some("https://other"));
        assert!(f.remedy.contains("aws eks describe-cluster"));
    }

    #[test]
    fn an_unknown_key_lists_the_published_ones() {
        let f = signing_key_unknown(
            &signed("RS256"),
            "https://x/keys",
            &["a".into(), "b".into()],
        );
        assert_eq!(f.code, Code::SigningKeyUnknown);
        assert_eq!(f.found.as_deref(), Some("keys a, b"));
        assert!(f.message.contains("k1"));
        let none = signing_key_unknown(&signed("RS256"), "https://x/keys", &[]);
        assert_eq!(none.found.as_deref(), Some("no keys"));
    }

    #[test]
    fn each_refusal_is_worded() {
        let none = token_signature_invalid(&signed("none"), Ok(&Refusal::Alg(Some("none".into()))));
        assert!(
            none.message.contains("alg none, which is never accepted"),
            "{}",
            none.message
        );
        let bad = token_signature_invalid(&signed("RS256"), Ok(&Refusal::Invalid { kid: None }));
        assert!(bad.message.contains("does not verify"), "{}", bad.message);
        let unfit = token_signature_invalid(
            &signed("ES256"),
            Ok(&Refusal::KeyUnfit {
                kid: None,
                why: "the key is RSA".into(),
            }),
        );
        assert!(
            unfit.message.contains("the key is RSA"),
            "{}",
            unfit.message
        );
        let small = token_signature_invalid(
            &signed("RS256"),
            Ok(&Refusal::RsaKeySize {
                kid: None,
                bits: 1024,
                matches: Some(true),
            }),
        );
        assert!(
            small
                .message
                .contains("k1 is a 1024-bit RSA key, and irsa-doctor checks RS256 only with RSA keys of 2048 to 8192 bits"),
            "{}",
            small.message
        );
        assert!(!small.message.contains("altered,"), "{}", small.message);
        assert!(small.remedy.contains("openssl genrsa"), "{}", small.remedy);
        assert_eq!(
            small.expected.as_deref(),
            Some("an RSA key of 2048 to 8192 bits under kid k1")
        );
        let garbled = token_signature_invalid(
            &signed("RS256"),
            Err("has a signature segment that is not base64url"),
        );
        assert!(
            garbled.message.contains("not base64url"),
            "{}",
            garbled.message
        );
        assert_eq!(garbled.severity, Severity::Error);
    }
}
