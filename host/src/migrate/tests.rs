//! Migrations meeting the server's stop.

use super::*;
use crate::catalog::{Catalog, DatasetDef};
use crate::config::Config;
use crate::runtime::call::{CallResult, RecordStore, Reply};
use std::sync::mpsc;

/// A store holding nothing, whose first `create` waits until the test lets
/// it go: a migration's start is then under way for as long as the test
/// wants.
struct Gated {
    reached: Option<mpsc::Sender<()>>,
    gate: Option<mpsc::Receiver<()>>,
}

impl RecordStore for Gated {
    fn call(&mut self, call: Call) -> CallResult {
        if let Call::Create(..) = call
            && let (Some(reached), Some(gate)) = (self.reached.take(), self.gate.take())
        {
            let _ = reached.send(());
            let _ = gate.recv();
        }
        match call {
            Call::Scan(..) => Ok(Reply::Entries(Vec::new())),
            _ => Ok(Reply::Done),
        }
    }
}

fn backend(name: &str, store: Gated) -> BackendHandle {
    BackendHandle::spawn(
        name,
        crate::runtime::VersionInfo::native("gated"),
        Box::new(store),
        Vec::new(),
    )
    .unwrap()
}

fn free() -> Gated {
    Gated {
        reached: None,
        gate: None,
    }
}

fn dataset() -> DatasetDef {
    DatasetDef {
        name: "PAY.MASTER".into(),
        organization: vsam_protocol::Organization::Ksds,
        key_offset: 0,
        key_length: 4,
        min_record: 4,
        max_record: 80,
        codepage: vsam_plugin_sdk::codepage::CodePage::Ascii,
        backend: "old".into(),
        layout: None,
        relation: None,
    }
}

/// The migrations of a server whose dataset PAY.MASTER lives on backend
/// `old`, with backend `new` (its store given) to move it to.
fn migrations(dir: &std::path::Path, new: Gated) -> Arc<Migrations> {
    let config = Config::parse("", "<test>", dir).unwrap();
    let catalog = Catalog::open(dir, &[dataset()]).unwrap();
    let backends = BTreeMap::from([
        ("old".to_string(), backend("old", free())),
        ("new".to_string(), backend("new", new)),
    ]);
    let shared = Arc::new(Shared::new(&config, catalog, backends));
    Migrations::open(shared, dir).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_asked_for_as_the_server_stops_waits_in_the_journal_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let (reached, reached_rx) = mpsc::channel();
    let (open, gate) = mpsc::channel();
    let new = Gated {
        reached: Some(reached),
        gate: Some(gate),
    };
    let migrations = migrations(dir.path(), new);
    // The command is under way (the target's storage being created) when
    // the server stops.
    let starting = tokio::spawn({
        let migrations = migrations.clone();
        async move { migrations.start("pay.master", "new").await }
    });
    tokio::task::spawn_blocking(move || reached_rx.recv().unwrap())
        .await
        .unwrap();
    migrations.stop_all().await;
    open.send(()).unwrap();
    let row = starting.await.unwrap().expect("the command was taken");
    assert_eq!(row.dataset, "PAY.MASTER");
    // Its copy begins cancelled: it neither cuts over nor rolls back, and
    // the journal keeps it as copying, for the next start.
    let migration = migrations.active("PAY.MASTER").unwrap();
    let task = migration.task.lock().unwrap().take().expect("a copy task");
    task.await.unwrap();
    let entries = Journal::open(dir.path()).unwrap().entries();
    assert_eq!(entries.len(), 1, "one migration in the journal");
    assert_eq!(entries[0].dataset, "PAY.MASTER");
    assert!(
        entries[0].stage == Stage::Copying,
        "kept as copying for the next start"
    );
    let (def, _) = migrations.shared.catalog.get("PAY.MASTER").unwrap();
    assert_eq!(def.backend, "old", "still served from its old backend");
    // A command arriving once the server is stopping is refused, saying so.
    let refused = migrations.start("PAY.MASTER", "new").await.unwrap_err();
    assert!(refused.contains("the server is stopping"), "{refused}");
}
