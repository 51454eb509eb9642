//! The command line of the kit: `--list` names every check, `--only`
//! refuses a name that selects nothing, `--json` reports each check's
//! status, and the exit code follows the profile.

use std::process::Command;

const KIT: &str = env!("CARGO_BIN_EXE_vsam-conformance");

#[test]
fn the_list_names_every_check_and_the_profile_that_requires_it() {
    let out = Command::new(KIT).arg("--list").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for check in vsam_conformance::checks() {
        let line = text
            .lines()
            .find(|line| line.split_whitespace().next() == Some(check.id))
            .unwrap_or_else(|| panic!("{} is not listed:\n{text}", check.id));
        let profile = if check.durable_only { "durable" } else { "all" };
        assert_eq!(line.split_whitespace().nth(1), Some(profile), "{line}");
    }
}

#[test]
fn a_selection_that_names_nothing_is_refused() {
    let out = Command::new(KIT)
        .args(["any.wasm", "--only", "ksds.browse,nothing.here"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let error = String::from_utf8(out.stderr).unwrap();
    assert!(
        error.contains("--only nothing.here names no check"),
        "{error}"
    );
}

/// The in-memory plugin (vsamrd's builtin copy) in JSON: in the durable
/// profile its durability checks fail and the exit code is 1; in the
/// volatile profile they are expected failures and the exit code is 0.
#[test]
fn json_reports_each_status_and_the_exit_code_follows_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("memory.wasm");
    std::fs::write(&plugin, vsam_host::runtime::builtin::MEMORY).unwrap();
    for (profile, code, status) in [("durable", 1, "fail"), ("volatile", 0, "expected-failure")] {
        let out = Command::new(KIT)
            .arg(&plugin)
            .args(["--json", "--profile", profile])
            .args([
                "--only",
                "ksds.round-trip,durable.replaced-instance,durable.torn-write",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{profile}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["profile"], profile);
        let statuses: Vec<(&str, &str)> = report["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["id"].as_str().unwrap(), s["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            statuses,
            [
                ("ksds.round-trip", "pass"),
                ("durable.replaced-instance", status),
                ("durable.torn-write", "not-applicable"),
            ]
        );
    }
}
