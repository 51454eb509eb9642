//! # vsam-conformance
//!
//! The VSAM-semantics scenario suite, run through a real `vsamrd` over TCP
//! against any backend plugin. A plugin that passes it gives programs the
//! exact VSAM behaviour (return codes, positions, locks, byte-exact records)
//! that the redirector promises.
//!
//! Run it on a plugin with `vsam-conformance path/to/plugin.wasm`, or from
//! Rust with [`run_suite`] against any server address.

mod alternate;
mod check;
mod env;
mod postgres;
mod scenarios;
mod seaweedfs;
mod server;
mod units;
mod whole_units;

pub use check::Failure;
pub use postgres::Postgres;
pub use scenarios::{Scenario, all};
pub use seaweedfs::SeaweedFs;
pub use server::{Grants, ServerUnderTest, start_server_for_plugin};
pub use whole_units::{WholeUnits, check_whole_units};

use std::time::{Duration, Instant};
use vsam_client::Connection;

/// The outcome of one scenario.
#[derive(Debug)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: &'static str,
    /// `Ok` or why it failed.
    pub outcome: Result<(), Failure>,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Runs every scenario against the server at `address`, each on datasets
/// named under `prefix` (e.g. `CONF`), with the given backend (or the
/// server's routing when empty).
pub async fn run_suite(address: &str, prefix: &str, backend: &str) -> Vec<ScenarioResult> {
    run_suite_with(address, prefix, backend, false).await
}

/// [`run_suite`], with `mapped` datasets: each scenario's datasets are
/// defined in code page `ascii` with a COBOL layout (the key as one PIC X
/// field, the rest of the record as another), so that stores with a typed
/// representation of records are checked through it.
pub async fn run_suite_with(
    address: &str,
    prefix: &str,
    backend: &str,
    mapped: bool,
) -> Vec<ScenarioResult> {
    let mut results = Vec::new();
    for (index, scenario) in all().into_iter().enumerate() {
        let started = Instant::now();
        let outcome = async {
            let env = scenarios::Env {
                first: Connection::connect(address).await.map_err(Failure::from)?,
                second: Connection::connect(address).await.map_err(Failure::from)?,
                address: address.to_string(),
                prefix: format!("{prefix}.S{index:02}"),
                backend: backend.to_string(),
                mapped,
            };
            (scenario.run)(env).await
        }
        .await;
        results.push(ScenarioResult {
            name: scenario.name,
            outcome,
            elapsed: started.elapsed(),
        });
    }
    results
}

/// Prints one line per scenario and a summary; returns true if all passed.
pub fn report(results: &[ScenarioResult]) -> bool {
    for result in results {
        match &result.outcome {
            Ok(()) => println!(
                "PASS  {:<40} {:>6.1} ms",
                result.name,
                result.elapsed.as_secs_f64() * 1e3
            ),
            Err(failure) => println!("FAIL  {:<40} {failure}", result.name),
        }
    }
    let passed = results.iter().filter(|r| r.outcome.is_ok()).count();
    println!("{} passed, {} failed", passed, results.len() - passed);
    passed == results.len()
}
