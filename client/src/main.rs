//! `vsamr`: the command-line client of the VSAM redirector.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("vsamr: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(status) => ExitCode::from(status),
        Err(error) => {
            eprintln!("vsamr: {error:#}");
            ExitCode::FAILURE
        }
    }
}
