//! `burrow-server`: parse flags, install logging, serve until SIGINT/SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use burrow::server::{Server, ServerArgs};

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
    // Thread per core: the main runtime accepts and runs background tasks
    // (and serves connections too); `threads - 1` more single-threaded
    // runtimes each own the connections handed to them. A connection never
    // migrates, so its wake-ups never cross cores — on this kind of VM that
    // is what costs the most at low pipeline depths.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stop_workers = tokio_util::sync::CancellationToken::new();
    let mut workers = Vec::new();
    let mut worker_threads = Vec::new();
    for i in 1..config.threads {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start a worker runtime")?;
        workers.push(rt.handle().clone());
        let stop = stop_workers.clone();
        let thread = std::thread::Builder::new()
            .name(format!("burrow-worker-{i}"))
            .spawn(move || rt.block_on(stop.cancelled()))
            .context("cannot start a worker thread")?;
        worker_threads.push(thread);
    }
    let (bind, port) = (config.bind, config.port);
    // Recovery runs before binding: the port opens once the data is loaded.
    let server = runtime
        .block_on(async { tokio::task::spawn_blocking(move || Server::open(config)).await })
        .context("recovery task failed")?
        .context("cannot open the data directory")?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((bind, port))
            .await
            .with_context(|| format!("cannot listen on {bind}:{port}"))?;
        // The main runtime takes its share of connections too.
        let mut handles = vec![tokio::runtime::Handle::current()];
        handles.extend(workers);
        let handles = if handles.len() == 1 { Vec::new() } else { handles };
        server.serve_on(listener, shutdown_signal(), handles).await.context("server failed")
    });
    stop_workers.cancel();
    for t in worker_threads {
        let _ = t.join();
    }
    served
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
