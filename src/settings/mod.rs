//! What the AWS SDK would read, judged before anything is sent: the
//! identity variables, the endpoint, the profile files, the proxy and the
//! CA bundle.
//!
//! Invariant: reads the environment and files only; never talks to a peer
//! (`aws` loads the configuration with the HTTPS client handed in).

pub mod aws;
pub mod ca_bundle;
pub mod endpoint;
pub mod env;
pub mod profile;
pub mod profile_chain;
pub mod proxy;
