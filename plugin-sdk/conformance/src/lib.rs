//! # vsam-conformance
//!
//! The VSAM-semantics scenario suite, run through a real `vsamrd` over TCP
//! against any backend plugin. A plugin that passes it gives programs the
//! exact VSAM behaviour (return codes, positions, locks, byte-exact records)
//! that the redirector promises.
//!
//! Run it on a plugin with `vsam-conformance path/to/plugin.wasm`, or from
//! Rust with [`run_suite`] against any server address.
#![warn(missing_docs)]

mod alternate;
mod check;
mod concurrent;
mod durable;
mod env;
mod faults;
mod instances;
mod kit;
mod lost_answers;
mod mirror_apply;
pub mod native;
mod ports;
mod postgres;
mod scenarios;
mod seaweedfs;
mod server;
mod subject;
pub mod template;
mod units;
mod whole_units;

pub use check::Failure;
pub use durable::{DurableScenario, durable_scenarios};
pub use kit::{Check, KitOptions, Profile, Selection, Status, checks, run_kit, to_json};
pub use mirror_apply::check_mirror_apply;
pub use ports::free_port;
pub use postgres::Postgres;
pub use scenarios::{Scenario, all};
pub use seaweedfs::SeaweedFs;
pub use server::{ServerUnderTest, start_server_for_plugin};
pub use subject::{Grants, Subject};
pub use whole_units::{WholeUnits, check_whole_units};

use std::time::{Duration, Instant};
use vsam_client::Connection;

/// The outcome of one scenario.
#[derive(Debug)]
pub struct ScenarioResult {
    /// Its short name (`ksds.browse`).
    pub id: &'static str,
    /// What it checks.
    pub name: String,
    /// `Ok` or why it failed.
    pub outcome: Result<(), Failure>,
    /// Whether the profile requires it to pass (a `volatile` store is not
    /// required to pass the durability checks).
    pub required: bool,
    /// Why it did not apply to the plugin (a storage fault in the granted
    /// directory, for a plugin that keeps no files there).
    pub not_applicable: Option<String>,
    /// How long it ran.
    pub elapsed: Duration,
}

impl ScenarioResult {
    /// Passed, failed, or failed where the profile allows it.
    pub fn status(&self) -> Status {
        match (&self.outcome, self.required) {
            (Ok(()), _) if self.not_applicable.is_some() => Status::NotApplicable,
            (Ok(()), _) => Status::Pass,
            (Err(_), true) => Status::Fail,
            (Err(_), false) => Status::ExpectedFailure,
        }
    }
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
    run_selected(address, prefix, backend, mapped, &Selection::all()).await
}

/// [`run_suite_with`], only the scenarios `selection` names. A scenario's
/// datasets are named after its place in [`all`], so that one run alone
/// uses the names it uses in the whole suite.
pub async fn run_selected(
    address: &str,
    prefix: &str,
    backend: &str,
    mapped: bool,
    selection: &Selection,
) -> Vec<ScenarioResult> {
    let mut results = Vec::new();
    for (index, scenario) in all().into_iter().enumerate() {
        if !selection.selects(scenario.id) {
            continue;
        }
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
            id: scenario.id,
            name: scenario.name.to_string(),
            outcome,
            required: true,
            not_applicable: None,
            elapsed: started.elapsed(),
        });
    }
    results
}

/// Prints one line per scenario and a summary; returns true if every
/// scenario the profile requires passed.
pub fn report(results: &[ScenarioResult]) -> bool {
    for result in results {
        match (&result.outcome, result.status()) {
            (Ok(()), Status::NotApplicable) => println!(
                "N/A    {:<34} {}",
                result.id,
                result.not_applicable.as_deref().unwrap_or_default()
            ),
            (Ok(()), _) => println!(
                "PASS   {:<34} {:>7.1} ms  {}",
                result.id,
                result.elapsed.as_secs_f64() * 1e3,
                result.name
            ),
            (Err(failure), Status::ExpectedFailure) => println!(
                "XFAIL  {:<34} not required of a volatile store: {failure}",
                result.id
            ),
            (Err(failure), _) => println!("FAIL   {:<34} {}: {failure}", result.id, result.name),
        }
    }
    let count = |status| results.iter().filter(|r| r.status() == status).count();
    let mut summary = format!(
        "{} passed, {} failed",
        count(Status::Pass),
        count(Status::Fail)
    );
    let expected = count(Status::ExpectedFailure);
    if expected > 0 {
        summary.push_str(&format!(", {expected} not required of a volatile store"));
    }
    let not_applicable = count(Status::NotApplicable);
    if not_applicable > 0 {
        summary.push_str(&format!(", {not_applicable} not applicable"));
    }
    println!("{summary}");
    count(Status::Fail) == 0
}
