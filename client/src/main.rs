//! `vsamr`: the command-line client of the VSAM redirector.

mod cli;

use clap::Parser;
use std::process::ExitCode;

/// Refuses a `VSAMR_` variable vsamr does not read: a misspelt
/// `VSAMR_SERVER` would send the command to the default server.
fn check_environment() -> Result<(), String> {
    fn names(command: &clap::Command) -> Vec<String> {
        command
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|name| name.to_string_lossy().into_owned())
            .chain(command.get_subcommands().flat_map(names))
            .collect()
    }
    let mut known = names(&<cli::Args as clap::CommandFactory>::command());
    known.push(cli::AUTH_TOKEN_VARIABLE.to_string());
    known.sort();
    known.dedup();
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let present: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    vsam_protocol::environment::check(
        "vsamr",
        "VSAMR_",
        &known,
        &[],
        present.iter().map(String::as_str),
    )
}

fn main() -> ExitCode {
    if let Err(error) = check_environment() {
        eprintln!("vsamr: {error}");
        return ExitCode::FAILURE;
    }
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
