//! `vsamfh-map`, the dry run of the mapping: for a program's source, where
//! each of its files would go with the environment given, without
//! connecting to vsamrd; a rule that makes no valid dataset name is
//! refused with exit code 1.

use std::path::Path;
use std::process::Command;

fn dry_run(vars: &[(&str, &str)]) -> (i32, String) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cobol/rulemap.cbl");
    let mut command = Command::new(env!("CARGO_BIN_EXE_vsamfh-map"));
    command.arg(&source).args(["--assign", "LOCALONLY"]);
    for key in [
        "VSAMFH_CONFIG",
        "VSAMFH_MAP",
        "COB_FILE_PATH",
        "APPDIR",
        "DD_CUSTFILE",
    ] {
        command.env_remove(key);
    }
    command.envs(vars.iter().copied());
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).to_string(),
    )
}

#[test]
fn a_programs_files_are_shown_where_they_would_go() {
    let (code, out) = dry_run(&[
        ("APPDIR", "/srv/app"),
        ("DD_CUSTFILE", "/srv/master/cust-master.dat"),
        (
            "VSAMFH_MAP",
            "data/*.dat=RULE.{stem}; path:**/app/*.dat=RULE.{stem}; path:**/master/*.dat=RULE.MASTER",
        ),
        ("VSAMFH_DEFINE", "1"),
    ]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "file data/cust.dat (data/cust.dat): dataset RULE.CUST by the map rule assign = \"data/*.dat\" -> \"RULE.{stem}\", defined if missing",
            "file $APPDIR/orders.dat (/srv/app/orders.dat): dataset RULE.ORDERS by the map rule path = \"**/app/*.dat\" -> \"RULE.{stem}\", defined if missing",
            "file CUSTFILE (/srv/master/cust-master.dat): dataset RULE.MASTER by the map rule path = \"**/master/*.dat\" -> \"RULE.MASTER\", defined if missing",
            "file LOCALONLY: not mapped, GnuCOBOL's own handler opens LOCALONLY",
        ]
    );
}

#[test]
fn a_rule_that_makes_no_dataset_name_is_refused() {
    let (code, out) = dry_run(&[("VSAMFH_MAP", "data/*.dat=RULE.{stem}-MASTER")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("file data/cust.dat: refused")
            && out.contains("\"CUST-MASTER\"")
            && out.contains("VSAMFH_FILE_DATA_CUST_DAT"),
        "{out}"
    );
}

#[test]
fn two_files_on_one_dataset_are_named() {
    let (code, out) = dry_run(&[("VSAMFH_MAP", "**=ONE.FILE")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("dataset ONE.FILE: 4 files land on it")
            && out.contains("data/cust.dat, $APPDIR/orders.dat, CUSTFILE, LOCALONLY"),
        "{out}"
    );
}
