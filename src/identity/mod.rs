//! The values that name an identity: role and assumed-role ARNs, the
//! projected token and its claims, the issuer's key set and signatures,
//! the mechanism's name, and an EKS Pod Identity association's session
//! policy (what the identity may do at most), and IAM's wildcard match
//! that policies of both kinds use.
//!
//! Invariant: pure values and parsers; the token is the only file read here,
//! through `guard`'s bounded reads.

pub mod arn;
pub mod jwks;
pub mod mechanism;
pub mod session_policy;
pub mod token;
pub mod wildcard;
