//! The AWS configuration loaded as any SDK in this container would load
//! it: region, endpoints and the credential chain, from the environment and
//! the shared config files that `profile` judged and read within bounds.
//!
//! The HTTPS client is handed in (`peers::traffic` builds it, bounded and
//! counted), so that loading sits below the peers that use what it loads.

use std::time::Instant;

use aws_config::Region;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::settings::profile::Loaded;

/// The region used when none is configured anywhere, as the SDKs' global
/// STS endpoint does. Reported with a `REGION_MISSING` warning.
pub const FALLBACK_REGION: &str = "us-east-1";

/// A loaded configuration, and whether its region had to be assumed.
pub struct Config {
    pub sdk: SdkConfig,
    /// Loading did not finish by the deadline (IMDS asked for the region):
    /// [`FALLBACK_REGION`] was used.
    pub region_missing: bool,
}

/// Loads the configuration with the HTTPS client `client` builds (asked
/// once a load). Loading may ask IMDS for the region; if that does not
/// finish by `deadline`, [`FALLBACK_REGION`] is used and reported as
/// missing. When `loaded` says to send nothing (an unusable CA file), only
/// the region is taken, from the environment alone: nothing is loaded that
/// could build the client.
pub async fn load(
    loaded: &Loaded,
    client: impl Fn() -> Option<SharedHttpClient>,
    deadline: Instant,
) -> Config {
    if loaded.stop_sending {
        let region = crate::settings::endpoint::REGION_VARS
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region.map(Region::new))
            .build();
        return Config {
            sdk,
            region_missing: false,
        };
    }
    let files = loaded.files.clone();
    let loader = || {
        let loader = aws_config::defaults(BehaviorVersion::latest()).profile_files(files.clone());
        match client() {
            Some(client) => loader.http_client(client),
            None => loader,
        }
    };
    match tokio::time::timeout_at(deadline.into(), loader().load()).await {
        Ok(sdk) => Config {
            sdk,
            region_missing: false,
        },
        Err(_) => Config {
            sdk: loader()
                .region(Region::from_static(FALLBACK_REGION))
                .load()
                .await,
            region_missing: true,
        },
    }
}
