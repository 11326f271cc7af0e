//! The trust-policy evaluator, offline and pure: a role's trust policy and
//! the request this pod makes in, an evaluation out.

mod reasons;

pub use reasons::*;
