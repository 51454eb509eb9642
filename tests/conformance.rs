//! The conformance suite passes through vsamrd on every shipped plugin,
//! loaded from their component files like any third-party plugin: memory,
//! CSV, the log example, and SQL on SQLite in raw and in mapped mode, also
//! with reader instances (PostgreSQL: see `postgres.rs`); the durability
//! checks tell storage from memory and fail a careless plugin; the native
//! harness runs the kit on a store type.

use std::collections::BTreeMap;
use std::path::Path;
use vsam_tests::{
    CARELESS_WASM, CSV_WASM, LOG_WASM, MEMORY_WASM, SQL_WASM, assert_conforms, assert_durable,
};

async fn passes(wasm: &str, database: Option<&str>, mapped: bool) {
    passes_with_readers(wasm, database, mapped, 0).await;
}

async fn passes_with_readers(wasm: &str, database: Option<&str>, mapped: bool, readers: usize) {
    let server = vsam_conformance::start_server_for_plugin(
        Path::new(wasm),
        &BTreeMap::new(),
        &vsam_conformance::Grants {
            database: database.map(str::to_string),
            readers,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_conforms(&server.address, "CONF", mapped, wasm).await;
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_plugin_conforms() {
    passes(MEMORY_WASM, None, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_plugin_conforms() {
    passes(CSV_WASM, None, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_plugin_conforms_on_sqlite_raw() {
    passes(SQL_WASM, Some("sqlite:vsam.db"), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_plugin_conforms_on_sqlite_mapped() {
    passes(SQL_WASM, Some("sqlite:vsam.db"), true).await;
}

/// Three reader instances serve GETs and browses beside the writer: the
/// suite (which deletes and redefines datasets) sees no stale instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_plugin_conforms_on_sqlite_with_readers() {
    passes_with_readers(SQL_WASM, Some("sqlite:vsam.db"), true, 3).await;
}

/// The `units.whole` promise, checked on each plugin below vsamrd: SQL and
/// CSV keep it, the in-memory example does not claim it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_keep_their_units_whole_promise() {
    use vsam_conformance::{Grants, Subject, WholeUnits, check_whole_units};
    let sqlite = Grants {
        database: Some("sqlite:units.db".into()),
        ..Default::default()
    };
    for (wasm, grants, expected) in [
        (SQL_WASM, sqlite, WholeUnits::Kept),
        (CSV_WASM, Grants::default(), WholeUnits::Kept),
        (MEMORY_WASM, Grants::default(), WholeUnits::NotClaimed),
    ] {
        let found = check_whole_units(&Subject::new(Path::new(wasm), grants))
            .await
            .unwrap_or_else(|failure| panic!("{wasm}: {failure}"));
        assert_eq!(found, expected, "{wasm}");
    }
}

/// A mirror's batch (replace, insert, erase of a key present and of one
/// absent, then the same batch again) through each plugin's `mirror.apply`
/// (SQL's multi-row upserts, the SDK's default on CSV and memory). The
/// full kit runs it too, so vsamrd's own fallback for a plugin built
/// without the interface is checked on the Python and JavaScript examples
/// (built for world `backend-core`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_apply_a_mirrors_batch_whatever_is_stored() {
    use vsam_conformance::{Grants, Subject, check_mirror_apply};
    let sqlite = Grants {
        database: Some("sqlite:mirror.db".into()),
        ..Default::default()
    };
    for (wasm, grants) in [
        (SQL_WASM, sqlite),
        (CSV_WASM, Grants::default()),
        (MEMORY_WASM, Grants::default()),
    ] {
        check_mirror_apply(&Subject::new(Path::new(wasm), grants))
            .await
            .unwrap_or_else(|failure| panic!("{wasm}: {failure}"));
    }
}

/// The durability checks pass on the plugins whose records live in
/// storage (CSV files, SQLite), and fail on the in-memory example, whose
/// records go with its instance: the `volatile` profile reports those
/// failures as not required, the `durable` one fails the plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durability_checks_tell_storage_from_memory() {
    use vsam_conformance::{Grants, KitOptions, Profile, Selection, Status, Subject, run_kit};
    let sqlite = Grants {
        database: Some("sqlite:durable.db".into()),
        ..Default::default()
    };
    for (wasm, grants) in [(CSV_WASM, Grants::default()), (SQL_WASM, sqlite)] {
        let ran = assert_durable(&Subject::new(Path::new(wasm), grants), wasm).await;
        assert_eq!(
            ran,
            [
                "durable.replaced-instance",
                "durable.restart",
                "durable.sync-fails",
                "durable.full-disk",
                "durable.torn-write",
                "durable.lost-answer",
                "durable.store-gone",
                "units.whole"
            ],
            "{wasm}"
        );
    }
    // The faults meet plugins over files only (the lost answer, plugins
    // over a bucket): the others are told so.
    let sqlite = Subject::new(
        Path::new(SQL_WASM),
        Grants {
            database: Some("sqlite:durable.db".into()),
            ..Default::default()
        },
    );
    let faults = KitOptions {
        profile: Profile::Durable,
        selection: Selection::only([
            "durable.sync-fails",
            "durable.full-disk",
            "durable.torn-write",
            "durable.lost-answer",
            "durable.store-gone",
        ]),
        mapped: false,
    };
    for result in run_kit(&sqlite, &faults).await.unwrap() {
        assert_eq!(result.status(), Status::NotApplicable, "{}", result.id);
    }
    let memory = Subject::new(Path::new(MEMORY_WASM), Grants::default());
    for (profile, expected) in [
        (Profile::Durable, Status::Fail),
        (Profile::Volatile, Status::ExpectedFailure),
    ] {
        let options = KitOptions {
            profile,
            selection: Selection::only(["durable.replaced-instance", "durable.restart"]),
            mapped: false,
        };
        let results = run_kit(&memory, &options).await.unwrap();
        assert_eq!(results.len(), 2);
        for result in &results {
            assert_eq!(result.status(), expected, "{} {profile:?}", result.id);
            let failure = result.outcome.as_ref().unwrap_err().to_string();
            assert!(failure.contains("no storage for the dataset"), "{failure}");
        }
    }
}

/// A plugin over files that ignores sync errors, reports a full disk as
/// an I/O error and cannot read its log back after a torn write passes
/// the VSAM scenarios and a plain restart, and fails each storage fault
/// check, saying what it did wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_fault_checks_fail_a_careless_plugin() {
    use vsam_conformance::{Grants, KitOptions, Profile, Selection, Status, Subject, run_kit};
    let careless = Subject::new(Path::new(CARELESS_WASM), Grants::default());
    let options = KitOptions {
        profile: Profile::Durable,
        selection: Selection::only(["ksds", "durable"]),
        mapped: false,
    };
    let results = run_kit(&careless, &options).await.unwrap();
    let failed: Vec<(&str, String)> = results
        .iter()
        .filter(|r| r.status() == Status::Fail)
        .map(|r| (r.id, r.outcome.as_ref().unwrap_err().to_string()))
        .collect();
    let ids: Vec<&str> = failed.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        [
            "durable.sync-fails",
            "durable.full-disk",
            "durable.torn-write"
        ],
        "{failed:#?}"
    );
    assert!(failed[0].1.contains("answered success"), "{}", failed[0].1);
    assert!(failed[1].1.contains("not no-space"), "{}", failed[1].1);
    assert!(failed[2].1.contains("is corrupt"), "{}", failed[2].1);
    assert!(
        results
            .iter()
            .any(|r| r.id == "durable.restart" && r.status() == Status::Pass)
    );
}

/// The native harness runs the kit on a store type, with no WebAssembly
/// build: the in-memory example passes every VSAM scenario in the
/// volatile profile, and in the durable profile the harness panics
/// naming the two durability checks it fails.
#[test]
fn the_native_harness_checks_a_store_type() {
    use vsam_conformance::native::assert_conforms_with;
    use vsam_conformance::{KitOptions, Profile, Selection};
    use vsam_example_memory::MemoryStore;
    let volatile = KitOptions {
        profile: Profile::Volatile,
        selection: Selection::all(),
        mapped: false,
    };
    assert_conforms_with::<MemoryStore>(&[], &volatile);
    let durable = KitOptions {
        profile: Profile::Durable,
        selection: Selection::only(["durable"]),
        mapped: false,
    };
    let failed = std::panic::catch_unwind(|| assert_conforms_with::<MemoryStore>(&[], &durable))
        .expect_err("an in-memory store fails the durable profile");
    let message = failed
        .downcast_ref::<String>()
        .expect("the harness panics with a message");
    assert!(message.contains("failed 2 check(s)"), "{message}");
    assert!(
        message.contains("durable.replaced-instance") && message.contains("durable.restart"),
        "{message}"
    );
}

/// The bucket's faults: they meet plugins over objects only (the object
/// store plugin, checked in `tests/objects.rs`).
const BUCKET_FAULTS: &[&str] = &["durable.lost-answer", "durable.store-gone"];

/// Runs every check of the kit on `subject` (profile durable) and fails
/// unless each one passes, but for those in `not_applicable`, which must
/// say they do not apply.
async fn passes_every_check(subject: vsam_conformance::Subject, not_applicable: &[&str]) {
    use vsam_conformance::{KitOptions, Profile, Selection, Status, run_kit};
    let options = KitOptions {
        profile: Profile::Durable,
        selection: Selection::all(),
        mapped: false,
    };
    let results = run_kit(&subject, &options).await.unwrap();
    let wrong: Vec<String> = results
        .iter()
        .filter(|r| {
            let expected = if not_applicable.contains(&r.id) {
                Status::NotApplicable
            } else {
                Status::Pass
            };
            r.status() != expected
        })
        .map(|r| {
            format!(
                "{} {:?}: {:?} {:?}",
                r.id,
                r.status(),
                r.outcome,
                r.not_applicable
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}: {wrong:#?}", subject.plugin.display());
    assert_eq!(results.len(), vsam_conformance::checks().len());
}

/// A component with no grant but its directory.
fn component(wasm: &Path) -> vsam_conformance::Subject {
    vsam_conformance::Subject::new(wasm, vsam_conformance::Grants::default())
}

/// Runs a `scripts/` build script that prints the component it built.
fn built_by(script: &str) -> std::path::PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(script);
    let built = std::process::Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        built.status.success(),
        "{} failed (scripts/setup installs what it needs):\n{}",
        script.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    String::from_utf8(built.stdout).unwrap().trim().into()
}

/// The log example, which `vsam-plugin new` generates, passes every check
/// of the kit as a component: the VSAM scenarios, the durability checks
/// and each storage fault (they apply: it keeps its records in files).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_example_passes_every_check_storage_faults_included() {
    passes_every_check(component(Path::new(LOG_WASM)), BUCKET_FAULTS).await;
}

/// The Python example (examples/python-plugin, built by componentize-py
/// from the same WIT contract) passes every check of the kit, storage
/// faults included: a plugin in another language than Rust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_passes_every_check() {
    passes_every_check(component(&built_by("build-python-plugin")), BUCKET_FAULTS).await;
}

/// The JavaScript example (examples/js-plugin, built by ComponentizeJS)
/// keeps its records in the SQLite database it is granted: it passes every
/// check, and the storage faults, which meet files in its directory, say
/// they do not apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_example_passes_every_check() {
    let subject = vsam_conformance::Subject::new(
        &built_by("build-js-plugin"),
        vsam_conformance::Grants {
            database: Some("sqlite:js.db".into()),
            ..Default::default()
        },
    );
    let faults = [
        &[
            "durable.sync-fails",
            "durable.full-disk",
            "durable.torn-write",
        ],
        BUCKET_FAULTS,
    ]
    .concat();
    passes_every_check(subject, &faults).await;
}

/// `vsam-plugin new` writes a crate that builds into a component (offline,
/// with the versions of the project's lock file) and passes every check of
/// the kit, storage faults included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_crate_builds_and_passes_the_kit() {
    use vsam_conformance::template::{SdkSource, generate};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("first-store");
    let written = generate(
        &crate_dir,
        "first-store",
        &SdkSource::Checkout(root.join("plugin-sdk")),
    )
    .unwrap();
    assert!(
        written.iter().any(|p| p.ends_with("Cargo.lock")),
        "{written:?}"
    );
    // A target directory of its own, kept between runs (the outer cargo
    // holds the workspace's).
    let target = root.join("target/new-plugin-check");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "--offline",
            "--target",
            "wasm32-wasip2",
        ])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "the new crate does not build:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    passes_every_check(
        component(&target.join("wasm32-wasip2/release/first_store.wasm")),
        BUCKET_FAULTS,
    )
    .await;
}
