//! `vsam-conformance PLUGIN.wasm`: runs the VSAM-semantics scenarios and
//! the durability checks through vsamrd against a backend plugin and
//! reports each one, as text or JSON.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use vsam_conformance::{KitOptions, Profile, Selection, Subject};

/// Runs the VSAM-semantics scenarios and the durability checks through
/// vsamrd against a plugin.
#[derive(Parser)]
#[command(name = "vsam-conformance", version, about)]
struct Args {
    /// The plugin: a WebAssembly component (.wasm) exporting vsam:backend/store.
    #[arg(required_unless_present = "list")]
    plugin: Option<PathBuf>,
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
    /// What the plugin promises: `durable` (records live in storage and
    /// survive a new instance and a restart) or `volatile` (records live in
    /// the instance's memory: the durability checks may fail).
    #[arg(long, value_enum, default_value_t = Profile::Durable)]
    profile: Profile,
    /// Run only these checks: ids or their leading parts, comma-separated
    /// or repeated (`--only ksds.browse,durable`). `--list` shows them.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// List the checks (id, which profile requires them, what they check)
    /// and exit.
    #[arg(long)]
    list: bool,
    /// Print the report as one JSON document (for CI) instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))
}

fn list() {
    for check in vsam_conformance::checks() {
        let profile = if check.durable_only { "durable" } else { "all" };
        println!("{:<34} {:<8} {}", check.id, profile, check.name);
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        list();
        return ExitCode::SUCCESS;
    }
    let Some(plugin) = args.plugin else {
        unreachable!("clap requires the plugin unless --list is given");
    };
    let selection = Selection::only(args.only);
    let unmatched = selection.unmatched();
    if !unmatched.is_empty() {
        eprintln!(
            "vsam-conformance: --only {} names no check; `vsam-conformance --list` shows them",
            unmatched.join(",")
        );
        return ExitCode::from(2);
    }
    let mut subject = Subject::new(
        &plugin,
        vsam_conformance::Grants {
            database: args.database,
            bucket: args.bucket,
            readers: args.readers,
        },
    );
    subject.params = args.params.into_iter().collect();
    let options = KitOptions {
        profile: args.profile,
        selection,
        mapped: args.mapped,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let shown = subject.plugin.display().to_string();
    let results = match runtime.block_on(vsam_conformance::run_kit(&subject, &options)) {
        Ok(results) => results,
        Err(error) => {
            eprintln!("vsam-conformance: cannot start vsamrd with {shown}: {error:#}");
            return ExitCode::from(2);
        }
    };
    let passed = if args.json {
        println!(
            "{}",
            vsam_conformance::to_json(&shown, args.profile, &results)
        );
        results
            .iter()
            .all(|r| r.status() != vsam_conformance::Status::Fail)
    } else {
        println!(
            "conformance of {shown} through vsamrd, profile {}",
            args.profile.name()
        );
        vsam_conformance::report(&results)
    };
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
