//! `vsam-conformance PLUGIN.wasm`: runs the VSAM-semantics scenario suite
//! through vsamrd against a backend plugin and reports each scenario.

use clap::Parser;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs the VSAM-semantics scenario suite through vsamrd against a plugin.
#[derive(Parser)]
#[command(name = "vsam-conformance", version, about)]
struct Args {
    /// The plugin: a WebAssembly component (.wasm) exporting vsam:backend/store.
    plugin: PathBuf,
    /// A parameter for the plugin's init, as NAME=VALUE (repeatable).
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Grant the backend a database: `sqlite:PATH` (under a fresh data
    /// directory) or a PostgreSQL URL.
    #[arg(long)]
    database: Option<String>,
    /// Grant the backend a bucket, as the TOML inline table of a backend's
    /// `bucket` setting: '{ directory = "objects" }' (under a fresh data
    /// directory) or '{ name = "vsam", endpoint = "http://127.0.0.1:8333" }'.
    #[arg(long)]
    bucket: Option<String>,
    /// Define every dataset with a COBOL layout, to check a store's mapped
    /// (typed) representation of records.
    #[arg(long)]
    mapped: bool,
    /// Serve GETs and browses from this many extra instances of the plugin
    /// (needs --database), to check that the plugin keeps nothing in an
    /// instance that another one may change.
    #[arg(long, default_value_t = 0)]
    readers: usize,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let params: BTreeMap<String, String> = args.params.into_iter().collect();
        let grants = vsam_conformance::Grants {
            database: args.database,
            bucket: args.bucket,
            readers: args.readers,
        };
        let server =
            match vsam_conformance::start_server_for_plugin(&args.plugin, &params, &grants).await {
                Ok(server) => server,
                Err(error) => {
                    eprintln!(
                        "vsam-conformance: cannot start vsamrd with {}: {error:#}",
                        args.plugin.display()
                    );
                    return ExitCode::from(2);
                }
            };
        println!(
            "conformance of {} through vsamrd at {}",
            args.plugin.display(),
            server.address
        );
        let results =
            vsam_conformance::run_suite_with(&server.address, "CONF", "", args.mapped).await;
        let mut passed = vsam_conformance::report(&results);
        server.server.stop().await;
        // The units.whole promise, on the plugin itself.
        match vsam_conformance::check_whole_units(&args.plugin, &params, &grants).await {
            Ok(vsam_conformance::WholeUnits::Kept) => println!(
                "PASS  units.whole: writes not synced are gone after a rollback and a crash, synced ones stay"
            ),
            Ok(vsam_conformance::WholeUnits::NotClaimed) => println!(
                "PASS  units.whole is false: vsamrd opens this plugin's datasets in sync durability only"
            ),
            Err(failure) => {
                println!("FAIL  units.whole: {failure}");
                passed = false;
            }
        }
        if passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
