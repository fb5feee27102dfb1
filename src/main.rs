//! The `sluice` binary: parse the command line, load the config, start logging and the
//! runtime, run the server until SIGTERM / SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use sluice::config::{Config, EMBEDDED_DEFAULT};
use sluice::workers::Workers;

/// A MySQL connection-pooling and multiplexing proxy.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Configuration file (TOML). Without it, the embedded default (config/local.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate a configuration file and exit.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    check_config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(path) = cli.check_config {
        return match Config::load(&path).and_then(|c| sluice::check(&c)) {
            Ok(()) => {
                println!("{}: ok", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                ExitCode::FAILURE
            }
        };
    }
    let config = match &cli.config {
        Some(path) => Config::load(path),
        None => Config::parse(EMBEDDED_DEFAULT),
    };
    let config = match config {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("sluice: {e}");
            return ExitCode::FAILURE;
        }
    };
    sluice::telemetry::init(&config.log.level);
    // Thread per core: one session worker per core (see src/workers.rs), beside the main
    // runtime, which accepts, serves the admin endpoint, runs the pool's upkeep and the
    // timers of every session; it is idle but for those.
    let threads = config.server.worker_threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let started = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|rt| {
            let workers = Workers::start(rt.handle().clone(), threads)?;
            Ok((rt, Arc::new(workers)))
        });
    let (runtime, workers) = match started {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match sluice::server::Server::bind(config).await {
            Ok(server) => {
                server
                    .with_workers(workers.clone())
                    .run(sluice::server::shutdown_signal())
                    .await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                ExitCode::FAILURE
            }
        }
    });
    workers.stop();
    code
}
