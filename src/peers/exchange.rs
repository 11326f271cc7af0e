//! What an SDK call showed besides its result, read by interceptors on
//! the SDK's own request: the URL it went to and STS's `Date`
//! ([`RecordExchange`], for STS and IAM), or only the URL the SDK resolved,
//! with the call stopped before it is signed or sent
//! ([`StopBeforeSigning`]). Moved out of `sts.rs`, which had reached the
//! 800-line rule, when the endpoint's dry resolution joined it.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;

/// What one exchange with STS showed besides its result: the URL of the
/// request, and when the answer came with the `Date` STS put on it.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    pub endpoint: Option<String>,
    pub received_at: Option<SystemTime>,
    pub date: Option<i64>,
}

impl Exchange {
    /// STS's clock minus ours, by the `Date` header.
    pub fn date_offset(&self) -> Option<i64> {
        Some(self.date? - crate::time::unix_secs_rounded(self.received_at?))
    }
}

/// Records an [`Exchange`], so the report can name the endpoint the SDK
/// actually used and the clock can be compared with STS's.
#[derive(Debug, Clone, Default)]
pub struct RecordExchange(Arc<Mutex<Exchange>>);

impl RecordExchange {
    pub fn get(&self) -> Exchange {
        self.0.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// The URL the last request went to, as shown in reports.
    pub fn endpoint(&self) -> Option<String> {
        self.get()
            .endpoint
            .map(|e| crate::settings::endpoint::shown(&e))
    }
}

impl Intercept for RecordExchange {
    fn name(&self) -> &'static str {
        "RecordExchange"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The query string of a POST is empty; the URI carries no secret.
        if let Ok(mut slot) = self.0.lock() {
            slot.endpoint = Some(context.request().uri().to_owned());
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let date = context
            .response()
            .headers()
            .get("date")
            .and_then(|d| DateTime::from_str(d, Format::HttpDate).ok())
            .map(|d| d.secs());
        if let Ok(mut slot) = self.0.lock() {
            slot.received_at = Some(SystemTime::now());
            slot.date = date;
        }
        Ok(())
    }
}

/// Records the URL the SDK resolved for a call, then stops the call
/// before it is signed: nothing is sent, and no credentials are needed,
/// since the orchestrator resolves the endpoint (with the same rules,
/// switches and custom URLs as a real call) before it signs.
#[derive(Debug, Clone, Default)]
pub struct StopBeforeSigning(Arc<Mutex<Option<String>>>);

/// The error the stopped call fails with; never shown.
const STOPPED: &str = "stopped before signing: the endpoint was only resolved";

impl StopBeforeSigning {
    /// The URL the SDK resolved, as shown in reports, if it got that far.
    pub fn resolved(&self) -> Option<String> {
        self.0
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .map(|e| crate::settings::endpoint::shown(&e))
    }
}

impl Intercept for StopBeforeSigning {
    fn name(&self) -> &'static str {
        "StopBeforeSigning"
    }

    fn read_before_signing(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(context.request().uri().to_owned());
        }
        Err(STOPPED.into())
    }
}
