//! The report as log lines: one per finding and one for the verdict, with
//! the fields log pipelines key on (`code`, `verdict`, `duration_ms`).

use tracing::{error, info, warn};

use super::{Report, Severity, Verdict};

impl Report {
    /// One log line per finding and one for the verdict: structured
    /// fields for log pipelines, never a token or credential (the report
    /// holds none, and the log writer redacts whatever else comes).
    pub fn log(&self) {
        for f in &self.findings {
            match f.severity {
                Severity::Error => error!(
                    code = f.code.as_str(),
                    expected = f.expected.as_deref().unwrap_or(""),
                    found = f.found.as_deref().unwrap_or(""),
                    remedy = %f.remedy,
                    "{}", f.message
                ),
                Severity::Warning => {
                    warn!(code = f.code.as_str(), remedy = %f.remedy, "{}", f.message)
                }
                Severity::Info => info!(code = f.code.as_str(), "{}", f.message),
            }
        }
        let summary = self.summary();
        match self.verdict {
            Verdict::Pass => info!(
                verdict = "pass",
                duration_ms = self.duration_ms,
                "{summary}"
            ),
            v => error!(
                verdict = v.as_str(),
                duration_ms = self.duration_ms,
                "{summary}"
            ),
        }
    }
}
