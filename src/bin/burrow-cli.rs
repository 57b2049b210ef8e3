//! `burrow-cli`: parse flags and hand over to [`burrow_cli::run`].

use std::process::ExitCode;

use clap::Parser;

use burrow_cli::{self as cli, CliArgs};
use burrow_proto::ErrorChain;

fn main() -> ExitCode {
    match cli::run(CliArgs::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        // The reader went away (`burrow-cli < cmds | head`): stop quietly,
        // as other Unix tools do.
        Err(cli::CliError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            // The message and each cause once.
            eprintln!("{}", ErrorChain(&e));
            ExitCode::FAILURE
        }
    }
}
