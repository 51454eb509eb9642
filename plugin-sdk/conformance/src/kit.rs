//! The whole kit on one plugin: which checks there are, which a run
//! selects, what its profile requires, and the report as JSON for CI.

use crate::durable::durable_scenarios;
use crate::mirror_apply::check_mirror_apply;
use crate::server::{BACKEND, ServerUnderTest};
use crate::subject::Subject;
use crate::whole_units::{WholeUnits, check_whole_units};
use crate::{ScenarioResult, all, run_selected};
use std::time::Instant;

/// What a plugin promises about its storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Records live in storage: synced writes survive a new instance and a
    /// restart (every shipped storage plugin).
    Durable,
    /// Records live in the instance's memory (a cache, a test double): the
    /// durability checks run and report, but may fail.
    Volatile,
}

impl Profile {
    /// Its name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Durable => "durable",
            Profile::Volatile => "volatile",
        }
    }
}

/// Which checks a run makes: all, or those named by id or by a prefix of
/// dotted parts (`ksds` selects `ksds.browse`, not `ksdsx.a`).
#[derive(Clone, Debug, Default)]
pub struct Selection(Vec<String>);

impl Selection {
    /// Every check.
    pub fn all() -> Self {
        Self(Vec::new())
    }

    /// The checks named by `patterns` (every check if there are none).
    pub fn only(patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self(patterns.into_iter().map(Into::into).collect())
    }

    /// Whether the check `id` runs.
    pub fn selects(&self, id: &str) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|pattern| {
                let pattern = pattern.trim_end_matches('.');
                id == pattern
                    || id
                        .strip_prefix(pattern)
                        .is_some_and(|rest| rest.starts_with('.'))
            })
    }

    /// The patterns that select no check: a typing error the run reports
    /// rather than passing with nothing checked.
    pub fn unmatched(&self) -> Vec<&str> {
        let ids: Vec<&str> = checks().iter().map(|check| check.id).collect();
        self.0
            .iter()
            .filter(|pattern| {
                !ids.iter()
                    .any(|id| Self::only([pattern.as_str()]).selects(id))
            })
            .map(String::as_str)
            .collect()
    }
}

/// One check of the kit, for `--list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Its short name.
    pub id: &'static str,
    /// What it checks.
    pub name: &'static str,
    /// Whether only a `durable` store must pass it.
    pub durable_only: bool,
}

/// The id of the `units.whole` check.
const WHOLE_UNITS: &str = "units.whole";

/// The id of the `mirror.apply` check.
const MIRROR_APPLY: &str = "mirror.apply";

/// Every check the kit makes, in the order it runs them.
pub fn checks() -> Vec<Check> {
    let semantics = all().into_iter().map(|scenario| Check {
        id: scenario.id,
        name: scenario.name,
        durable_only: false,
    });
    let durable = durable_scenarios().into_iter().map(|scenario| Check {
        id: scenario.id,
        name: scenario.name,
        durable_only: true,
    });
    semantics
        .chain(durable)
        .chain(std::iter::once(Check {
            id: WHOLE_UNITS,
            name: "writes not synced are gone after a rollback and a crash, synced ones stay",
            durable_only: false,
        }))
        .chain(std::iter::once(Check {
            id: MIRROR_APPLY,
            name: MIRROR_APPLY_NAME,
            durable_only: false,
        }))
        .collect()
}

/// What the `mirror.apply` check checks.
const MIRROR_APPLY_NAME: &str =
    "a mirror's batch replaces, inserts and erases whatever is stored, and again ends the same";

/// How the kit runs on a plugin.
#[derive(Clone, Debug)]
pub struct KitOptions {
    /// What the plugin promises.
    pub profile: Profile,
    /// Which checks run.
    pub selection: Selection,
    /// Define the scenarios' datasets with a COBOL layout.
    pub mapped: bool,
}

/// Runs the selected checks on `subject`: the VSAM scenarios through one
/// vsamrd, then each durability check with the servers and instances it
/// makes, then `units.whole` and `mirror.apply` on the plugin itself.
pub async fn run_kit(
    subject: &Subject,
    options: &KitOptions,
) -> anyhow::Result<Vec<ScenarioResult>> {
    // The component is compiled once for the run, not by every check.
    let compiled = tempfile::tempdir()?;
    let subject = &Subject {
        compiled: Some(compiled.path().to_path_buf()),
        ..subject.clone()
    };
    let mut results = Vec::new();
    let selection = &options.selection;
    if all().iter().any(|scenario| selection.selects(scenario.id)) {
        let server = ServerUnderTest::start(subject).await?;
        results.extend(
            run_selected(&server.address, "CONF", BACKEND, options.mapped, selection).await,
        );
        server.server.stop().await;
    }
    for scenario in durable_scenarios() {
        if !selection.selects(scenario.id) {
            continue;
        }
        let started = Instant::now();
        let (outcome, not_applicable) = match (scenario.run)(subject.clone()).await {
            Ok(why) => (Ok(()), why),
            Err(failure) => (Err(failure), None),
        };
        results.push(ScenarioResult {
            id: scenario.id,
            name: scenario.name.to_string(),
            outcome,
            required: options.profile == Profile::Durable,
            not_applicable,
            elapsed: started.elapsed(),
        });
    }
    if selection.selects(WHOLE_UNITS) {
        let started = Instant::now();
        let found = check_whole_units(subject).await;
        results.push(ScenarioResult {
            id: WHOLE_UNITS,
            name: match found {
                Ok(WholeUnits::NotClaimed) => {
                    "units.whole is false: vsamrd opens this plugin's datasets in sync durability only"
                }
                _ => "writes not synced are gone after a rollback and a crash, synced ones stay",
            }
            .to_string(),
            outcome: found.map(drop),
            required: true,
            not_applicable: None,
            elapsed: started.elapsed(),
        });
    }
    if selection.selects(MIRROR_APPLY) {
        let started = Instant::now();
        results.push(ScenarioResult {
            id: MIRROR_APPLY,
            name: MIRROR_APPLY_NAME.to_string(),
            outcome: check_mirror_apply(subject).await,
            required: true,
            not_applicable: None,
            elapsed: started.elapsed(),
        });
    }
    Ok(results)
}

/// How one check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It passed.
    Pass,
    /// It failed, and the profile requires it.
    Fail,
    /// It failed, and the profile does not require it.
    ExpectedFailure,
    /// It does not apply to the plugin (it says why).
    NotApplicable,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::ExpectedFailure => "expected-failure",
            Status::NotApplicable => "not-applicable",
        }
    }
}

/// The report as one JSON document, for CI: the plugin, the profile, the
/// counts and every check with its status, message and time.
pub fn to_json(plugin: &str, profile: Profile, results: &[ScenarioResult]) -> String {
    let count = |status| results.iter().filter(|r| r.status() == status).count();
    let scenarios: Vec<serde_json::Value> = results
        .iter()
        .map(|result| {
            serde_json::json!({
                "id": result.id,
                "name": result.name,
                "status": result.status().name(),
                "message": match &result.outcome {
                    Err(failure) => Some(failure.0.clone()),
                    Ok(()) => result.not_applicable.clone(),
                },
                "milliseconds": (result.elapsed.as_secs_f64() * 1e4).round() / 10.0,
            })
        })
        .collect();
    serde_json::json!({
        "plugin": plugin,
        "profile": profile.name(),
        "passed": count(Status::Pass),
        "failed": count(Status::Fail),
        "expected_failures": count(Status::ExpectedFailure),
        "not_applicable": count(Status::NotApplicable),
        "scenarios": scenarios,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Failure;
    use std::time::Duration;

    #[test]
    fn a_selection_takes_ids_and_their_leading_parts() {
        let only = Selection::only(["ksds.browse", "durable", "units."]);
        assert!(only.selects("ksds.browse"));
        assert!(!only.selects("ksds.browse-while-writing"));
        assert!(!only.selects("ksds.erase"));
        assert!(only.selects("durable.restart"));
        assert!(only.selects("units.whole"));
        assert!(!only.selects("durablex.a"));
        assert!(Selection::all().selects("anything"));
        assert_eq!(
            Selection::only(["ksds", "ksd", "durable.nothing"]).unmatched(),
            ["ksd", "durable.nothing"]
        );
    }

    #[test]
    fn every_check_has_its_own_id() {
        let checks = checks();
        let mut ids: Vec<&str> = checks.iter().map(|check| check.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), checks.len());
        assert!(checks.iter().any(|check| check.durable_only));
    }

    #[test]
    fn the_json_report_counts_each_status() {
        let result = |id, outcome, required| ScenarioResult {
            id,
            name: format!("{id} checks"),
            outcome,
            required,
            not_applicable: None,
            elapsed: Duration::from_micros(1500),
        };
        let results = [
            result("a.pass", Ok(()), true),
            result("b.fail", Err(Failure("lost \"K1\"".into())), true),
            result("c.allowed", Err(Failure("gone".into())), false),
        ];
        let json: serde_json::Value =
            serde_json::from_str(&to_json("p.wasm", Profile::Volatile, &results)).unwrap();
        assert_eq!(json["profile"], "volatile");
        assert_eq!(
            (&json["passed"], &json["failed"], &json["expected_failures"]),
            (&1.into(), &1.into(), &1.into())
        );
        let statuses: Vec<&str> = json["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["pass", "fail", "expected-failure"]);
        assert_eq!(json["scenarios"][1]["message"], "lost \"K1\"");
        assert_eq!(json["scenarios"][0]["milliseconds"], 1.5);
    }
}
