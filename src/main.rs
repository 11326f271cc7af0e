//! The `irsa-doctor` binary: parse flags, set up logging, run the command,
//! turn its outcome into an exit code. Everything else is in the library.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use irsa_doctor::config::{Cli, Command};
use irsa_doctor::report::exit;

fn main() -> ExitCode {
    // clap exits with 2 (our usage-error code) on bad flags.
    let cli = Cli::parse();
    irsa_doctor::telemetry::init(cli.log_format);
    // One thread is plenty: the check is a handful of concurrent requests.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(%e, "could not start the async runtime");
            return ExitCode::from(exit::INCONCLUSIVE);
        }
    };
    let code = match cli.command {
        Command::Check(args) => {
            runtime.block_on(irsa_doctor::app::run_check(&args, &mut std::io::stdout()))
        }
    };
    ExitCode::from(code)
}
