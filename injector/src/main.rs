//! `irsa-doctor-injector`: parses the flags, reads the input, and turns the
//! outcome into an exit code. Phase 1 has one subcommand, `inject`.

use std::io::{Read, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use irsa_doctor_injector::{inject_stream, Mode, Options, Template, MAX_INPUT_BYTES};

/// Exit codes, documented in docs/injector.md because pipelines read them.
/// 2 is clap's own for a usage error, kept so that every wrong flag exits
/// the same way.
const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;

/// Puts irsa-doctor beside every pod with an AWS identity.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add irsa-doctor to the pod templates of a manifest stream and print it
    ///
    /// The stream is YAML documents or JSON values; every document that is
    /// not a workload passes through. A ServiceAccount in the stream with
    /// eks.amazonaws.com/role-arn gives the expected role of the workloads
    /// that run as it. One line per workload on stderr says what was done.
    /// Exit codes: 0 done, 1 nothing printed (the input could not be read
    /// or parsed), 2 a usage error.
    Inject {
        /// The manifests, or - for standard input
        #[arg(
            short = 'f',
            long = "filename",
            default_value = "-",
            env = "IRSA_DOCTOR_INJECTOR_FILENAME"
        )]
        file: String,
        /// The irsa-doctor image, as your registry serves it (required: the
        /// template's own name is served by no registry)
        #[arg(long, env = "IRSA_DOCTOR_INJECTOR_IMAGE", required = true)]
        image: String,
        /// The mode of pods without the irsa-doctor.io/mode annotation
        #[arg(long, value_enum, default_value_t = Mode::Sidecar, env = "IRSA_DOCTOR_INJECTOR_MODE")]
        mode: Mode,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(message) => {
            eprintln!("irsa-doctor-injector: {message}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let Command::Inject { file, image, mode } = args.command;
    let template = Template::embedded().map_err(|e| error_chain(&e))?;
    let options = Options {
        template,
        image: Some(image),
        mode,
    };
    let input = read_bounded(&file)?;
    let (output, report) = inject_stream(&input, &options).map_err(|e| error_chain(&e))?;
    for entry in &report.entries {
        eprintln!("{}: {}", entry.workload, entry.result);
    }
    std::io::stdout()
        .lock()
        .write_all(output.as_bytes())
        .map_err(|e| format!("cannot write the output: {e}"))
}

/// Reads at most one byte past the bound, so an oversized input is refused
/// without being held in memory.
fn read_bounded(file: &str) -> Result<Vec<u8>, String> {
    let limit = MAX_INPUT_BYTES as u64 + 1;
    let mut buf = Vec::new();
    let result = if file == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut buf)
    } else {
        std::fs::File::open(file)
            .map_err(|e| format!("cannot open {file}: {e}"))?
            .take(limit)
            .read_to_end(&mut buf)
    };
    result.map_err(|e| format!("cannot read {file}: {e}"))?;
    if buf.len() > MAX_INPUT_BYTES {
        return Err(format!(
            "{file} is larger than {MAX_INPUT_BYTES} bytes; split it"
        ));
    }
    Ok(buf)
}

/// The error and its causes on one line: the YAML parser's position is in
/// the source, not in the top message.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
