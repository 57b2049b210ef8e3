//! `burrow-server`: parse flags, install logging, serve until SIGINT/SIGTERM.
//! The topology (thread per core) and everything else is
//! [`burrow_server::Server::run_threads`], which the tests run too.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use burrow_server::{LogFormat, Server, ServerArgs};

fn main() -> ExitCode {
    match run(ServerArgs::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One precise line, each cause once (`{:#}`), not a backtrace.
            eprintln!("burrow-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: ServerArgs) -> anyhow::Result<()> {
    // Validate everything before binding anything; the log format is a
    // setting too, so a bad setting is reported before logging starts.
    let config = args.resolve().context("invalid configuration")?;
    init_logging(config.log_format);
    #[cfg(unix)]
    survive_sighup();
    Server::run_threads(config, shutdown_signal()).context("server failed")
}

/// From here on SIGHUP no longer stops the process, even while the data
/// loads (before [`shutdown_signal`] listens for it and logs it): tokio
/// installs a process-wide handler on the first registration of a signal
/// and never removes it, whichever runtime that was on.
#[cfg(unix)]
fn survive_sighup() {
    use tokio::signal::unix::{signal, SignalKind};
    let registered = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .and_then(|rt| rt.block_on(async { signal(SignalKind::hangup()).map(drop) }));
    if let Err(e) = registered {
        tracing::warn!(error = %e, "cannot catch SIGHUP; it will stop the server");
    }
}

/// Logs to stderr at `RUST_LOG` (default `info`). Text is coloured only on
/// a terminal (and never with `NO_COLOR` set), so a log file holds no
/// escape codes; JSON is one object per line.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            logs.with_ansi(std::io::stderr().is_terminal() && !no_color).init()
        }
        LogFormat::Json => logs.json().init(),
    }
}

/// Resolves on the first SIGINT or SIGTERM. SIGHUP (the terminal went
/// away) is logged and otherwise ignored, as Redis does: its default action
/// would kill the server without a shutdown snapshot.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let (term, hup) = {
        use tokio::signal::unix::{signal, SignalKind};
        let term = async {
            match signal(SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        let hup = async {
            match signal(SignalKind::hangup()) {
                Ok(mut s) => loop {
                    s.recv().await;
                    tracing::info!("SIGHUP received; ignored (SIGTERM or SIGINT stops the server)");
                },
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGHUP");
                    std::future::pending::<()>().await;
                }
            }
        };
        (term, hup)
    };
    #[cfg(not(unix))]
    let (term, hup) = (std::future::pending::<()>(), std::future::pending::<()>());
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
        _ = hup => {}
    }
}
