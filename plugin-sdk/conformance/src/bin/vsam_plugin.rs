//! `vsam-plugin new NAME`: creates a backend plugin crate that builds,
//! passes the conformance kit and loads in vsamrd.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vsam_conformance::template::{SdkSource, generate};

/// Tools for writing vsamrd backend plugins.
#[derive(Parser)]
#[command(name = "vsam-plugin", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a plugin crate NAME: a durable store over files, its native
    /// conformance test and a vsamrd.toml that serves it as it is built.
    New {
        /// The crate's name (lower-case letters, digits, - and _).
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        path: Option<PathBuf>,
        /// Take the SDK and the kit from this checkout's `plugin-sdk`
        /// directory (default: the checkout this tool was built from).
        #[arg(long, conflicts_with = "sdk_version")]
        sdk_path: Option<PathBuf>,
        /// Take the SDK and the kit from the package registry, this version.
        #[arg(long)]
        sdk_version: Option<String>,
    },
}

fn main() -> ExitCode {
    let Command::New {
        name,
        path,
        sdk_path,
        sdk_version,
    } = Args::parse().command;
    let sdk = match (sdk_path, sdk_version) {
        (Some(path), _) => SdkSource::Checkout(path),
        (None, Some(version)) => SdkSource::Registry(version),
        (None, None) => SdkSource::default_for_this_build(),
    };
    let dir = path.unwrap_or_else(|| PathBuf::from(&name));
    match generate(&dir, &name, &sdk) {
        Ok(files) => {
            for file in files {
                println!("created {}", file.display());
            }
            println!(
                "next: cd {} && cargo test && cargo build --release --target wasm32-wasip2",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("vsam-plugin: {error:#}");
            ExitCode::from(2)
        }
    }
}
