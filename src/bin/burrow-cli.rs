//! `burrow-cli`: parse flags and hand over to [`burrow::cli::run`].

use std::process::ExitCode;

use clap::Parser;

use burrow::cli::{self, CliArgs};

fn main() -> ExitCode {
    match cli::run(CliArgs::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
