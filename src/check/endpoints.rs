//! The endpoint step: which switches chose the STS endpoint the SDK forms
//! here (FIPS, dual-stack; `AWS_USE_*_ENDPOINT` or the profile), recorded
//! before anything is sent, and what a FIPS name that does not answer
//! means.
//!
//! The endpoint itself is the SDK's own: `Sts::resolved_endpoint` runs
//! STS's endpoint rules on this configuration, and every request records
//! the URL it went to. No rule is written out here but the list of
//! regions where STS serves FIPS (`settings::endpoint::STS_FIPS_REGIONS`),
//! and that list only explains a name that did not answer: it never fails
//! a check by itself.

use super::run::{Run, Sending};
use crate::peers::failure::{Failure, FailureKind};
use crate::peers::sts::Sts;
use crate::report::Report;
use crate::settings::endpoint::{sts_fips_listed, switch_with_custom_endpoint, SWITCHES};

/// Records the switches in `report` (STS's section, and IAM's, which reads
/// the same ones). When a switch is on and STS's endpoint rules refuse to
/// form an endpoint (beside a custom endpoint; a partition without FIPS or
/// dual-stack), that is the finding and nothing is sent: the app's SDK
/// would build no request either.
pub(super) async fn record(run: &Run<'_>, sending: &mut Sending, report: &mut Report) {
    let (fips, dualstack) = run.sts.switches();
    let source = |index: usize, value: Option<bool>| {
        let (name, _, _) = SWITCHES[index];
        let from_env = run.env.settings.switch_vars.iter().any(|(n, _)| *n == name);
        value.map(|_| if from_env { name } else { "profile" }.to_owned())
    };
    report.sts.use_fips = fips == Some(true);
    report.sts.use_fips_source = source(0, fips);
    report.sts.use_dualstack = dualstack == Some(true);
    report.sts.use_dualstack_source = source(1, dualstack);
    if sending.offline || !(report.sts.use_fips || report.sts.use_dualstack) {
        return;
    }
    let Err(reason) = run.sts.resolved_endpoint().await else {
        return;
    };
    let switch = if report.sts.use_fips {
        SWITCHES[0].0
    } else {
        SWITCHES[1].0
    };
    let finding = if reason.contains("custom endpoint") {
        switch_with_custom_endpoint(switch, &reason)
    } else if reason.contains("does not support") && report.sts.use_fips {
        crate::findings::sts::fips_unavailable(&run.sts.region(), "no endpoint", &reason)
    } else {
        // Any other refusal shows again, worded, when the request is made.
        return;
    };
    report.findings.push(finding);
    sending.offline = true;
    sending.no_chain = true;
}

/// `failure` of a request to STS at `endpoint`, read knowing the switches:
/// no answer at all (DNS, connect) from STS's FIPS name in a region where
/// STS serves no FIPS endpoint is final, and says so
/// (`FailureKind::EndpointMissing`, worded `FIPS_ENDPOINT_UNAVAILABLE`),
/// instead of being retried until the deadline as a network outage. A
/// region on the list, or a FIPS name that answers, is never reported.
pub(super) fn fips_missing(sts: &Sts, endpoint: Option<&str>, failure: Failure) -> Failure {
    let fips_name = endpoint.is_some_and(|e| {
        e.trim_start_matches("https://")
            .trim_start_matches("http://")
            .starts_with("sts-fips.")
    });
    let missing = sts.switches().0 == Some(true)
        && fips_name
        && !sts_fips_listed(&sts.region())
        && failure.kind == FailureKind::Unreachable
        && !failure.timed_out;
    if missing {
        Failure {
            kind: FailureKind::EndpointMissing,
            ..failure
        }
    } else {
        failure
    }
}
