//! irsa-doctor-injector puts the irsa-doctor container beside every pod that
//! has an AWS identity, with the role the pod is *supposed* to have, which no
//! check inside the pod can know: the pure core, the offline `inject`
//! command, and the admission webhook `serve` (docs/injector.md).
//!
//! Layout, top down (each module uses only those after it):
//! - [`webhook`]: `serve`, the admission webhook: HTTPS, the review, the
//!   JSON patch, the reloading certificate and the metrics.
//! - [`stream`]: a YAML or JSON stream of manifests in, the same stream out
//!   with every pod template patched; ServiceAccounts in it name roles.
//! - [`select`]: which pods are injected at all (labels, namespaces).
//! - [`plan`]: the pure function, a pod and its identity in, the changes
//!   out, applied to typed pods or to raw JSON alike.
//! - [`lookup`]: the ServiceAccount and the EKS Pod Identity association,
//!   asked of their APIs for the webhook, bounded and cached.
//! - [`identity`]: what is known of the role a pod should act as, and the
//!   in-pod variables that say it.
//! - [`template`]: the container, from `template/irsa-doctor.yaml`, the
//!   file `examples/k8s/` is checked against.
//!
//! Invariant: below [`webhook`], nothing but [`lookup`] touches the network
//! or reads the environment, and nothing else reads a file or a clock; only
//! `main.rs` touches standard streams.
#![forbid(unsafe_code)]

pub mod identity;
pub mod lookup;
pub mod plan;
pub mod select;
pub mod stream;
pub mod template;
pub mod webhook;

pub use identity::{Association, Identity};
pub use plan::{inject, plan, Change, Mode, Options, Outcome, Plan};
pub use select::{select, Selection};
pub use stream::{inject_stream, StreamError, StreamReport, MAX_INPUT_BYTES};
pub use template::{Template, TemplateError};

/// An error and its causes on one line, joined by `: ` (a YAML parser's
/// position, a template's reason, is in a source, not in the top message):
/// `inject`'s errors and the webhook's warnings.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
