//! The trust-policy evaluator, offline and pure: does this role's trust
//! policy let this pod in, and if not, which statement and condition
//! refuse it, on what value. The policy's text and the request in, an
//! [`Evaluation`] out; no I/O, no clock. `explain` and the trust findings
//! of `check` use it.
//!
//! The IAM semantics trust policies actually use: `Effect` (an explicit
//! `Deny` wins), `Principal`/`NotPrincipal` (`Federated`, `Service`, `AWS`, `*`),
//! `Action`/`NotAction` with wildcards, and the string and ARN condition
//! operators and `Null`. Anything else (`Bool`, dates, policy variables)
//! is reported as not evaluated, never guessed.
//!
//! One job a file, each importing only those above it in this list:
//! - `request`: who asks, for what, with which context keys;
//! - `conditions`: a condition judged, and IAM's wildcards;
//! - `reasons`: the English, pure functions from what was found to a
//!   sentence, every quoted value cleaned;
//! - `parse`: the policy's text in any form people have at hand;
//! - `evaluate`: statement by statement, to a verdict;
//! - `correct`: the statement and the policy that would admit the request.

mod conditions;
mod correct;
mod evaluate;
mod parse;
mod reasons;
mod request;

pub use correct::{corrected_document, corrected_statement};
pub use evaluate::{evaluate, Evaluation};
pub use parse::{parse, Document, PolicyError, MAX_POLICY_BYTES};
pub use request::Request;
