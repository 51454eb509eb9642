//! `vsamr`: the command-line client of the VSAM redirector.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // A misspelt VSAMR_SERVER would send the command to the default
    // server.
    let environment = vsam_protocol::environment::check_program(
        &<cli::Args as clap::CommandFactory>::command(),
        "VSAMR_",
        &[cli::AUTH_TOKEN_VARIABLE],
    );
    if let Err(error) = environment {
        eprintln!("vsamr: {error}");
        return ExitCode::FAILURE;
    }
    let matches = <cli::Args as clap::CommandFactory>::command().get_matches();
    let args = match <cli::Args as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    // Told to the server (HELLO), for its operators' list of connections.
    let client = format!(
        "vsamr {} {}",
        env!("CARGO_PKG_VERSION"),
        matches.subcommand_name().unwrap_or_default()
    );
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
    match runtime.block_on(cli::run(args, client)) {
        Ok(status) => ExitCode::from(status),
        Err(error) => {
            eprintln!("vsamr: {error:#}");
            ExitCode::FAILURE
        }
    }
}
