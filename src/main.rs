//! The `telos` binary: parse the configuration, initialise telemetry, run.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = telos::config::Cli::parse();
    telos::telemetry::init_logging(cli.log_format);
    match telos::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("telos: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
