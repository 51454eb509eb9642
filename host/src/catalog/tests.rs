use super::*;
use vsam_plugin_sdk::codepage::CodePage;
use vsam_protocol::Organization;

#[test]
fn a_catalog_is_made_at_the_first_start_and_its_loss_noticed_later() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("vsamrd.lock");
    // Other files of the operator's are no sign of earlier use.
    std::fs::write(dir.path().join("client.token"), "x").unwrap();
    Catalog::ensure_present(dir.path(), None).unwrap();
    assert!(Catalog::open(dir.path(), &[]).unwrap().list("").is_empty());
    std::fs::write(&lock, "").unwrap();
    Catalog::ensure_present(dir.path(), Some(&lock)).unwrap();
    std::fs::remove_file(dir.path().join("catalog.json")).unwrap();
    let refused = Catalog::ensure_present(dir.path(), Some(&lock))
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("is missing, but vsamrd has run on this data dir before"),
        "{refused}"
    );
    assert!(!dir.path().join("catalog.json").exists());
}

#[test]
fn patterns_follow_idcams_rules() {
    assert!(matches("PROD.CUST.*", "PROD.CUST.MASTER"));
    assert!(!matches("PROD.CUST.*", "PROD.CUST.A.B"));
    assert!(matches("PROD.**", "PROD.CUST.A.B"));
    assert!(matches("**", "A"));
    assert!(matches("P%OD.X", "PROD.X"));
    assert!(!matches("P%OD.X", "PRROD.X"));
    assert!(matches("*.CUST", "PROD.CUST"));
    assert!(!matches("*", "A.B"));
}

#[test]
fn routing_takes_the_first_match_then_the_default() {
    let rules = vec![
        ("PROD.**".to_string(), "pg".to_string()),
        ("**".to_string(), "csv".to_string()),
    ];
    assert_eq!(route("PROD.A", &rules, None).as_deref(), Some("pg"));
    assert_eq!(route("TEST.A", &rules, None).as_deref(), Some("csv"));
    assert_eq!(route("X", &[], Some("mem")).as_deref(), Some("mem"));
    assert_eq!(route("X", &[], None), None);
}

fn ksds(name: &str) -> DatasetDef {
    DatasetDef {
        name: name.into(),
        organization: Organization::Ksds,
        key_offset: 0,
        key_length: 8,
        min_record: 1,
        max_record: 80,
        codepage: CodePage::Cp037,
        backend: "csv".into(),
        layout: None,
        relation: None,
    }
}

#[test]
fn layouts_are_checked_against_the_definition() {
    let layout = "01 R.\n 05 K PIC X(8).\n 05 AMT PIC S9(5) COMP-3.\n";
    let def = DatasetDef {
        layout: Some(layout.into()),
        ..ksds("A")
    };
    assert!(def.validate().is_ok());
    let long = DatasetDef {
        layout: Some("01 R.\n 05 K PIC X(81).\n".into()),
        ..ksds("A")
    };
    assert!(
        long.validate()
            .unwrap_err()
            .contains("81 bytes, more than the record size 80")
    );
    let short = DatasetDef {
        layout: Some("01 R.\n 05 K PIC X(4).\n".into()),
        ..ksds("A")
    };
    assert!(
        short
            .validate()
            .unwrap_err()
            .contains("ends before the key")
    );
    let bad = DatasetDef {
        layout: Some("01 R.\n 05 K PIC X(8) GLOBAL.\n".into()),
        ..ksds("A")
    };
    assert!(
        bad.validate()
            .unwrap_err()
            .contains("layout copybook line 2: clause GLOBAL")
    );
}

#[test]
fn attributes_are_checked_together() {
    assert!(ksds("A").validate().is_ok());
    assert!(
        DatasetDef {
            key_offset: 75,
            ..ksds("A")
        }
        .validate()
        .unwrap_err()
        .contains("ends past")
    );
    assert!(
        DatasetDef {
            key_length: 0,
            ..ksds("A")
        }
        .validate()
        .is_err()
    );
    let rrds = DatasetDef {
        organization: Organization::Rrds,
        key_length: 0,
        ..ksds("A")
    };
    assert!(rrds.validate().unwrap_err().contains("fixed-length"));
    assert!(
        DatasetDef {
            min_record: 80,
            ..rrds
        }
        .validate()
        .is_ok()
    );
}

/// The data dir's catalog files: the snapshot's size and the
/// journal's.
fn sizes(dir: &Path) -> (u64, u64) {
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
    (size("catalog.json"), size("catalog.journal"))
}

#[test]
fn changes_go_to_the_journal_and_a_snapshot_is_written_once_it_is_as_large() {
    let dir = tempfile::tempdir().unwrap();
    Catalog::ensure_present(dir.path(), None).unwrap();
    let catalog = Catalog::open(dir.path(), &[ksds("CONF.DS")]).unwrap();
    // A DEFINE appends its line; the snapshot is not written.
    let (snapshot, _) = sizes(dir.path());
    assert!(catalog.insert(ksds("RUN.A0000")).unwrap());
    let (unchanged, journal) = sizes(dir.path());
    assert_eq!(unchanged, snapshot);
    assert!(
        journal > 0 && journal < 1000,
        "{journal} bytes for one DEFINE"
    );
    // Defines, removes, a rename and moves, past a snapshot.
    for n in 1..8000 {
        assert!(catalog.insert(ksds(&format!("RUN.A{n:04}"))).unwrap());
    }
    for n in (0..8000).step_by(7) {
        catalog.remove(&format!("RUN.A{n:04}")).unwrap();
    }
    assert!(
        catalog
            .rename("RUN.A0001", ksds("RUN.RENAMED"), vec![])
            .unwrap()
    );
    catalog.set_backend("RUN.A0002", "sqlite").unwrap();
    catalog.set_backend("CONF.DS", "sqlite").unwrap();
    let (snapshot, journal) = sizes(dir.path());
    assert!(
        snapshot > 500_000,
        "no snapshot was written: {snapshot} bytes"
    );
    assert!(journal < 1 << 20, "the journal kept {journal} bytes");
    let names = |catalog: &Catalog| -> Vec<(String, String)> {
        catalog
            .list("**")
            .into_iter()
            .map(|def| (def.name, def.backend))
            .collect()
    };
    let reopened = Catalog::open(dir.path(), &[ksds("CONF.DS")]).unwrap();
    assert_eq!(names(&reopened), names(&catalog));
    assert_eq!(reopened.get("RUN.A0002").unwrap().0.backend, "sqlite");
    assert_eq!(reopened.get("CONF.DS").unwrap().0.backend, "sqlite");
    assert!(reopened.get("RUN.A0001").is_none() && reopened.get("RUN.A0007").is_none());
    // A stop between a snapshot and emptying the journal: its steps,
    // replayed over the snapshot that holds them, change nothing.
    let journal = std::fs::read(dir.path().join("catalog.journal")).unwrap();
    drop(reopened);
    let again = Catalog::open(dir.path(), &[ksds("CONF.DS")]).unwrap();
    again
        .write_snapshot(&again.entries.lock().unwrap(), &again.moved.lock().unwrap())
        .unwrap();
    std::fs::write(dir.path().join("catalog.journal"), &journal).unwrap();
    let replayed = Catalog::open(dir.path(), &[ksds("CONF.DS")]).unwrap();
    assert_eq!(names(&replayed), names(&catalog));
}

#[test]
fn a_change_a_stop_left_half_written_is_cut_off_and_a_damaged_one_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), &[]).unwrap();
    assert!(catalog.insert(ksds("RUN.ONE")).unwrap());
    drop(catalog);
    let path = dir.path().join("catalog.journal");
    let whole = std::fs::read(&path).unwrap();
    let mut torn = whole.clone();
    torn.extend_from_slice(b"[{\"put\":{\"name\":\"RUN.TWO\"");
    std::fs::write(&path, &torn).unwrap();
    let reopened = Catalog::open(dir.path(), &[]).unwrap();
    assert!(reopened.get("RUN.ONE").is_some());
    assert!(reopened.get("RUN.TWO").is_none());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        whole,
        "the torn change is cut off"
    );
    assert!(reopened.insert(ksds("RUN.THREE")).unwrap());
    drop(reopened);
    assert!(
        Catalog::open(dir.path(), &[])
            .unwrap()
            .get("RUN.THREE")
            .is_some()
    );
    // A line damaged before others: the catalog does not open.
    let mut damaged = b"[{\"put\":0}]\n".to_vec();
    damaged.extend_from_slice(&std::fs::read(&path).unwrap());
    std::fs::write(&path, &damaged).unwrap();
    let error = Catalog::open(dir.path(), &[]).err().unwrap().to_string();
    assert!(
        error.contains("catalog journal") && error.contains("damaged at line 1"),
        "{error}"
    );
}

#[test]
fn defined_datasets_persist_and_config_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), &[ksds("CONF.DS")]).unwrap();
    assert!(catalog.insert(ksds("RUN.DS")).unwrap());
    assert!(!catalog.insert(ksds("RUN.DS")).unwrap());
    let reopened = Catalog::open(dir.path(), &[]).unwrap();
    assert_eq!(reopened.get("RUN.DS").unwrap().1, Origin::Defined);
    assert!(reopened.get("CONF.DS").is_none());
    reopened.remove("RUN.DS").unwrap();
    let with_layout = DatasetDef {
        layout: Some("01 R.\n 05 K PIC X(8).\n".into()),
        ..ksds("LAY.DS")
    };
    assert!(reopened.insert(with_layout.clone()).unwrap());
    let again = Catalog::open(dir.path(), &[]).unwrap();
    assert_eq!(
        again.get("LAY.DS").unwrap().0,
        with_layout,
        "the layout survives a restart"
    );
    again.remove("LAY.DS").unwrap();
    assert!(
        Catalog::open(dir.path(), &[])
            .unwrap()
            .list("**")
            .is_empty()
    );
}

/// A page of a listing: the matches after a name, in name order, from the
/// pattern's literal prefix on, for as long as the visitor wants them.
#[test]
fn a_listing_visits_the_matches_after_a_name_in_order() {
    let dir = tempfile::tempdir().unwrap();
    Catalog::ensure_present(dir.path(), None).unwrap();
    let names = [
        "A.CUST",
        "PROD.A",
        "PROD.B.X",
        "PROD.C",
        "PRODX.A",
        "TEST.CUST",
        "Z.CUST",
    ];
    let configured: Vec<DatasetDef> = names.iter().map(|name| ksds(name)).collect();
    let catalog = Catalog::open(dir.path(), &configured).unwrap();
    // Whether the lock is let go after every name, every two, or never in
    // a catalog this small, the same names are visited.
    let visit = |pattern: &str, after: &str, most: usize| {
        let mut answers = [1, 2, VISITS_PER_LOCK].map(|per_lock| {
            let mut seen = Vec::new();
            catalog.visit_after_in(pattern, after, per_lock, |def| {
                seen.push(def.name.clone());
                match seen.len() < most {
                    true => ControlFlow::Continue(()),
                    false => ControlFlow::Break(()),
                }
            });
            seen
        });
        assert!(
            answers.iter().all(|seen| *seen == answers[0]),
            "{answers:?}"
        );
        std::mem::take(&mut answers[0])
    };
    assert_eq!(visit("PROD.*", "", 10), ["PROD.A", "PROD.C"]);
    assert_eq!(visit("PROD.**", "", 10), ["PROD.A", "PROD.B.X", "PROD.C"]);
    assert_eq!(visit("PROD.**", "PROD.A", 10), ["PROD.B.X", "PROD.C"]);
    assert_eq!(visit("prod.**", "PROD.B.X", 10), ["PROD.C"]);
    assert_eq!(visit("PROD.**", "PROD.C", 10), Vec::<String>::new());
    // A name before the prefix starts at the prefix, one past it ends.
    assert_eq!(visit("PROD.**", "B", 10), ["PROD.A", "PROD.B.X", "PROD.C"]);
    assert_eq!(visit("PROD.**", "Q", 10), Vec::<String>::new());
    // No literal prefix: the whole catalog, filtered.
    assert_eq!(visit("*.CUST", "", 10), ["A.CUST", "TEST.CUST", "Z.CUST"]);
    assert_eq!(visit("*.CUST", "A.CUST", 10), ["TEST.CUST", "Z.CUST"]);
    assert_eq!(visit("", "PROD.C", 2), ["PRODX.A", "TEST.CUST"]);
    // No wildcard: the one name.
    assert_eq!(visit("PROD.A", "", 10), ["PROD.A"]);
    assert_eq!(visit("P%OD.A", "", 10), ["PROD.A"]);
}

/// The matcher as IDCAMS's rules say it, trying every way: the reference
/// the matcher is held to, on short inputs.
fn matches_by_trying(pattern: &[u8], name: &[u8]) -> bool {
    match pattern {
        [] => name.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=name.len()).any(|i| matches_by_trying(rest, &name[i..])),
        [b'*', rest @ ..] => (0..=name.len())
            .take_while(|&i| i == 0 || name[i - 1] != b'.')
            .any(|i| matches_by_trying(rest, &name[i..])),
        [b'%', rest @ ..] => {
            name.first().is_some_and(|&c| c != b'.') && matches_by_trying(rest, &name[1..])
        }
        [c, rest @ ..] => name.first() == Some(c) && matches_by_trying(rest, &name[1..]),
    }
}

proptest::proptest! {
    #[test]
    fn patterns_match_as_trying_every_way_does(
        pattern in "[AB.*%]{0,10}",
        name in "[AB.]{0,10}",
    ) {
        proptest::prop_assert_eq!(
            matches(&pattern, &name),
            matches_by_trying(pattern.as_bytes(), name.as_bytes()),
            "{} against {}", pattern, name
        );
    }
}

/// A pattern of many `**` is matched in time linear in its length: trying
/// every way (the reference above) would take hours on this one.
#[test]
fn a_pattern_of_many_wildcards_is_matched_without_trying_every_way() {
    let name = "AAAAAAAA.AAAAAAAA.AAAAAAAA.AAAAAAAA.AAAAAAAA";
    let evil = format!("{}B", "**A".repeat(20));
    assert!(!matches(&evil, name));
    let fine = format!("{}A", "**A".repeat(20));
    assert!(matches(&fine, name));
}

#[test]
fn a_rename_whose_save_fails_leaves_every_entry_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), &[]).unwrap();
    let aix = |name: &str, base: &str| DatasetDef {
        relation: Some(Relation::Aix {
            base: base.into(),
            base_key_length: 8,
            unique: false,
            upgrade: true,
        }),
        ..ksds(name)
    };
    let path = DatasetDef {
        relation: Some(Relation::Path {
            aix: "RUN.BASE.IX".into(),
        }),
        ..ksds("RUN.BASE.PATH")
    };
    for def in [
        ksds("RUN.BASE"),
        aix("RUN.BASE.IX", "RUN.BASE"),
        path.clone(),
    ] {
        assert!(catalog.insert(def).unwrap());
    }
    let listed = |catalog: &Catalog| catalog.list("**");
    let before = listed(&catalog);
    catalog.journal.lock().unwrap().0.fail_appends();
    let renamed = catalog.rename(
        "RUN.BASE",
        ksds("RUN.NEW"),
        vec![aix("RUN.BASE.IX", "RUN.NEW")],
    );
    assert!(renamed.is_err());
    assert_eq!(listed(&catalog), before);
    let (indexes, paths) = catalog.related("RUN.BASE");
    assert_eq!(indexes, [aix("RUN.BASE.IX", "RUN.BASE")]);
    assert_eq!(paths, [path]);
    assert_eq!(catalog.related("RUN.NEW"), (vec![], vec![]));
}

#[test]
fn a_batch_holds_as_many_records_as_fit_at_their_longest() {
    let with_max = |max_record: u32| DatasetDef {
        max_record,
        ..ksds("RUN.B")
    };
    assert_eq!(with_max(80).records_in(BATCH_BYTES, 500), 500);
    assert_eq!(with_max(65_536).records_in(BATCH_BYTES, 500), 256);
    assert_eq!(with_max(4 << 20).records_in(BATCH_BYTES, 500), 4);
    // One at least, however long, and however little is asked.
    assert_eq!(with_max(8 << 20).records_in(1 << 20, 500), 1);
    assert_eq!(with_max(80).records_in(BATCH_BYTES, 0), 1);
}
