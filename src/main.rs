//! The `irsa-doctor` binary. Flag parsing, logging setup and the mapping
//! of outcome to exit code live in `irsa_doctor::main`, which the demo
//! runs too.

#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    irsa_doctor::main(std::env::args_os())
}
