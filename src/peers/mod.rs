//! The peers the tool talks to, one file each: STS, IAM, the EKS Pod
//! Identity Agent, the token's OIDC issuer, and the bounded HTTPS client
//! (`traffic`) that every connection goes through.
//!
//! Invariant: each file is the only one that talks to its peer; what comes
//! back is reduced to plain values and failures, worded in `findings`.

pub mod agent;
pub mod chain;
pub mod exchange;
pub mod failure;
pub mod iam;
pub mod issuer;
pub mod sts;
pub mod traffic;
