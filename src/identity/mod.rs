//! The values that name an identity: role and assumed-role ARNs, the
//! projected token and its claims, the issuer's key set and signatures,
//! and the mechanism's name.
//!
//! Invariant: pure values and parsers; the token is the only file read here,
//! through `guard`'s bounded reads.

pub mod arn;
pub mod jwks;
pub mod mechanism;
pub mod token;
