//! `burrow-server`: parse flags, install logging, serve until SIGINT/SIGTERM.
//! The topology (thread per core) and everything else is
//! [`burrow_server::Server::run_threads`], which the tests run too.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use burrow_server::{Server, ServerArgs};

fn main() -> ExitCode {
    match run(ServerArgs::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One precise line (with its causes), not a backtrace.
            eprintln!("burrow-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: ServerArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    // Validate everything before binding anything.
    let config = args.resolve().context("invalid configuration")?;
    Server::run_threads(config, shutdown_signal()).context("server failed")
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}
