//! Mirrors and the change stream: every committed change of a dataset
//! reaches each mirror backend (SQLite with typed columns, CSV files) and
//! the JSON-lines stream, in commit order, across restarts; a mirror added
//! later starts with a copy; pause, resume, resync and verify; a sync
//! mirror that is down refuses writes or degrades, as configured; a
//! primary on PostgreSQL whose COMMIT answer is lost, or whose COMMIT still
//! runs when vsamrd is SIGKILLed and started again.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use vsam_client::admin::{AdminClient, read_token};
use vsam_client::{ClientError, Connection, Dataset, OpenIntent, RplOptions};
use vsam_host::RunningServer;
use vsam_host::config::Config;
use vsam_protocol::admin::{AdminAnswer, AdminCommand, MirrorRow, MirrorsReport};
use vsam_protocol::{DatasetSpec, Organization, Processing, access};
use vsam_tests::migration::{migrate_until_cut_over, refused_migration};
use vsam_tests::{CSV_WASM, S3_WASM, SQL_WASM};

/// A record of `PAY.MASTER`: key, name, amount (COMP-3).
const LAYOUT: &str = "01 PAY-RECORD.\n   05 PAY-ID PIC X(4).\n   05 PAY-NAME PIC X(10).\n   05 PAY-AMOUNT PIC S9(5)V99 COMP-3.\n";

/// Backends `main` (SQLite, the default route), `report` (SQLite) and
/// `files` (CSV), and `extra`.
fn sections(extra: &str) -> String {
    format!(
        "[plugins.sql]\npath = \"{SQL_WASM}\"\n[plugins.csv]\npath = \"{CSV_WASM}\"\n\
         [backends.main]\nplugin = \"sql\"\ndatabase = \"sqlite:main.db\"\n\
         [backends.report]\nplugin = \"sql\"\ndatabase = \"sqlite:report.db\"\n\
         [backends.files]\nplugin = \"csv\"\ndirectory = \"files\"\n\
         [routing]\ndefault = \"main\"\n{extra}"
    )
}

const MIRRORED: &str = "[changes]\nstream = \"file\"\n[[mirrors]]\ndatasets = \"PAY.**\"\nbackends = [\"report\", \"files\"]\n";

async fn start_in(data_dir: &Path, extra: &str) -> RunningServer {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{}",
        data_dir.display(),
        sections(extra)
    );
    let config = Config::parse(&text, "<test>", Path::new(".")).unwrap();
    RunningServer::start_with(&config, BTreeMap::new())
        .await
        .unwrap()
}

async fn admin(server: &RunningServer, data_dir: &Path) -> AdminClient {
    let token = read_token(&data_dir.join("admin.token")).unwrap();
    AdminClient::connect(&server.admin_addr.unwrap().to_string(), token)
        .await
        .unwrap()
}

async fn mirrors(admin: &mut AdminClient) -> MirrorsReport {
    admin.mirror_status().await.unwrap()
}

/// Waits until every mirror has applied every committed change, and the
/// stream has written it.
async fn caught_up(admin: &mut AdminClient) -> MirrorsReport {
    admin
        .mirrors_caught_up(Duration::from_millis(50), Duration::from_secs(60))
        .await
        .unwrap()
}

/// Polls mirror `backend`'s row until `done` holds for it; fails after
/// `limit`, saying what was awaited and showing the row.
async fn row_once(
    admin: &mut AdminClient,
    backend: &str,
    limit: Duration,
    awaited: &str,
    done: impl Fn(&MirrorRow) -> bool,
) -> MirrorRow {
    let started = Instant::now();
    loop {
        let report = mirrors(admin).await;
        let current = row(&report, backend);
        if done(current) {
            return current.clone();
        }
        assert!(started.elapsed() < limit, "{awaited}: {current:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Its last error, or "".
fn last_error(row: &MirrorRow) -> &str {
    row.last_error.as_deref().unwrap_or_default()
}

fn row<'a>(report: &'a MirrorsReport, backend: &str) -> &'a MirrorRow {
    report
        .mirrors
        .iter()
        .find(|m| m.backend == backend)
        .unwrap()
}

async fn verify(admin: &mut AdminClient, backend: &str, dataset: &str) -> u64 {
    let command = AdminCommand::MirrorVerify {
        backend: backend.into(),
        dataset: dataset.into(),
    };
    match admin.request(command).await.unwrap() {
        AdminAnswer::MirrorVerified(row) => row.count,
        other => panic!("verify of {dataset} on {backend}: {other:?}"),
    }
}

/// A PAY.MASTER record: 4-byte key, 10-byte name, packed amount.
fn pay_record(id: u32, name: &str, cents: i64) -> Vec<u8> {
    let mut record = format!("{id:04}{name:<10}").into_bytes();
    let digits = format!("{:07}", cents.unsigned_abs());
    let mut nibbles: Vec<u8> = digits.bytes().map(|d| d - b'0').collect();
    nibbles.push(if cents < 0 { 0xD } else { 0xC });
    record.extend(nibbles.chunks(2).map(|pair| (pair[0] << 4) | pair[1]));
    record
}

fn pay_spec() -> DatasetSpec {
    DatasetSpec {
        name: "PAY.MASTER".into(),
        organization: Organization::Ksds,
        key_offset: 0,
        key_length: 4,
        min_record: 0,
        max_record: 18,
        codepage: "ascii".into(),
        backend: String::new(),
        layout: LAYOUT.into(),
    }
}

/// Defines PAY.MASTER on `server` and opens it for update.
/// `PAY.LOG`, the ESDS [`change_everything`] appends to.
fn pay_log_spec() -> DatasetSpec {
    let mut spec = vsam_tests::ksds("PAY.LOG", 8, 40, "ascii");
    spec.organization = Organization::Esds;
    spec.key_length = 0;
    spec
}

async fn open_pay(server: &RunningServer) -> (Connection, Dataset) {
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, pay_spec()).await.unwrap();
    let ds = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Update, 1)
        .await
        .unwrap();
    (conn, ds)
}

async fn update(ds: &Dataset, record: Vec<u8>) -> Result<(), ClientError> {
    ds.read_for_update(&record[..4]).await?;
    ds.put(0, RplOptions::direct().update(), 0, record)
        .await
        .map(drop)
}

async fn erase(ds: &Dataset, key: &[u8]) -> Result<(), ClientError> {
    ds.read_for_update(key).await?;
    ds.erase(0).await
}

/// Every record of a dataset, by key.
async fn records(conn: &Connection, name: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let ds = Dataset::open(conn, name, OpenIntent::Input, 1)
        .await
        .unwrap();
    let options = match ds.spec().organization {
        Organization::Esds => RplOptions::addressed(Processing::Sequential),
        _ => RplOptions::sequential(),
    };
    let mut out = BTreeMap::new();
    loop {
        match ds.reading(options).batch(500).records().await {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => out.extend(batch.into_iter().map(|r| (r.key, r.data))),
            Err(error) if error.is_end_of_data() => break,
            Err(error) => panic!("browse {name}: {error}"),
        }
    }
    ds.close().await.unwrap();
    out
}

/// The stream's lines, in file order.
fn stream_lines(data_dir: &Path) -> Vec<serde_json::Value> {
    let dir = data_dir.join("changes/stream");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The stream's lines and their sequence numbers, checked dense from 1:
/// none missing, none repeated.
fn dense_stream(data_dir: &Path) -> (Vec<serde_json::Value>, Vec<u64>) {
    let lines = stream_lines(data_dir);
    let sequences: Vec<u64> = lines
        .iter()
        .map(|l| l["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=sequences.len() as u64).collect::<Vec<_>>());
    (lines, sequences)
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

/// The records of `dataset` that replaying the stream's lines gives.
fn replay(lines: &[serde_json::Value], dataset: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut state = BTreeMap::new();
    for line in lines.iter().filter(|l| l["dataset"] == dataset) {
        match line["operation"].as_str().unwrap() {
            "insert" | "replace" => {
                state.insert(
                    unhex(line["key"].as_str().unwrap()),
                    unhex(line["record"].as_str().unwrap()),
                );
            }
            "erase" => {
                state.remove(&unhex(line["key"].as_str().unwrap()));
            }
            "define" | "delete" => state.clear(),
            other => panic!("operation {other}"),
        }
    }
    state
}

/// Changes PAY.MASTER from four connections at once (inserts, updates,
/// erases), one unit of work of five inserts, and ESDS appends to PAY.LOG.
async fn change_everything(address: &str, round: u32) {
    let mut tasks = Vec::new();
    for client in 0..4u32 {
        let address = address.to_string();
        tasks.push(tokio::spawn(async move {
            let conn = Connection::connect(&address).await.unwrap();
            let ds = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Update, 1)
                .await
                .unwrap();
            for i in 0..40u32 {
                let id = round * 1000 + client * 100 + i;
                ds.put(
                    0,
                    RplOptions::direct(),
                    0,
                    pay_record(id, "NEW", i64::from(i) * 101),
                )
                .await
                .unwrap();
                if i % 3 == 0 {
                    update(&ds, pay_record(id, "CHANGED", -i64::from(i)))
                        .await
                        .unwrap();
                }
                if i % 5 == 0 {
                    erase(&ds, format!("{id:04}").as_bytes()).await.unwrap();
                }
            }
            ds.close().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let conn = Connection::connect(address).await.unwrap();
    let unit =
        Dataset::open_with_access(&conn, "PAY.MASTER", OpenIntent::Update, access::COMMIT, 1)
            .await
            .unwrap();
    for i in 0..5u32 {
        let id = round * 1000 + 900 + i;
        unit.put(0, RplOptions::direct(), 0, pay_record(id, "UNIT", 5))
            .await
            .unwrap();
    }
    vsam_client::commit(&conn).await.unwrap();
    unit.close().await.unwrap();
    let log = Dataset::open(&conn, "PAY.LOG", OpenIntent::Output, 1)
        .await
        .unwrap();
    for i in 0..10 {
        log.put(
            0,
            RplOptions::addressed(Processing::Direct),
            0,
            format!("event {round}.{i}").into_bytes(),
        )
        .await
        .unwrap();
    }
    log.close().await.unwrap();
}

/// A server on `data_dir` with [`MIRRORED`], PAY.MASTER and PAY.LOG
/// defined and changed by [`change_everything`]: the server and a
/// connection to it.
async fn mirrored_and_changed(data_dir: &Path) -> (RunningServer, Connection) {
    let server = start_in(data_dir, MIRRORED).await;
    let address = server.addr.to_string();
    let conn = Connection::connect(&address).await.unwrap();
    vsam_client::define(&conn, pay_spec()).await.unwrap();
    vsam_client::define(&conn, pay_log_spec()).await.unwrap();
    change_everything(&address, 1).await;
    (server, conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_and_the_stream_carry_every_committed_change_across_restarts() {
    let data = tempfile::tempdir().unwrap();
    let (server, conn) = mirrored_and_changed(data.path()).await;

    let mut admin_client = admin(&server, data.path()).await;
    let report = caught_up(&mut admin_client).await;
    let master = records(&conn, "PAY.MASTER").await;
    let log = records(&conn, "PAY.LOG").await;
    assert!(master.len() > 100 && log.len() == 10);
    for mirror in ["report", "files"] {
        assert_eq!(row(&report, mirror).datasets_followed, 2, "{report:?}");
        assert_eq!(
            verify(&mut admin_client, mirror, "PAY.MASTER").await,
            master.len() as u64
        );
        assert_eq!(verify(&mut admin_client, mirror, "PAY.LOG").await, 10);
    }
    // The SQL mirror keeps the copybook's typed columns: plain SQL reads
    // the amounts.
    let sql = rusqlite::Connection::open(data.path().join("report.db")).unwrap();
    let table: String = sql
        .query_row(
            "SELECT table_name FROM _vsam_catalog WHERE dataset = 'PAY.MASTER'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let (name, amount): (String, f64) = sql
        .query_row(
            &format!("SELECT pay_name, pay_amount FROM {table} WHERE pay_id = '1003'"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((name.trim_end(), amount), ("CHANGED", -0.03));

    // The stream: dense sequence numbers, and replaying it gives exactly
    // what the datasets hold.
    let (lines, sequences) = dense_stream(data.path());
    assert_eq!(report.committed, sequences.len() as u64);
    assert_eq!(replay(&lines, "PAY.MASTER"), master);
    assert_eq!(replay(&lines, "PAY.LOG"), log);
    let changed = lines
        .iter()
        .find(|l| l["operation"] == "replace" && l["key"] == "31303033")
        .unwrap();
    assert_eq!(changed["fields"]["PAY-NAME"], "CHANGED   ");
    assert_eq!(changed["fields"]["PAY-AMOUNT"], "-0.03");
    assert!(changed["time"].as_str().unwrap().ends_with('Z'));

    // A consumer remembers where it was; the server restarts; writing goes
    // on. Lines after the remembered sequence are exactly the new ones.
    let remembered = *sequences.last().unwrap();
    drop(conn);
    server.stop().await;
    let server = start_in(data.path(), MIRRORED).await;
    let address = server.addr.to_string();
    change_everything(&address, 2).await;
    let mut admin_client = admin(&server, data.path()).await;
    let report = caught_up(&mut admin_client).await;
    for mirror in ["report", "files"] {
        // Followed on without a new copy: only this run's changes applied.
        let row = row(&report, mirror);
        assert_eq!(row.applied_in_run, report.committed - remembered, "{row:?}");
    }
    let lines = stream_lines(data.path());
    let sequences: Vec<u64> = lines
        .iter()
        .map(|l| l["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=report.committed).collect::<Vec<_>>());
    let after: Vec<u64> = sequences.into_iter().filter(|s| *s > remembered).collect();
    assert_eq!(after.first(), Some(&(remembered + 1)));
    let conn = Connection::connect(&address).await.unwrap();
    let master = records(&conn, "PAY.MASTER").await;
    assert_eq!(replay(&lines, "PAY.MASTER"), master);
    for mirror in ["report", "files"] {
        assert_eq!(
            verify(&mut admin_client, mirror, "PAY.MASTER").await,
            master.len() as u64
        );
    }
    // Deleting the dataset deletes it on the mirrors too.
    vsam_client::delete(&conn, "PAY.LOG").await.unwrap();
    let report = caught_up(&mut admin_client).await;
    assert_eq!(row(&report, "report").datasets_followed, 1);
    let lines = stream_lines(data.path());
    assert_eq!(lines.last().unwrap()["operation"], "delete");
    assert!(
        sql.query_row(
            "SELECT count(*) FROM _vsam_catalog WHERE dataset = 'PAY.LOG'",
            [],
            |r| r.get::<_, i64>(0)
        )
        .unwrap()
            == 0
    );
    server.stop().await;
}

/// Starts a server whose configuration is the file `vsamrd.toml` in `dir`
/// (with `extra`), so that a reload reads it again.
async fn start_from_file(dir: &Path, extra: &str) -> RunningServer {
    write_config(dir, extra);
    RunningServer::start_source(
        vsam_host::reload::ConfigSource::file(dir.join("vsamrd.toml")),
        BTreeMap::new(),
    )
    .await
    .unwrap()
}

fn write_config(dir: &Path, extra: &str) {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[admin]\nwatch_files = false\n{}",
        dir.join("data").display(),
        sections(extra)
    );
    std::fs::write(dir.join("vsamrd.toml"), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_added_later_starts_with_a_copy_and_can_be_paused_verified_and_resynced() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_from_file(dir.path(), "").await;
    let (_conn, ds) = open_pay(&server).await;
    for id in 0..300 {
        ds.put(0, RplOptions::direct(), 0, pay_record(id, "BEFORE", 1))
            .await
            .unwrap();
    }
    let data = dir.path().join("data");
    let mut admin_client = admin(&server, &data).await;
    let message = admin_client
        .request(AdminCommand::MirrorStatus)
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("no mirror"), "{message}");

    // Added by a reload: the records written before are copied.
    write_config(
        dir.path(),
        "[[mirrors]]\ndatasets = \"PAY.*\"\nbackends = [\"report\"]\n",
    );
    let reload = server.reloader.reload("test").await;
    assert!(
        reload.error.is_none() && reload.notes.is_empty(),
        "{reload:?}"
    );
    for id in 300..310 {
        ds.put(0, RplOptions::direct(), 0, pay_record(id, "AFTER", 2))
            .await
            .unwrap();
    }
    caught_up(&mut admin_client).await;
    assert_eq!(verify(&mut admin_client, "report", "PAY.MASTER").await, 310);
    // Long caught up: the lag of what is written next starts from then.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Paused: changes wait, and are applied once resumed.
    let paused = admin_client
        .request(AdminCommand::MirrorPause {
            backend: "report".into(),
        })
        .await
        .unwrap();
    assert!(matches!(paused, AdminAnswer::Mirrors(_)), "{paused:?}");
    for id in 0..20 {
        update(&ds, pay_record(id, "PAUSED", 3)).await.unwrap();
    }
    let report = mirrors(&mut admin_client).await;
    let waiting = row(&report, "report");
    assert_eq!((waiting.phase.as_str(), waiting.queued), ("paused", 20));
    // Its lag is the age of the oldest change waiting (the paused mirror
    // reads them within a second), and grows.
    let lag = row_once(
        &mut admin_client,
        "report",
        Duration::from_secs(5),
        "no lag shown",
        |m| m.lag_seconds > 0.0,
    )
    .await
    .lag_seconds;
    assert!(lag < 2.0, "a lag of {lag} s for changes made just now");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = row(&mirrors(&mut admin_client).await, "report").lag_seconds;
    assert!(later >= lag + 0.4, "{lag} s, then {later} s");
    admin_client
        .request(AdminCommand::MirrorResume {
            backend: "report".into(),
        })
        .await
        .unwrap();
    caught_up(&mut admin_client).await;
    assert_eq!(verify(&mut admin_client, "report", "PAY.MASTER").await, 310);

    // Someone changes the mirror behind its back: verify names the
    // difference, resync repairs it.
    let sql = rusqlite::Connection::open(data.join("report.db")).unwrap();
    let table: String = sql
        .query_row(
            "SELECT table_name FROM _vsam_catalog WHERE dataset = 'PAY.MASTER'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    sql.execute(&format!("DELETE FROM {table} WHERE pay_id < '0010'"), [])
        .unwrap();
    sql.execute(
        &format!("UPDATE {table} SET pay_name = 'TAMPERED' WHERE pay_id = '0050'"),
        [],
    )
    .unwrap();
    let message = admin_client
        .request(AdminCommand::MirrorVerify {
            backend: "report".into(),
            dataset: "PAY.MASTER".into(),
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("the copies differ at key X'30303030'"),
        "{message}"
    );
    admin_client
        .request(AdminCommand::MirrorResync {
            backend: "report".into(),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    caught_up(&mut admin_client).await;
    assert_eq!(verify(&mut admin_client, "report", "PAY.MASTER").await, 310);

    // Unknown mirrors are named.
    let message = admin_client
        .request(AdminCommand::MirrorPause {
            backend: "nowhere".into(),
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("no mirror runs on backend nowhere; mirrors: report"),
        "{message}"
    );

    // Removed by a reload: it stops, and writes go on.
    write_config(dir.path(), "[changes]\nstream = \"file\"\n");
    let reload = server.reloader.reload("test").await;
    assert!(reload.error.is_none(), "{reload:?}");
    update(&ds, pay_record(1, "GONE", 4)).await.unwrap();
    let report = mirrors(&mut admin_client).await;
    assert!(report.mirrors.is_empty(), "{report:?}");
    assert!(report.stream.is_some());
    ds.close().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_mirror_that_is_down_refuses_writes_or_degrades_as_configured() {
    // A mirror backend on a PostgreSQL server that is not there; one whose
    // sync hangs on a record keyed SSYN (the faulty test plugin).
    let backends = format!(
        "[backends.remote]\nplugin = \"sql\"\ndatabase = \"postgres://vsam:vsam@127.0.0.1:9/none\"\ncall_timeout_ms = 1000\n\
         [plugins.faulty]\npath = \"{}\"\n[backends.slow]\nplugin = \"faulty\"\ndirectory = \"slow\"\ncall_timeout_ms = 1000\n",
        vsam_tests::FAULTY_WASM
    );
    let sync = |backend: &str, policy: &str| {
        format!(
            "{backends}[[mirrors]]\ndatasets = \"PAY.**\"\nbackends = [\"{backend}\"]\nmode = \"sync\"\non_unavailable = \"{policy}\"\nwait_ms = 300\n"
        )
    };
    let put = |ds: &Dataset, id: &str| {
        let record = [id.as_bytes(), &pay_record(0, "X", 1)[4..]].concat();
        let ds = ds.clone();
        async move { ds.put(0, RplOptions::direct(), 0, record).await.map(drop) }
    };
    let data = tempfile::tempdir().unwrap();

    // Down from the start: the define could not be mirrored, and writes
    // are refused before they run.
    let server = start_in(&data.path().join("a"), &sync("remote", "refuse")).await;
    let (_conn, ds) = open_pay(&server).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = put(&ds, "0001").await.unwrap_err().to_string();
    assert!(refused.contains("R15=12"), "{refused}");
    assert!(
        refused.contains("its sync mirror remote cannot apply changes")
            && refused.contains("cannot connect to PostgreSQL"),
        "{refused}"
    );
    assert!(
        ds.read(b"0001").await.is_err(),
        "the refused write did not run"
    );
    let mut admin_client = admin(&server, &data.path().join("a")).await;
    let report = mirrors(&mut admin_client).await;
    assert!(row(&report, "remote").refusing.is_some(), "{report:?}");
    ds.close().await.unwrap();
    server.stop().await;

    // Failing under a write: that write is committed on the primary and
    // says its mirror did not apply it in time; the next is refused.
    let server = start_in(&data.path().join("b"), &sync("slow", "refuse")).await;
    let (_conn, ds) = open_pay(&server).await;
    put(&ds, "0001").await.unwrap();
    let late = put(&ds, "SSYN").await.unwrap_err().to_string();
    assert!(
        late.contains(
            "committed on the primary, but its sync mirror slow did not apply it within 300 ms"
        ),
        "{late}"
    );
    assert!(ds.read(b"SSYN").await.is_ok(), "committed on the primary");
    // Once the mirror's call has failed, writes are refused up front.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let refused = put(&ds, "0002").await.unwrap_err().to_string();
    assert!(
        refused.contains("its sync mirror slow cannot apply changes")
            && refused.contains("ran longer than the limit"),
        "{refused}"
    );
    ds.close().await.unwrap();
    server.stop().await;

    // Degrade: writes go on, the mirror is reported as degraded, in the
    // status and in /metrics.
    let server = start_in(
        &data.path().join("c"),
        &format!(
            "{}[metrics]\nlisten = \"127.0.0.1:0\"\n",
            sync("remote", "degrade")
        ),
    )
    .await;
    let (_conn, ds) = open_pay(&server).await;
    put(&ds, "0001").await.unwrap();
    put(&ds, "0002").await.unwrap();
    let mut admin_client = admin(&server, &data.path().join("c")).await;
    let report = mirrors(&mut admin_client).await;
    let remote = row(&report, "remote");
    assert_eq!(remote.mode, "sync (degraded to async)", "{remote:?}");
    assert!(
        remote.queued >= 2 && remote.refusing.is_none(),
        "{remote:?}"
    );
    assert!(
        remote
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("cannot connect to PostgreSQL"),
        "{remote:?}"
    );
    let (status, metrics) =
        vsam_tests::http_get(&server.metrics_addr.unwrap().to_string(), "/metrics").await;
    assert_eq!(status, 200);
    for series in [
        "vsamrd_mirror_failing{mirror=\"remote\"} 1",
        &format!(
            "vsamrd_mirror_queued_changes{{mirror=\"remote\"}} {}",
            remote.queued
        ),
        &format!("vsamrd_change_log_committed_sequence {}", report.committed),
    ] {
        assert!(
            metrics.lines().any(|line| line.starts_with(series)),
            "{series} in\n{metrics}"
        );
    }
    ds.close().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_mirror_is_bounded_and_a_change_log_belongs_to_one_server() {
    for (policy, refused) in [("stop", false), ("refuse", true)] {
        let data = tempfile::tempdir().unwrap();
        let server = start_in(
            data.path(),
            &format!(
                "[[mirrors]]\ndatasets = \"PAY.**\"\nbackends = [\"report\"]\nmax_queue = 5\non_full = \"{policy}\"\n"
            ),
        )
        .await;
        let (_conn, ds) = open_pay(&server).await;
        let mut admin_client = admin(&server, data.path()).await;
        caught_up(&mut admin_client).await;
        admin_client
            .request(AdminCommand::MirrorPause {
                backend: "report".into(),
            })
            .await
            .unwrap();
        let mut stored = 0;
        for id in 0..10 {
            match ds
                .put(0, RplOptions::direct(), 0, pay_record(id, "WAITING", 1))
                .await
            {
                Ok(_) => stored += 1,
                Err(error) => {
                    let error = error.to_string();
                    assert!(
                        refused
                            && error
                                .contains("its mirror report has 5 changes waiting (max_queue 5)"),
                        "{policy}: {error}"
                    );
                }
            }
        }
        assert_eq!(stored, if refused { 5 } else { 10 }, "{policy}");
        if !refused {
            // Stopped rather than holding the log without bound.
            row_once(
                &mut admin_client,
                "report",
                Duration::from_secs(10),
                "the paused mirror was not stopped at its bound",
                |m| {
                    m.phase
                        .starts_with("stopped: paused while 10 changes waited (max_queue 5)")
                },
            )
            .await;
            admin_client
                .request(AdminCommand::MirrorResync {
                    backend: "report".into(),
                })
                .await
                .unwrap();
        } else {
            admin_client
                .request(AdminCommand::MirrorResume {
                    backend: "report".into(),
                })
                .await
                .unwrap();
        }
        caught_up(&mut admin_client).await;
        assert_eq!(
            verify(&mut admin_client, "report", "PAY.MASTER").await,
            stored
        );
        ds.close().await.unwrap();
        server.stop().await;
    }

    // A change log outside the data dirs, named by two servers: the
    // second is refused, naming the first, whether it would follow
    // changes or not, and touches nothing there.
    let shared = tempfile::tempdir().unwrap();
    let directory = format!("directory = \"{}\"\n", shared.path().display());
    let following = format!(
        "[changes]\nstream = \"file\"\n{directory}[[mirrors]]\ndatasets = \"PAY.**\"\nbackends = [\"report\"]\n"
    );
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = start_in(a.path(), &following).await;
    let (_conn, ds) = open_pay(&first).await;
    ds.put(0, RplOptions::direct(), 0, pay_record(1, "FIRST", 1))
        .await
        .unwrap();
    caught_up(&mut admin(&first, a.path()).await).await;
    // The running server saves its mirror's place as it likes; what it
    // wrote at start stays as it was.
    let contents = |names: &[&str]| {
        names
            .iter()
            .map(|name| std::fs::read_to_string(shared.path().join(name)).unwrap())
            .collect::<Vec<_>>()
    };
    let (at_start, all) = (
        &["followed.json", "owner"][..],
        &["followed.json", "owner", "mirrors/report.json"][..],
    );
    let before = contents(at_start);
    let second = |changes: &str| {
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{}",
            b.path().display(),
            sections(changes)
        );
        let config = Config::parse(&text, "<test>", Path::new(".")).unwrap();
        async move {
            RunningServer::start_with(&config, BTreeMap::new())
                .await
                .err()
                .expect("a second server on the same change log")
                .to_string()
        }
    };
    let quiet = format!("[changes]\n{directory}");
    for changes in [following.as_str(), quiet.as_str()] {
        let refused = second(changes).await;
        assert!(
            refused.contains("is in use by another vsamrd")
                && refused.contains(&format!("data dir {}", a.path().display())),
            "{refused}"
        );
        assert_eq!(
            contents(at_start),
            before,
            "the refused server wrote in the change log"
        );
        assert!(shared.path().join("mirrors/report.json").exists());
    }
    ds.close().await.unwrap();
    first.stop().await;
    let before = contents(all);

    // The first server stopped, the log is still its own.
    let owner = a.path().canonicalize().unwrap();
    for changes in [following.as_str(), quiet.as_str()] {
        let refused = second(changes).await;
        assert!(
            refused.contains(&format!(
                "holds the changes of the vsamrd whose data dir is {}",
                owner.display()
            )) && refused.contains("give each server a change directory of its own"),
            "{refused}"
        );
        assert_eq!(
            contents(all),
            before,
            "the refused server wrote in the change log"
        );
    }
    let first = start_in(a.path(), &following).await;
    let mut admin_client = admin(&first, a.path()).await;
    assert_eq!(
        verify(&mut admin_client, "report", "PAY.MASTER").await,
        1,
        "the mirror goes on where it was"
    );
    first.stop().await;

    // The cure the refusal names, for a data dir that moved.
    std::fs::remove_file(shared.path().join("owner")).unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{}",
        b.path().display(),
        sections(&quiet)
    );
    let config = Config::parse(&text, "<test>", Path::new(".")).unwrap();
    let moved = RunningServer::start_with(&config, BTreeMap::new())
        .await
        .unwrap();
    moved.stop().await;
    assert_eq!(
        std::fs::read_to_string(shared.path().join("owner")).unwrap(),
        format!("{}\n", b.path().canonicalize().unwrap().display())
    );
}

/// The configuration of a backend `pg` on `postgres` with the change
/// stream on, and PAY.MASTER's definition there.
fn primary_on_postgres(postgres: &vsam_conformance::Postgres) -> (String, DatasetSpec) {
    let extra = format!(
        "[backends.pg]\nplugin = \"sql\"\ndatabase = \"{}\"\n[changes]\nstream = \"file\"\n",
        postgres.url
    );
    let spec = DatasetSpec {
        backend: "pg".into(),
        ..pay_spec()
    };
    (extra, spec)
}

/// An async mirror of PAY.** to backend `report` (SQLite), after
/// [`primary_on_postgres`]'s sections.
const MIRRORED_TO_REPORT: &str = "[[mirrors]]\ndatasets = \"PAY.**\"\nbackends = [\"report\"]\n";

/// A primary on PostgreSQL records each group in its outbox table, in the
/// plugin's transaction; the stream carries every change, densely
/// numbered, across a restart, and the table is emptied once the log holds
/// the groups durably.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_on_postgresql_records_its_groups_in_its_outbox_and_the_stream_misses_nothing() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (extra, spec) = primary_on_postgres(&postgres);
    let outbox_rows = || {
        postgres
            .psql("vsam", "select count(*) from _vsamrd_change_outbox")
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let mut expected = BTreeMap::new();
    for run in 0..2u32 {
        let server = start_in(dir.path(), &extra).await;
        let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
        if run == 0 {
            vsam_client::define(&conn, spec.clone()).await.unwrap();
        }
        let ds = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Update, 1)
            .await
            .unwrap();
        for id in run * 100..run * 100 + 60 {
            let record = pay_record(id, "PG", i64::from(id));
            ds.put(0, RplOptions::direct(), 0, record.clone())
                .await
                .unwrap();
            expected.insert(record[..4].to_vec(), record);
        }
        for id in run * 100..run * 100 + 10 {
            let record = pay_record(id, "PG", -1);
            update(&ds, record.clone()).await.unwrap();
            expected.insert(record[..4].to_vec(), record);
            let gone = pay_record(id + 20, "", 0);
            erase(&ds, &gone[..4]).await.unwrap();
            expected.remove(&gone[..4]);
        }
        let mut admin_client = admin(&server, dir.path()).await;
        let report = caught_up(&mut admin_client).await;
        assert!(
            outbox_rows() <= report.committed,
            "one row per group at most"
        );
        ds.close().await.unwrap();
        assert_eq!(records(&conn, "PAY.MASTER").await, expected);
        // Emptied within a few seconds: the log holds the groups durably.
        let started = Instant::now();
        while outbox_rows() > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the outbox kept {} rows",
                outbox_rows()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drop(conn);
        server.stop().await;
    }
    // The groups went through the outbox (rows inserted, counted by
    // PostgreSQL whatever was deleted since; its counts are published
    // within a second or so).
    let started = Instant::now();
    loop {
        let inserted: u64 = postgres
            .psql(
                "vsam",
                "select coalesce(sum(n_tup_ins), 0) from pg_stat_user_tables where relname = '_vsamrd_change_outbox'",
            )
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        if inserted > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no group was written to the outbox"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (lines, _) = dense_stream(dir.path());
    assert_eq!(replay(&lines, "PAY.MASTER"), expected);
}

/// A data dir copied from a server that still runs, both primaries on one
/// PostgreSQL database: the copy's change log has the same id and numbers
/// its groups as the original does, so its first group finds its outbox
/// key taken. The write is refused naming the cause and the cure, nothing
/// of it is stored, and once the copy's log has an id of its own it
/// writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_data_dir_sharing_a_change_log_id_is_refused_with_the_cure() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let (extra, spec) = primary_on_postgres(&postgres);
    let original = tempfile::tempdir().unwrap();
    let server = start_in(original.path(), &extra).await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, spec).await.unwrap();
    drop(conn);
    server.stop().await;
    let copy = tempfile::tempdir().unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", original.path().display()))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(copied.success());

    let put = |server: &RunningServer, id: u32| {
        let address = server.addr.to_string();
        async move {
            let conn = Connection::connect(&address).await.unwrap();
            let ds = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Update, 1)
                .await
                .unwrap();
            let result = ds
                .put(0, RplOptions::direct(), 0, pay_record(id, "COPY", 1))
                .await;
            ds.close().await.unwrap();
            result
        }
    };
    let first = start_in(original.path(), &extra).await;
    let second = start_in(copy.path(), &extra).await;
    put(&first, 1).await.unwrap();
    let refused = put(&second, 2)
        .await
        .expect_err("a group numbered as the original's")
        .to_string();
    assert!(
        refused
            .contains("already there, written by another vsamrd whose change log has the same id")
            && refused.contains("remove the id file of its change log"),
        "{refused}"
    );
    let stored = || {
        postgres
            .psql("vsam", "select count(*) from pay_master")
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(stored(), "1", "the refused write was rolled back");

    // The cure: the copy's log gets an id of its own.
    second.stop().await;
    std::fs::remove_file(copy.path().join("changes/log/id")).unwrap();
    let second = start_in(copy.path(), &extra).await;
    put(&second, 2).await.unwrap();
    assert_eq!(stored(), "2");
    second.stop().await;
    first.stop().await;
}

/// A COMMIT on a primary on PostgreSQL whose answer is lost: the
/// connection is cut while PostgreSQL commits (a deferred trigger holds
/// the COMMIT for two seconds), so the write is answered as failed although
/// PostgreSQL committed it, outbox row and all. The change log learns that
/// from the outbox before the backend writes again: the stream carries the
/// change in its place, before the writes that follow, and the outbox's
/// emptying does not take its row unlogged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_is_lost_still_reaches_the_stream_in_its_place() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let upstream = postgres
        .url
        .split_once('@')
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(address, _)| address.to_string())
        .unwrap();
    let relay = vsam_tests::relay::Relay::start(&upstream).await;
    let extra = format!(
        "[backends.pg]\nplugin = \"sql\"\ndatabase = \"{}\"\n[changes]\nstream = \"file\"\n",
        postgres.url.replace(&upstream, &relay.address)
    );
    let spec = DatasetSpec {
        backend: "pg".into(),
        ..pay_spec()
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), &extra).await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    let (ds, mut expected) = define_with_first_record(&conn, spec).await;

    postgres
        .psql(
            "vsam",
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON _vsamrd_change_outbox DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();",
        )
        .unwrap();
    let lost = pay_record(2, "LOST", 2);
    let write = {
        let (ds, lost) = (ds.clone(), lost.clone());
        tokio::spawn(async move { ds.put(0, RplOptions::direct(), 0, lost).await })
    };
    // Cut once PostgreSQL is in the COMMIT (asleep in the trigger).
    let started = Instant::now();
    while postgres
        .psql(
            "vsam",
            "select count(*) from pg_stat_activity where query = 'COMMIT' and state = 'active'",
        )
        .unwrap()
        .trim()
        != "1"
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the COMMIT never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    relay.cut();
    let failed = write
        .await
        .unwrap()
        .expect_err("its COMMIT's answer was lost");
    postgres
        .psql(
            "vsam",
            "DROP TRIGGER slow_commit ON _vsamrd_change_outbox; DROP FUNCTION slow_commit();",
        )
        .unwrap();
    // PostgreSQL committed it all the same.
    expected.insert(lost[..4].to_vec(), lost);

    let mut admin_client = admin(&server, dir.path()).await;
    write_third_once_settled(
        ds,
        &conn,
        &mut admin_client,
        dir.path(),
        expected,
        &format!("the lost write failed with: {failed}"),
    )
    .await;
    drop(conn);
    server.stop().await;
}

/// Defines PAY.MASTER from `spec`, opens it for update and writes record
/// 1: the dataset, and what it holds.
async fn define_with_first_record(
    conn: &Connection,
    spec: DatasetSpec,
) -> (Dataset, BTreeMap<Vec<u8>, Vec<u8>>) {
    vsam_client::define(conn, spec).await.unwrap();
    let ds = Dataset::open(conn, "PAY.MASTER", OpenIntent::Update, 1)
        .await
        .unwrap();
    let first = pay_record(1, "BEFORE", 1);
    ds.put(0, RplOptions::direct(), 0, first.clone())
        .await
        .unwrap();
    let expected = BTreeMap::from([(first[..4].to_vec(), first)]);
    (ds, expected)
}

/// After a group in doubt (records 1 and 2 of `expected` committed):
/// writes record 3 once the backend takes writes again (refused, saying
/// why, until the log has settled the doubt), then checks that the
/// dataset holds exactly `expected` and 3, and that the stream, caught up,
/// replays to that, keys 1, 2, 3 in commit order. `context` explains a
/// failure.
async fn write_third_once_settled(
    ds: Dataset,
    conn: &Connection,
    admin_client: &mut AdminClient,
    data_dir: &Path,
    mut expected: BTreeMap<Vec<u8>, Vec<u8>>,
    context: &str,
) {
    let next = pay_record(3, "AFTER", 3);
    let started = Instant::now();
    let mut refusals = Vec::new();
    while let Err(error) = ds.put(0, RplOptions::direct(), 0, next.clone()).await {
        refusals.push(error.to_string());
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "writes stayed refused: {refusals:?} ({context})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    expected.insert(next[..4].to_vec(), next);
    ds.close().await.unwrap();
    assert_eq!(records(conn, "PAY.MASTER").await, expected, "{context}");
    caught_up(admin_client).await;
    let (lines, _) = dense_stream(data_dir);
    assert_eq!(
        replay(&lines, "PAY.MASTER"),
        expected,
        "the stream replays to the records ({context})"
    );
    let order: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["key"].as_str())
        .collect();
    assert_eq!(
        order,
        ["30303031", "30303032", "30303033"],
        "the stream in commit order ({context})"
    );
}

/// vsamrd as a process of its own: SIGKILLed when dropped.
struct Process {
    child: std::process::Child,
    /// The address it serves.
    address: String,
    /// The port of its admin interface.
    admin_port: u16,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An advisory lock (`classid`, `objid`) held by a psql session of its
/// own, until its stdin (the second value) is dropped and the process
/// waited for: the session ends, and the lock with it.
async fn hold_advisory_lock(
    postgres: &vsam_conformance::Postgres,
    classid: u32,
    objid: u32,
) -> (std::process::Child, std::process::ChildStdin) {
    let mut holder = std::process::Command::new("psql")
        .args(["-X", "-q", "-A", "-t", &postgres.url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("psql is installed by scripts/setup");
    let mut holding = holder.stdin.take().unwrap();
    use std::io::Write as _;
    writeln!(holding, "SELECT pg_advisory_lock({classid}, {objid});").unwrap();
    let granted = format!(
        "select count(*) from pg_locks where locktype = 'advisory' and classid = {classid} and objid = {objid} and granted"
    );
    let started = Instant::now();
    while postgres.psql("vsam", &granted).unwrap().trim() != "1" {
        assert!(started.elapsed() < Duration::from_secs(30), "no lock held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (holder, holding)
}

/// vsamrd as a process of its own (it can be SIGKILLed) on `data_dir`
/// with `extra`, on free ports, and a connection to it once it serves, if
/// that is within `limit`. A port found free can be taken by another
/// socket before vsamrd binds it: vsamrd then exits at once saying so, and
/// is started again on other ports.
async fn spawn_vsamrd(
    data_dir: &Path,
    extra: &str,
    limit: Duration,
) -> (Process, Option<Connection>) {
    let log = data_dir.join("vsamrd.log");
    for _ in 0..5 {
        let (port, admin_port) = (vsam_tests::free_port(), vsam_tests::free_port());
        let config = data_dir.join("vsamrd.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n{}",
                data_dir.display(),
                sections(extra)
            ),
        )
        .unwrap();
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let logged_before = log_file.metadata().unwrap().len() as usize;
        let child = std::process::Command::new(vsam_tests::vsamrd_binary())
            .arg("--config")
            .arg(&config)
            .env("VSAMRD_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut process = Process {
            child,
            address: format!("127.0.0.1:{port}"),
            admin_port,
        };
        let started = Instant::now();
        loop {
            if let Some(status) = process.child.try_wait().unwrap() {
                let text = std::fs::read(&log).unwrap();
                let this_start = String::from_utf8_lossy(&text[logged_before..]).to_string();
                assert!(
                    this_start.contains("Address already in use"),
                    "vsamrd exited at start ({status}):\n{this_start}"
                );
                break;
            }
            let attempt = tokio::time::timeout(
                Duration::from_millis(500),
                Connection::connect(&process.address),
            );
            if let Ok(Ok(conn)) = attempt.await {
                return (process, Some(conn));
            }
            if started.elapsed() >= limit {
                return (process, None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    panic!("vsamrd found its ports taken 5 times")
}

/// A connection to `address` once vsamrd serves there, or None after
/// `limit`.
async fn connect_within(address: &str, limit: Duration) -> Option<Connection> {
    let started = Instant::now();
    while started.elapsed() < limit {
        let attempt =
            tokio::time::timeout(Duration::from_millis(500), Connection::connect(address));
        if let Ok(Ok(conn)) = attempt.await {
            return Some(conn);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// vsamrd is SIGKILLed while PostgreSQL runs a group's COMMIT, and is
/// started again before that COMMIT ends (PostgreSQL finishes it without
/// the client): the restarted server reads the outbox back only once that
/// transaction has ended, so the group reaches the stream in its place,
/// and its row is not emptied away unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_still_running_when_vsamrd_is_killed_reaches_the_stream_after_the_restart() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (extra, spec) = primary_on_postgres(&postgres);
    // The COMMIT below waits longer than the default call limit.
    let extra = extra.replace(
        "[backends.pg]\n",
        "[backends.pg]\ncall_timeout_ms = 60000\n",
    );
    let (first, conn) = spawn_vsamrd(dir.path(), &extra, Duration::from_secs(60)).await;
    let conn = conn.expect("vsamrd started");
    let (ds, mut expected) = define_with_first_record(&conn, spec).await;

    // Every COMMIT of an outbox row waits for an advisory lock this test
    // holds in a session of its own.
    let (mut holder, holding) = hold_advisory_lock(&postgres, 7742, 4242).await;
    let sql = |text: &str| postgres.psql("vsam", text).unwrap().trim().to_string();
    sql(
        "CREATE FUNCTION held_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(7742, 4242); RETURN NULL; END $$; \
         CREATE CONSTRAINT TRIGGER held_commit AFTER INSERT ON _vsamrd_change_outbox DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION held_commit();",
    );
    let held = pay_record(2, "HELD", 2);
    let write = {
        let (ds, held) = (ds.clone(), held.clone());
        tokio::spawn(async move { ds.put(0, RplOptions::direct(), 0, held).await })
    };
    let started = Instant::now();
    while sql(
        "select count(*) from pg_stat_activity where query = 'COMMIT' and wait_event_type = 'Lock'",
    ) != "1"
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the COMMIT never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(first);
    assert!(write.await.unwrap().is_err(), "vsamrd was killed first");
    drop((ds, conn));
    // PostgreSQL goes on with the COMMIT, and will make it.
    expected.insert(held[..4].to_vec(), held);

    let (second, serving) = spawn_vsamrd(dir.path(), &extra, Duration::from_secs(3)).await;
    // Its start-up reads the outbox back; the COMMIT ends a moment after
    // (or once vsamrd is serving, if it serves before it reads).
    drop(holding);
    holder.wait().unwrap();

    let conn = match serving {
        Some(conn) => conn,
        None => connect_within(&second.address, Duration::from_secs(60))
            .await
            .expect("vsamrd started again"),
    };
    sql("DROP TRIGGER held_commit ON _vsamrd_change_outbox; DROP FUNCTION held_commit();");
    let ds = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Update, 1)
        .await
        .unwrap();
    let token = read_token(&dir.path().join("admin.token")).unwrap();
    let mut admin_client = AdminClient::connect(&format!("127.0.0.1:{}", second.admin_port), token)
        .await
        .unwrap();
    write_third_once_settled(
        ds,
        &conn,
        &mut admin_client,
        dir.path(),
        expected,
        "vsamrd killed during a COMMIT and started again before it ended",
    )
    .await;
    drop(conn);
    drop(second);
}

/// A mirror and the stream of a dataset on a PostgreSQL database that a
/// second server joins: that server's writes never pass through the first
/// one's change log, so the mirror stops, saying why (rather than drift
/// from its primary unseen), and the stream says it lacks them. Started
/// again alone on the database, the first server copies the dataset to the
/// mirror again, the other server's record among it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_of_a_dataset_other_servers_write_stops_and_says_why() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let (primary, spec) = primary_on_postgres(&postgres);
    let mirrored = format!("{primary}{MIRRORED_TO_REPORT}[metrics]\nlisten = \"127.0.0.1:0\"\n");
    let dir = tempfile::tempdir().unwrap();
    let first = start_in(dir.path(), &mirrored).await;
    let conn = Connection::connect(&first.addr.to_string()).await.unwrap();
    let (ds, _) = define_with_first_record(&conn, spec).await;
    let mut first_admin = admin(&first, dir.path()).await;
    caught_up(&mut first_admin).await;
    assert_eq!(verify(&mut first_admin, "report", "PAY.MASTER").await, 1);

    let other_dir = tempfile::tempdir().unwrap();
    let other = start_in(other_dir.path(), &primary).await;
    let other_conn = Connection::connect(&other.addr.to_string()).await.unwrap();
    let on_other = Dataset::open(&other_conn, "PAY.MASTER", OpenIntent::Update, 1)
        .await
        .unwrap();
    on_other
        .put(0, RplOptions::direct(), 0, pay_record(2, "OTHER", 200))
        .await
        .unwrap();
    let started = Instant::now();
    let report = loop {
        let report = mirrors(&mut first_admin).await;
        let stopped = row(&report, "report").phase.starts_with("stopped");
        if stopped && report.stream.as_ref().is_some_and(|s| s.missing.is_some()) {
            break report;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "neither the mirror nor the stream said the other server's writes pass them by: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let phase = &row(&report, "report").phase;
    for says in [
        "dataset PAY.MASTER is on backend pg",
        "other vsamrd servers write too",
        "this mirror would miss them",
        "copies every dataset to it again",
    ] {
        assert!(phase.contains(says), "{phase}");
    }
    let missing = report.stream.unwrap().missing.unwrap();
    assert!(
        missing.contains("other vsamrd servers write too")
            && missing.contains("this server's changes only"),
        "{missing}"
    );
    // Writes on the first server go on; its metrics say what passes by.
    update(&ds, pay_record(1, "AFTER", 2)).await.unwrap();
    let (_, metrics) =
        vsam_tests::http_get(&first.metrics_addr.unwrap().to_string(), "/metrics").await;
    for series in [
        "vsamrd_mirror_failing{mirror=\"report\"} 1",
        "vsamrd_change_stream_failing 1",
    ] {
        assert!(
            metrics.lines().any(|line| line.starts_with(series)),
            "{series} in\n{metrics}"
        );
    }

    drop((on_other, other_conn));
    other.stop().await;
    ds.close().await.unwrap();
    drop(conn);
    first.stop().await;
    // Stopped, a server leaves no connection behind (its lock session, its
    // plugins' and its own), though an admin client is still connected to
    // it: the restarted one is alone on the database.
    let connections = || {
        postgres
            .psql(
                "vsam",
                "select count(*) from pg_stat_activity where application_name like 'vsamrd%'",
            )
            .unwrap()
            .trim()
            .to_string()
    };
    let stopped = Instant::now();
    while connections() != "0" {
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "{} connections left by the stopped servers",
            connections()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = start_in(dir.path(), &mirrored).await;
    let mut first_admin = admin(&first, dir.path()).await;
    let report = caught_up(&mut first_admin).await;
    assert_eq!(row(&report, "report").phase, "following");
    assert_eq!(verify(&mut first_admin, "report", "PAY.MASTER").await, 2);
    assert!(report.stream.unwrap().missing.is_none());
    let (_, metrics) =
        vsam_tests::http_get(&first.metrics_addr.unwrap().to_string(), "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("vsamrd_change_stream_failing 0")),
        "{metrics}"
    );
    first.stop().await;
}

/// A server started again before the database has ended the session of the
/// one it replaces (SIGKILLed a moment ago; here a psql session holds the
/// database's solo lock as it did) waits for that session, then holds the
/// database alone: it is no fleet, and its mirror follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_while_a_gone_server_still_holds_the_database_is_alone_and_mirrors() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let (primary, spec) = primary_on_postgres(&postgres);
    let mirrored = format!("{primary}{MIRRORED_TO_REPORT}");
    // The solo lock ('vsam', 'solo'; see host/src/fleet/solo.rs).
    let (mut holder, holding) = hold_advisory_lock(&postgres, 1987273069, 1936682095).await;
    let dir = tempfile::tempdir().unwrap();
    let starting = {
        let path = dir.path().to_path_buf();
        tokio::spawn(async move { start_in(&path, &mirrored).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(holding);
    holder.wait().unwrap();
    let server = starting.await.unwrap();
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    let (ds, _) = define_with_first_record(&conn, spec).await;
    let mut admin_client = admin(&server, dir.path()).await;
    let report = caught_up(&mut admin_client).await;
    assert_eq!(row(&report, "report").phase, "following");
    assert!(report.stream.unwrap().missing.is_none());
    assert_eq!(verify(&mut admin_client, "report", "PAY.MASTER").await, 1);
    ds.close().await.unwrap();
    drop(conn);
    server.stop().await;
}

/// A mirror's tables on a PostgreSQL database and a dataset of the same
/// name never share that database: a DEFINE of the name there is refused,
/// naming the mirror (it would adopt the mirror's tables, which the mirror
/// goes on writing); a second server's mirror of a dataset of that name is
/// refused there too, writing nothing (the two would overwrite each
/// other). Once a reload removes the first mirror, the name is free, and a
/// DEFINE there adopts the mirror's records: a cut-over to the mirror.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_and_a_dataset_of_one_name_never_share_a_database() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let (pgm, mirror_to_pgm) = mirror_sections(&postgres);
    let keeper_dir = tempfile::tempdir().unwrap();
    let keeper = start_from_file(keeper_dir.path(), &mirror_to_pgm).await;
    let (ds, mirrored) = keep_pay_master(&keeper, &keeper_dir.path().join("data")).await;

    // Another server defines the name on that database: refused.
    let (primary, spec) = primary_on_postgres(&postgres);
    let other_dir = tempfile::tempdir().unwrap();
    let other = start_in(other_dir.path(), &primary).await;
    let other_conn = Connection::connect(&other.addr.to_string()).await.unwrap();
    assert_kept_by_mirror(vsam_client::define(&other_conn, spec.clone()).await);

    // A second server mirrors its own PAY.MASTER there: its mirror says
    // why it cannot, and writes nothing.
    let second_dir = tempfile::tempdir().unwrap();
    let second = start_in(second_dir.path(), &mirror_to_pgm).await;
    let (_second_conn, second_ds) = open_pay(&second).await;
    second_ds
        .put(0, RplOptions::direct(), 0, pay_record(2, "SECOND", 2))
        .await
        .unwrap();
    let mut second_admin = admin(&second, second_dir.path()).await;
    let refused = row_once(
        &mut second_admin,
        "pgm",
        Duration::from_secs(15),
        "the second mirror did not say why it cannot keep PAY.MASTER",
        |m| last_error(m).contains("the two mirrors would overwrite each other"),
    )
    .await;
    let error = last_error(&refused);
    assert!(
        error.contains("mirror pgm cannot keep dataset PAY.MASTER"),
        "{error}"
    );
    let rows = postgres
        .psql("vsam", "select count(*) from pay_master")
        .unwrap();
    assert_eq!(rows.trim(), "1", "the first mirror's record alone");

    // The second server stops (its mirror would take the name once free);
    // a reload removes the first mirror: the name is free.
    drop(second_ds);
    second.stop().await;
    write_config(keeper_dir.path(), &pgm);
    let reload = keeper.reloader.reload("test").await;
    assert!(reload.error.is_none(), "{reload:?}");
    define_once_given_back(&other_conn, spec).await;
    assert_eq!(
        records(&other_conn, "PAY.MASTER").await,
        BTreeMap::from([(mirrored[..4].to_vec(), mirrored)])
    );
    other.stop().await;
    drop(ds);
    keeper.stop().await;
}

/// A mirror removed from the configuration while its server is down gives
/// its names back when the server starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_removed_while_its_server_is_down_gives_its_names_back_at_start() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let (pgm, mirror_to_pgm) = mirror_sections(&postgres);
    let keeper_dir = tempfile::tempdir().unwrap();
    let keeper = start_in(keeper_dir.path(), &mirror_to_pgm).await;
    let (ds, _) = keep_pay_master(&keeper, keeper_dir.path()).await;
    ds.close().await.unwrap();
    keeper.stop().await;
    let positions = "select count(*) from _vsamrd_mirror_applied where mirror = 'pgm'";
    assert_eq!(
        postgres.psql("vsam", positions).unwrap().trim(),
        "1",
        "the mirror recorded how far it applied the log"
    );
    let (primary, spec) = primary_on_postgres(&postgres);
    let other_dir = tempfile::tempdir().unwrap();
    let other = start_in(other_dir.path(), &primary).await;
    let other_conn = Connection::connect(&other.addr.to_string()).await.unwrap();
    assert_kept_by_mirror(vsam_client::define(&other_conn, spec.clone()).await);
    let keeper = start_in(keeper_dir.path(), &pgm).await;
    define_once_given_back(&other_conn, spec).await;
    assert!(
        !keeper_dir.path().join("changes/mirrors/pgm.json").exists(),
        "the removed mirror's state is gone"
    );
    assert_eq!(
        postgres.psql("vsam", positions).unwrap().trim(),
        "0",
        "and so is its position on its database"
    );
    other.stop().await;
    keeper.stop().await;
}

/// PAY.MASTER of `server`, open for update (defined already).
async fn reopen_pay(server: &RunningServer) -> (Connection, Dataset) {
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    let ds = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Update, 1)
        .await
        .unwrap();
    (conn, ds)
}

/// A data dir restored from an older copy: a mirror on PostgreSQL still
/// holds the changes made after the copy, which its primary no longer
/// does. The mirror records in its database how far it applied the log,
/// finds itself past the restored log's end at the start, and copies every
/// dataset again: verify finds it equal to its primary. Before, it went on
/// from the restored position and kept what the primary had lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_on_postgresql_of_a_restored_data_dir_copies_everything_again() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let (_, mirror_to_pgm) = mirror_sections(&postgres);
    restored_under_mirrors(&mirror_to_pgm, &["pgm"]).await;
}

/// The same for mirrors on the other stores outside the data dir: an
/// SQLite file and a CSV directory elsewhere record how far they applied
/// the log in a file beside them, an S3 bucket in an object beside the
/// claim. Before, each needed `verify` and `resync` by hand after a
/// restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_on_sqlite_csv_and_s3_outside_the_data_dir_tell_a_restored_data_dir() {
    let seaweed = vsam_conformance::SeaweedFs::start().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let backends = format!(
        "[plugins.s3]\npath = \"{S3_WASM}\"\n\
         [backends.away]\nplugin = \"sql\"\ndatabase = \"sqlite:{}\"\n\
         [backends.awayfiles]\nplugin = \"csv\"\ndirectory = \"{}\"\n\
         [backends.bucket]\nplugin = \"s3\"\nbucket = {}\n",
        outside.path().join("away.db").display(),
        outside.path().join("files").display(),
        seaweed.bucket_table()
    );
    let mirrored = format!(
        "{backends}[[mirrors]]\ndatasets = \"PAY.**\"\nbackends = [\"away\", \"awayfiles\", \"bucket\"]\n"
    );
    let data = restored_under_mirrors(&mirrored, &["away", "awayfiles", "bucket"]).await;
    // Where they recorded it: a file beside the SQLite file, one in the
    // CSV directory, an object in the bucket.
    let log_id = std::fs::read_to_string(data.path().join("changes/log/id")).unwrap();
    let object = format!(".vsamrd-mirror-applied.{}.bucket", log_id.trim());
    let bucket = vsam_tests::bucket_grant(&seaweed);
    let beside = |start: &Path| {
        let (dir, name) = (start.parent().unwrap(), start.file_name().unwrap());
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|file| file.starts_with(&*name.to_string_lossy()))
            .count()
    };
    assert_eq!(
        beside(&outside.path().join("away.db.vsamrd-mirror-applied.")),
        1
    );
    assert_eq!(
        beside(&outside.path().join("files/.vsamrd-mirror-applied.")),
        1
    );
    assert!(bucket.get(&object).await.unwrap().is_some(), "{object}");

    // The mirrors removed from the configuration while the server was
    // down: their records go at the next start.
    let server = start_in(data.path(), &backends).await;
    let started = Instant::now();
    while beside(&outside.path().join("away.db.vsamrd-mirror-applied.")) > 0
        || beside(&outside.path().join("files/.vsamrd-mirror-applied.")) > 0
        || bucket.get(&object).await.unwrap().is_some()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the removed mirrors' records are still there"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

/// Inserts PAY.MASTER records `ids`, each named `name`.
async fn insert_pay(ds: &Dataset, ids: std::ops::RangeInclusive<u32>, name: &str) {
    for id in ids {
        ds.put(0, RplOptions::direct(), 0, pay_record(id, name, 100))
            .await
            .unwrap();
    }
}

/// Writes 20 records of PAY.MASTER under `mirrors` (configured by
/// `extra`), copies the stopped data dir, writes 20 more, erases one and
/// changes one, and restores the copy: every mirror is level with the
/// restored primary at the next start (20 records), and follows on. The
/// data dir is returned, its server stopped.
async fn restored_under_mirrors(extra: &str, mirrors: &[&str]) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let verify_all = async |admin_client: &mut AdminClient, expected: u64| {
        for mirror in mirrors {
            assert_eq!(
                verify(admin_client, mirror, "PAY.MASTER").await,
                expected,
                "mirror {mirror}"
            );
        }
    };
    let server = start_in(data.path(), extra).await;
    let (conn, ds) = open_pay(&server).await;
    insert_pay(&ds, 1..=20, "BEFORE").await;
    ds.close().await.unwrap();
    caught_up(&mut admin(&server, data.path()).await).await;
    drop(conn);
    server.stop().await;
    let older = tempfile::tempdir().unwrap();
    copy_stopped_data_dir(data.path(), older.path());

    // After the copy: records added, one erased, one changed; all mirrored.
    let server = start_in(data.path(), extra).await;
    let (conn, ds) = reopen_pay(&server).await;
    insert_pay(&ds, 21..=40, "AFTER").await;
    erase(&ds, b"0001").await.unwrap();
    update(&ds, pay_record(2, "CHANGED", 7)).await.unwrap();
    ds.close().await.unwrap();
    let mut admin_client = admin(&server, data.path()).await;
    caught_up(&mut admin_client).await;
    verify_all(&mut admin_client, 39).await;
    drop((conn, admin_client));
    server.stop().await;

    // The older copy put back in the data dir's place.
    std::fs::remove_dir_all(data.path()).unwrap();
    std::fs::create_dir(data.path()).unwrap();
    copy_stopped_data_dir(older.path(), data.path());
    let server = start_in(data.path(), extra).await;
    let (conn, ds) = reopen_pay(&server).await;
    assert_eq!(
        records(&conn, "PAY.MASTER").await.len(),
        20,
        "the restored primary"
    );
    let mut admin_client = admin(&server, data.path()).await;
    caught_up(&mut admin_client).await;
    // Level with the restored primary.
    verify_all(&mut admin_client, 20).await;
    // It follows on from there.
    update(&ds, pay_record(3, "LATER", 9)).await.unwrap();
    ds.close().await.unwrap();
    caught_up(&mut admin_client).await;
    verify_all(&mut admin_client, 20).await;
    drop((conn, admin_client));
    server.stop().await;
    data
}

/// A live migration never copies a dataset into storage a mirror keeps:
/// to the backend that mirrors it on the same server, or to a database
/// where another server's mirror keeps a dataset of that name (an empty
/// one too, which the copy would fill, and a failed copy remove). Both are
/// refused before anything is written, naming the mirror.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_never_copies_into_a_mirrors_storage() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let (_, mirror_to_pgm) = mirror_sections(&postgres);
    let keeper_dir = tempfile::tempdir().unwrap();
    let keeper = start_in(keeper_dir.path(), &mirror_to_pgm).await;
    let (ds, _) = keep_pay_master(&keeper, keeper_dir.path()).await;
    let empty = DatasetSpec {
        name: "PAY.EMPTY".into(),
        ..pay_spec()
    };
    let conn = Connection::connect(&keeper.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, empty.clone()).await.unwrap();
    let mut keeper_admin = admin(&keeper, keeper_dir.path()).await;
    caught_up(&mut keeper_admin).await;
    assert_eq!(verify(&mut keeper_admin, "pgm", "PAY.EMPTY").await, 0);
    let claimed = postgres
        .psql(
            "vsam",
            "select mirror from _vsamrd_mirrored where name = 'PAY.EMPTY'",
        )
        .unwrap();
    assert_eq!(
        claimed.trim(),
        "pgm",
        "the mirror claimed the name it keeps"
    );
    let refused = refused_migration(&mut keeper_admin, "PAY.MASTER", "pgm").await;
    assert!(
        refused.contains("backend pgm is a mirror of PAY.MASTER")
            && refused.contains("remove pgm from the mirrors of PAY.MASTER"),
        "{refused}"
    );
    ds.close().await.unwrap();
    keeper.stop().await;
    vsam_tests::until_servers_on(&postgres, 0).await;

    // Another server, alone on the database, moves its own PAY.EMPTY
    // there: the other server's mirror keeps that name.
    let other_dir = tempfile::tempdir().unwrap();
    let pg = format!(
        "[backends.pg]\nplugin = \"sql\"\ndatabase = \"{}\"\n",
        postgres.url
    );
    let other = start_in(other_dir.path(), &pg).await;
    let other_conn = Connection::connect(&other.addr.to_string()).await.unwrap();
    vsam_client::define(&other_conn, empty).await.unwrap();
    let ds = Dataset::open(&other_conn, "PAY.EMPTY", OpenIntent::Output, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, pay_record(7, "OTHER", 7))
        .await
        .unwrap();
    ds.close().await.unwrap();
    let mut other_admin = admin(&other, other_dir.path()).await;
    let refused = refused_migration(&mut other_admin, "PAY.EMPTY", "pg").await;
    assert!(
        refused
            .contains("holds a mirror of a dataset named PAY.EMPTY, kept by mirror pgm of vsamrd"),
        "{refused}"
    );
    let rows = postgres
        .psql("vsam", "select count(*) from pay_empty")
        .unwrap();
    assert_eq!(rows.trim(), "0", "the mirror's table is untouched");
    other.stop().await;
}

/// A mirror added while its dataset is migrated away from the mirror's
/// backend (the migration's old copy follows there until `--finalize`)
/// waits, saying why, instead of copying into the old copy, which the
/// finalize would then remove from under it; once finalized, it copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_waits_while_a_migration_keeps_its_old_copy_on_the_mirrors_backend() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_from_file(dir.path(), "").await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    let spec = DatasetSpec {
        backend: "report".into(),
        ..pay_spec()
    };
    vsam_client::define(&conn, spec).await.unwrap();
    let ds = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Update, 1)
        .await
        .unwrap();
    for id in 0..50 {
        ds.put(0, RplOptions::direct(), 0, pay_record(id, "MOVED", 1))
            .await
            .unwrap();
    }
    let mut admin_client = admin(&server, &dir.path().join("data")).await;
    migrate_until_cut_over(&mut admin_client, "PAY.MASTER", "main").await;
    // The mirror of PAY.* on `report`, where the old copy follows.
    write_config(
        dir.path(),
        "[[mirrors]]\ndatasets = \"PAY.*\"\nbackends = [\"report\"]\n",
    );
    let reload = server.reloader.reload("test").await;
    assert!(reload.error.is_none(), "{reload:?}");
    ds.put(0, RplOptions::direct(), 0, pay_record(50, "DURING", 2))
        .await
        .unwrap();
    row_once(
        &mut admin_client,
        "report",
        Duration::from_secs(30),
        "the mirror did not say why it waits",
        |m| last_error(m).contains("being migrated to or from backend report"),
    )
    .await;
    admin_client
        .request(AdminCommand::Finalize {
            dataset: "PAY.MASTER".into(),
        })
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, pay_record(51, "AFTER", 3))
        .await
        .unwrap();
    caught_up(&mut admin_client).await;
    assert_eq!(verify(&mut admin_client, "report", "PAY.MASTER").await, 52);
    ds.close().await.unwrap();
    server.stop().await;
}

/// Backend `pgm` on `postgres`'s database, alone and with a mirror of
/// PAY.** on it.
fn mirror_sections(postgres: &vsam_conformance::Postgres) -> (String, String) {
    let pgm = format!(
        "[backends.pgm]\nplugin = \"sql\"\ndatabase = \"{}\"\n",
        postgres.url
    );
    let mirrored = format!("{pgm}[[mirrors]]\ndatasets = \"PAY.**\"\nbackends = [\"pgm\"]\n");
    (pgm, mirrored)
}

/// Defines PAY.MASTER on `server` (its default route), writes a record,
/// and waits until mirror `pgm` keeps it: the dataset, and the record.
async fn keep_pay_master(server: &RunningServer, data_dir: &Path) -> (Dataset, Vec<u8>) {
    let (_conn, ds) = open_pay(server).await;
    let record = pay_record(1, "MIRRORED", 1);
    ds.put(0, RplOptions::direct(), 0, record.clone())
        .await
        .unwrap();
    let mut admin_client = admin(server, data_dir).await;
    caught_up(&mut admin_client).await;
    assert_eq!(verify(&mut admin_client, "pgm", "PAY.MASTER").await, 1);
    (ds, record)
}

/// A DEFINE refused because a mirror keeps the name on the database.
fn assert_kept_by_mirror(defined: Result<DatasetSpec, ClientError>) {
    let refused = defined.unwrap_err();
    let vsam = refused.vsam().expect("a VSAM answer");
    assert_eq!((vsam.r15(), vsam.fdbk()), (8, 8), "{refused}");
    let message = refused.to_string();
    assert!(
        message.contains("PAY.MASTER DEFINE")
            && message
                .contains("holds a mirror of a dataset of that name, kept by mirror pgm of vsamrd"),
        "{message}"
    );
}

/// DEFINEs `spec` once the mirror that kept its name has given it back
/// (within 15 s).
async fn define_once_given_back(conn: &Connection, spec: DatasetSpec) {
    let started = Instant::now();
    while let Err(error) = vsam_client::define(conn, spec.clone()).await {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the removed mirror kept its name: {error}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The rows of the stream's table `table`, by sequence: each row's
/// `change` object, checked against the row's own columns.
fn table_stream(postgres: &vsam_conformance::Postgres, table: &str) -> Vec<serde_json::Value> {
    let text = postgres
        .psql(
            "vsam",
            &format!(
                "select json_build_object('sequence', sequence, 'dataset', dataset, 'operation', operation, 'key', key, 'change', change) from {table} order by sequence"
            ),
        )
        .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let row: serde_json::Value = serde_json::from_str(l).unwrap();
            let change = row["change"].clone();
            for column in ["sequence", "dataset", "operation", "key"] {
                assert_eq!(row[column], change[column], "column {column} of {row}");
            }
            change
        })
        .collect()
}

/// Copies the data dir of a server just stopped into the empty `to`: its
/// databases are closed when `stop` returns, so a plain copy is whole.
fn copy_stopped_data_dir(from: &Path, to: &Path) {
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(from.join("."))
        .arg(to)
        .output()
        .unwrap();
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
}

/// The SQLite logs (`-wal` and `-shm` files) in `dir` and below: an open
/// database has them, a closed one not.
fn sqlite_logs(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(sqlite_logs(&path));
        } else if let Some(name) = path.file_name().and_then(|n| n.to_str())
            && (name.ends_with("-wal") || name.ends_with("-shm"))
        {
            found.push(path.display().to_string());
        }
    }
    found.sort();
    found
}

/// A server that stops closes every database it opened (the backends'
/// writers and readers, the mirrors', its own connections to the
/// outboxes) before `stop` returns: the data dir is then as the next
/// process finds it, and a copy of it taken at once is whole. Before, the
/// connections closed a moment later, and a copy could see an SQLite log
/// vanish under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_has_closed_its_databases() {
    let data = tempfile::tempdir().unwrap();
    let (server, conn) = mirrored_and_changed(data.path()).await;
    let mut admin_client = admin(&server, data.path()).await;
    caught_up(&mut admin_client).await;
    let open = sqlite_logs(data.path());
    for database in ["main.db", "report.db"] {
        assert!(
            open.iter()
                .any(|log| log.ends_with(&format!("{database}-wal"))),
            "a running server has {database} open: {open:?}"
        );
    }
    drop((conn, admin_client));
    server.stop().await;
    assert_eq!(sqlite_logs(data.path()), Vec::<String>::new());
    let copy = tempfile::tempdir().unwrap();
    copy_stopped_data_dir(data.path(), copy.path());
    let server = start_in(copy.path(), MIRRORED).await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    let mut admin_client = admin(&server, copy.path()).await;
    let master = records(&conn, "PAY.MASTER").await;
    assert!(master.len() > 100);
    assert_eq!(
        verify(&mut admin_client, "report", "PAY.MASTER").await,
        master.len() as u64,
        "the copy's mirror holds what its primary holds"
    );
    drop((conn, admin_client));
    server.stop().await;
}

/// The change stream's error, once its status shows one (within 30 s).
async fn stream_error(admin: &mut AdminClient) -> String {
    let started = Instant::now();
    loop {
        let status = mirrors(admin).await.stream.unwrap();
        if let Some(error) = status.last_error {
            return error;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `stream = "postgres"`: every committed change as a row of a table, in
/// commit order, numbered without gap or repeat across a restart, the same
/// objects as the file's lines; old rows deleted past the changes kept;
/// a second server (another change log) refused the table, naming the
/// cure, while its own writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_to_a_postgresql_table_carries_every_change_once_and_belongs_to_one_server() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let data = tempfile::tempdir().unwrap();
    let stream = |keep: u64| {
        format!(
            "[changes]\nstream = \"postgres\"\nstream_database = \"{}\"\nstream_table = \"pay_changes\"\nstream_keep_changes = {keep}\n",
            postgres.url
        )
    };
    // The data dir as round 1 leaves it, put back later as a restore of
    // an older copy would.
    let older = tempfile::tempdir().unwrap();
    for round in 1..=2u32 {
        let server = start_in(data.path(), &stream(1_000_000)).await;
        let address = server.addr.to_string();
        let conn = Connection::connect(&address).await.unwrap();
        if round == 1 {
            vsam_client::define(&conn, pay_spec()).await.unwrap();
            vsam_client::define(&conn, pay_log_spec()).await.unwrap();
        }
        change_everything(&address, round).await;
        // LOW-VALUES in a text field: its decoded field holds U+0000.
        let ds = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Update, 1)
            .await
            .unwrap();
        update(&ds, pay_record(round * 1000 + 1, "LOW\0\0VALUE", 7))
            .await
            .unwrap();
        ds.close().await.unwrap();
        let mut admin_client = admin(&server, data.path()).await;
        let report = caught_up(&mut admin_client).await;
        let status = report.stream.clone().unwrap();
        assert_eq!(status.last_error, None, "{status:?}");
        assert!(
            status.file.starts_with("table pay_changes of postgres://"),
            "{status:?}"
        );
        assert!(
            !status.file.contains(":vsam@"),
            "the password is hidden: {status:?}"
        );

        let changes = table_stream(&postgres, "pay_changes");
        let sequences: Vec<u64> = changes
            .iter()
            .map(|c| c["sequence"].as_u64().unwrap())
            .collect();
        assert_eq!(
            sequences,
            (1..=report.committed).collect::<Vec<_>>(),
            "every change once, in order, across the restart"
        );
        assert_eq!(
            replay(&changes, "PAY.MASTER"),
            records(&conn, "PAY.MASTER").await
        );
        assert_eq!(replay(&changes, "PAY.LOG"), records(&conn, "PAY.LOG").await);
        // Decoded by the copybook, as in the file.
        let replaced = changes
            .iter()
            .find(|c| c["operation"] == "replace" && c["dataset"] == "PAY.MASTER")
            .unwrap();
        assert_eq!(replaced["fields"]["PAY-NAME"], "CHANGED   ");
        assert!(
            changes
                .iter()
                .any(|c| c["fields"]["PAY-NAME"] == "LOW\0\0VALUE"),
            "the record with LOW-VALUES is in the table"
        );
        if round == 2 {
            // The position's row deleted under the running stream: the
            // stream stops, says how to put it back, and goes on once it is.
            postgres
                .psql("vsam", "delete from pay_changes_position")
                .unwrap();
            let ds = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Update, 1)
                .await
                .unwrap();
            update(&ds, pay_record(round * 1000 + 2, "AFTER", 9))
                .await
                .unwrap();
            ds.close().await.unwrap();
            let lost = stream_error(&mut admin_client).await;
            let (_, cure) = lost.split_once("put it back with ").expect(&lost);
            let (insert, _) = cure.split_once(", or empty").unwrap();
            postgres.psql("vsam", insert).unwrap();
            let report = caught_up(&mut admin_client).await;
            assert_eq!(report.stream.unwrap().last_error, None);
            let sequences: Vec<u64> = table_stream(&postgres, "pay_changes")
                .iter()
                .map(|c| c["sequence"].as_u64().unwrap())
                .collect();
            assert_eq!(sequences, (1..=report.committed).collect::<Vec<_>>());
        }
        drop(conn);
        server.stop().await;
        if round == 1 {
            copy_stopped_data_dir(data.path(), older.path());
        }
    }

    // Another server, its own data dir and so its own change log: the
    // table is refused with the cure, and its writes are not held.
    let other_data = tempfile::tempdir().unwrap();
    let other = start_in(other_data.path(), &stream(1_000_000)).await;
    let before = table_stream(&postgres, "pay_changes").len();
    let conn = Connection::connect(&other.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, pay_spec()).await.unwrap();
    let mut other_admin = admin(&other, other_data.path()).await;
    let refused = stream_error(&mut other_admin).await;
    assert!(
        refused.contains("carries the change stream of another change log")
            && refused.contains("changes.stream_table"),
        "{refused}"
    );
    assert_eq!(table_stream(&postgres, "pay_changes").len(), before);
    drop(conn);
    other.stop().await;

    // Fewer changes kept: the older rows go within a second or two.
    let server = start_in(data.path(), &stream(5)).await;
    change_everything(&server.addr.to_string(), 3).await;
    let mut admin_client = admin(&server, data.path()).await;
    let committed = caught_up(&mut admin_client).await.committed;
    let started = Instant::now();
    loop {
        let kept: Vec<u64> = table_stream(&postgres, "pay_changes")
            .iter()
            .map(|c| c["sequence"].as_u64().unwrap())
            .collect();
        if kept == (committed - 4..=committed).collect::<Vec<_>>() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "kept {} rows from {:?}",
            kept.len(),
            kept.first()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop().await;

    // A dataset whose table would be the stream's (PAY.CHANGES is table
    // pay_changes) on a backend of the same database: the DEFINE does not
    // take the stream's table, and the stream goes on.
    let with_pg = format!(
        "{}[backends.pg]\nplugin = \"sql\"\ndatabase = \"{}\"\n",
        stream(1_000_000),
        postgres.url
    );
    let server = start_in(data.path(), &with_pg).await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    let mut spec = pay_spec();
    spec.name = "PAY.CHANGES".into();
    spec.backend = "pg".into();
    let defined = vsam_client::define(&conn, spec).await;
    assert!(defined.is_err(), "{defined:?}");
    change_everything(&server.addr.to_string(), 4).await;
    let mut admin_client = admin(&server, data.path()).await;
    let report = caught_up(&mut admin_client).await;
    assert_eq!(report.stream.unwrap().last_error, None);
    assert_eq!(
        table_stream(&postgres, "pay_changes").last().unwrap()["sequence"],
        report.committed
    );
    drop(conn);
    server.stop().await;

    // A table of the name that is not a stream's is refused, untouched.
    postgres
        .psql(
            "vsam",
            "create table pay_foreign (id integer primary key, name text); insert into pay_foreign values (1, 'kept')",
        )
        .unwrap();
    let foreign_data = tempfile::tempdir().unwrap();
    let foreign = start_in(
        foreign_data.path(),
        &stream(1_000_000).replace("pay_changes", "pay_foreign"),
    )
    .await;
    let mut foreign_admin = admin(&foreign, foreign_data.path()).await;
    let refused = stream_error(&mut foreign_admin).await;
    assert!(
        refused.contains("table pay_foreign is there with other columns (id, name)"),
        "{refused}"
    );
    assert_eq!(
        postgres
            .psql("vsam", "select id, name from pay_foreign")
            .unwrap()
            .trim(),
        "1|kept"
    );
    foreign.stop().await;

    // The older copy of the data dir put back: its log ends before the
    // table's position. The stream does not go on past changes it would
    // never write; it says why and how, writes go on, and once the rows
    // past the log are deleted it writes the changes made since.
    let restored = start_in(older.path(), &stream(1_000_000)).await;
    let mut restored_admin = admin(&restored, older.path()).await;
    let head = mirrors(&mut restored_admin).await.committed;
    let behind = stream_error(&mut restored_admin).await;
    assert!(
        behind.contains(&format!(
            "past the end of this server's change log (sequence {head}): the data dir, or its change log, was put back from an older copy"
        )),
        "{behind}"
    );
    change_everything(&restored.addr.to_string(), 5).await;
    let (_, cure) = behind.split_once("goes on from the log: ").expect(&behind);
    postgres.psql("vsam", cure).unwrap();
    let committed = caught_up(&mut restored_admin).await.committed;
    let after_restore: Vec<u64> = table_stream(&postgres, "pay_changes")
        .iter()
        .map(|c| c["sequence"].as_u64().unwrap())
        .filter(|sequence| *sequence > head)
        .collect();
    assert!(committed > head);
    assert_eq!(after_restore, (head + 1..=committed).collect::<Vec<_>>());
    restored.stop().await;
}

/// A role that may not create tables (PostgreSQL 15: CREATE on the public
/// schema is its owner's) writes the stream's tables a DBA made from the
/// README's statements and granted it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_table_a_dba_made_is_written_by_a_role_that_may_not_create_tables() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let definition =
        vsam_host::changes::stream::table::StreamTableWriter::definition("audit_changes");
    postgres
        .psql(
            "vsam",
            &format!(
                "{definition}; \
                 REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
                 CREATE ROLE streamer LOGIN PASSWORD 'streamer'; \
                 GRANT USAGE ON SCHEMA public TO streamer; \
                 GRANT SELECT, INSERT, UPDATE, DELETE ON audit_changes, audit_changes_position TO streamer"
            ),
        )
        .unwrap();
    let (_, address) = postgres.url.split_once('@').unwrap();
    let url = format!("postgres://streamer:streamer@{address}");
    let data = tempfile::tempdir().unwrap();
    let server = start_in(
        data.path(),
        &format!(
            "[changes]\nstream = \"postgres\"\nstream_database = \"{url}\"\nstream_table = \"audit_changes\"\n"
        ),
    )
    .await;
    let (conn, ds) = open_pay(&server).await;
    for id in 0..20 {
        ds.put(0, RplOptions::direct(), 0, pay_record(id, "GRANTED", 1))
            .await
            .unwrap();
    }
    ds.close().await.unwrap();
    let mut admin_client = admin(&server, data.path()).await;
    let report = caught_up(&mut admin_client).await;
    assert_eq!(report.stream.unwrap().last_error, None);
    let changes = table_stream(&postgres, "audit_changes");
    assert_eq!(changes.len() as u64, report.committed);
    assert_eq!(
        replay(&changes, "PAY.MASTER"),
        records(&conn, "PAY.MASTER").await
    );
    // The role could not have made them.
    let refused = postgres.psql("vsam", "SET ROLE streamer; CREATE TABLE probe (x integer)");
    assert!(refused.is_err(), "{refused:?}");
    drop(conn);
    server.stop().await;
}

/// A column of a mirror's table given another type by hand (a date kept
/// as text made a `date`, for reporting) fails the batch in flight, and
/// the mirror then writes with the table's new types: it catches up
/// without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_follows_a_column_whose_type_was_changed_by_hand() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let (_, mirror_to_pgm) = mirror_sections(&postgres);
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), &mirror_to_pgm).await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    let spec = DatasetSpec {
        name: "PAY.OPENED".into(),
        max_record: 14,
        layout: "01 OPENING.\n   05 OPEN-ID PIC X(4).\n   05 OPEN-DATE PIC X(10).\n".into(),
        ..pay_spec()
    };
    vsam_client::define(&conn, spec).await.unwrap();
    let ds = Dataset::open(&conn, "PAY.OPENED", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"00012026-12-01".to_vec())
        .await
        .unwrap();
    let mut admin_client = admin(&server, dir.path()).await;
    caught_up(&mut admin_client).await;
    postgres
        .psql(
            "vsam",
            "alter table pay_opened alter column open_date type date using open_date::date",
        )
        .unwrap();
    for (id, date) in [(2, "2026-12-06"), (3, "2026-12-07")] {
        ds.put(
            0,
            RplOptions::direct(),
            0,
            format!("{id:04}{date}").into_bytes(),
        )
        .await
        .unwrap();
    }
    caught_up(&mut admin_client).await;
    assert_eq!(
        postgres
            .psql(
                "vsam",
                "select count(*) from pay_opened where open_date >= date '2026-12-06'"
            )
            .unwrap()
            .trim(),
        "2"
    );
    drop(ds);
    server.stop().await;
}

/// The change stream's settings changed by a reload take effect then: the
/// stream goes on in the same files, from its last line, with the datasets
/// it now carries (no line twice, none of the datasets it no longer
/// carries); a reload without the stream turns it off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_moves_the_change_stream_to_its_new_settings() {
    let dir = tempfile::tempdir().unwrap();
    let stream_of = |datasets: &str| {
        format!("[changes]\nstream = \"file\"\nstream_datasets = [\"{datasets}\"]\n")
    };
    let server = start_from_file(dir.path(), &stream_of("PAY.MASTER")).await;
    let data = dir.path().join("data");
    let (conn, master) = open_pay(&server).await;
    vsam_client::define(
        &conn,
        DatasetSpec {
            name: "PAY.OTHER".into(),
            ..pay_spec()
        },
    )
    .await
    .unwrap();
    let other = Dataset::open(&conn, "PAY.OTHER", OpenIntent::Update, 1)
        .await
        .unwrap();
    let write = |ids: std::ops::Range<u32>| {
        let (master, other) = (&master, &other);
        async move {
            for id in ids {
                for ds in [master, other] {
                    ds.put(0, RplOptions::direct(), 0, pay_record(id, "STREAMED", 1))
                        .await
                        .unwrap();
                }
            }
        }
    };
    let mut admin_client = admin(&server, &data).await;
    write(0..20).await;
    caught_up(&mut admin_client).await;

    write_config(dir.path(), &stream_of("PAY.OTHER"));
    let reload = server.reloader.reload("test").await;
    assert!(
        reload.error.is_none() && reload.notes.is_empty(),
        "{reload:?}"
    );
    write(20..40).await;
    caught_up(&mut admin_client).await;
    let lines = stream_lines(&data);
    let sequences: Vec<u64> = lines
        .iter()
        .map(|l| l["sequence"].as_u64().unwrap())
        .collect();
    assert!(
        sequences.windows(2).all(|pair| pair[0] < pair[1]),
        "{sequences:?}"
    );
    let records = |ids: std::ops::Range<u32>| {
        ids.map(|id| {
            let record = pay_record(id, "STREAMED", 1);
            (record[..4].to_vec(), record)
        })
        .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(replay(&lines, "PAY.MASTER"), records(0..20));
    assert_eq!(replay(&lines, "PAY.OTHER"), records(20..40));

    // Off by a reload: nothing more is written, and the status has no
    // stream.
    write_config(dir.path(), "");
    let reload = server.reloader.reload("test").await;
    assert!(
        reload.error.is_none() && reload.notes.is_empty(),
        "{reload:?}"
    );
    write(40..45).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stream_lines(&data).len(), lines.len());
    assert!(mirrors(&mut admin_client).await.stream.is_none());
    drop((master, other));
    server.stop().await;
}

/// A reload that moves the change stream while its task waits on a table
/// that does not answer (a trigger holding its INSERT) gives up after 30 s
/// and says so, leaving the task in its place; once the table answers,
/// the next reload ends it (the held changes written), and the stream
/// turned on again goes on after its last row: every change it followed
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_task_that_cannot_end_keeps_its_place_until_a_later_reload() {
    let postgres = vsam_conformance::Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let streamed = format!(
        "[changes]\nstream = \"postgres\"\nstream_database = \"{}\"\nstream_table = \"pay_changes\"\n",
        postgres.url
    );
    let server = start_from_file(dir.path(), &streamed).await;
    let data = dir.path().join("data");
    let (_conn, master) = open_pay(&server).await;
    let write = |ids: std::ops::Range<u32>| {
        let master = &master;
        async move {
            for id in ids {
                master
                    .put(0, RplOptions::direct(), 0, pay_record(id, "HELD", 1))
                    .await
                    .unwrap();
            }
        }
    };
    let mut admin_client = admin(&server, &data).await;
    write(0..5).await;
    caught_up(&mut admin_client).await;
    postgres
        .psql(
            "vsam",
            "CREATE TABLE hold (x int); INSERT INTO hold VALUES (1); \
             CREATE FUNCTION held() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               WHILE EXISTS (SELECT 1 FROM hold) LOOP PERFORM pg_sleep(0.1); END LOOP; RETURN NULL; END $$; \
             CREATE TRIGGER held BEFORE INSERT ON pay_changes FOR EACH STATEMENT EXECUTE FUNCTION held();",
        )
        .unwrap();
    write(5..8).await;

    // Off by a reload, while the task's INSERT waits in the trigger.
    write_config(dir.path(), "");
    let started = Instant::now();
    let reload = server.reloader.reload("test").await;
    assert!(started.elapsed() >= Duration::from_secs(30), "{reload:?}");
    assert!(
        reload.notes.iter().any(|note| note.contains(
            "mirrors and change stream: not changed: the change stream's task did not end within 30 s"
        )),
        "{reload:?}"
    );

    // The table answers again: the next reload ends the task and turns
    // the stream off.
    postgres.psql("vsam", "DELETE FROM hold").unwrap();
    let reload = server.reloader.reload("test").await;
    assert!(
        reload.error.is_none() && reload.notes.is_empty(),
        "{reload:?}"
    );
    assert!(mirrors(&mut admin_client).await.stream.is_none());
    write(8..10).await;

    // On again: it goes on after its last row, every change once.
    write_config(dir.path(), &streamed);
    let reload = server.reloader.reload("test").await;
    assert!(
        reload.error.is_none() && reload.notes.is_empty(),
        "{reload:?}"
    );
    let report = caught_up(&mut admin_client).await;
    let changes = table_stream(&postgres, "pay_changes");
    let sequences: Vec<u64> = changes
        .iter()
        .map(|c| c["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=report.committed).collect::<Vec<_>>());
    // The DEFINE and the eight records written while the stream was on,
    // the last three held in the trigger; not the two written while
    // nothing followed the dataset.
    assert_eq!(report.committed, 9, "{changes:#?}");
    let held = (0..8)
        .map(|id| {
            let record = pay_record(id, "HELD", 1);
            (record[..4].to_vec(), record)
        })
        .collect::<BTreeMap<_, _>>();
    assert_eq!(replay(&changes, "PAY.MASTER"), held);
    drop(master);
    server.stop().await;
}

/// The (log, backend) lanes of `main`'s SQLite outbox, and the ring's
/// slots outside them.
fn lanes_of_main(data_dir: &Path) -> (Vec<(String, String)>, i64) {
    let db = rusqlite::Connection::open(data_dir.join("main.db")).unwrap();
    let lanes = db
        .prepare("SELECT log_id, backend FROM _vsamrd_change_lanes")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let strays = db
        .query_row(
            "SELECT count(*) FROM _vsamrd_change_ring WHERE slot >> 32 NOT IN (SELECT lane FROM _vsamrd_change_lanes)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    (lanes, strays)
}

/// A changes directory removed while its server was down leaves its log's
/// lane in the primary's SQLite outbox, which no server writes again: the
/// next start removes it with its slots, and keeps the new log's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_of_a_change_log_no_longer_in_use_leaves_the_outbox_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let streamed = "[changes]\nstream = \"file\"\n";
    let server = start_in(dir.path(), streamed).await;
    let (_conn, ds) = open_pay(&server).await;
    for id in 0..3 {
        ds.put(0, RplOptions::direct(), 0, pay_record(id, "FIRST", 1))
            .await
            .unwrap();
    }
    drop(ds);
    server.stop().await;
    let (before, _) = lanes_of_main(dir.path());
    assert_eq!(before.len(), 1, "{before:?}");

    std::fs::remove_dir_all(dir.path().join("changes")).unwrap();
    let server = start_in(dir.path(), streamed).await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    let ds = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, pay_record(3, "SECOND", 1))
        .await
        .unwrap();
    drop(ds);
    server.stop().await;
    let (after, strays) = lanes_of_main(dir.path());
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after[0].0, before[0].0, "a new change log");
    assert_eq!(after[0].1, "main");
    assert_eq!(strays, 0, "slots of the removed lane stayed");
}

/// A backend renamed while its server was down leaves the lane of the
/// current log under its former name in its SQLite outbox (and its
/// datasets, which name it, unreachable): the next start reads the lane's
/// groups back and removes it. Named back, the backend writes a lane anew,
/// and the stream has every change once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_of_a_renamed_backend_is_read_back_and_leaves_the_outbox_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let side = |name: &str| {
        format!(
            "[backends.{name}]\nplugin = \"sql\"\ndatabase = \"sqlite:side.db\"\n\
             [[routing.rules]]\npattern = \"SIDE.**\"\nbackend = \"{name}\"\n\
             [changes]\nstream = \"file\"\n"
        )
    };
    let lanes = || {
        let db = rusqlite::Connection::open(dir.path().join("side.db")).unwrap();
        db.prepare("SELECT backend FROM _vsamrd_change_lanes ORDER BY lane")
            .unwrap()
            .query_map([], |row| row.get::<_, String>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    };
    let write = |server: &RunningServer, id: u32| {
        let address = server.addr.to_string();
        async move {
            let conn = Connection::connect(&address).await.unwrap();
            if id == 1 {
                let spec = DatasetSpec {
                    name: "SIDE.MASTER".into(),
                    ..pay_spec()
                };
                vsam_client::define(&conn, spec).await.unwrap();
            }
            let ds = Dataset::open(&conn, "SIDE.MASTER", OpenIntent::Update, 1)
                .await
                .unwrap();
            ds.put(0, RplOptions::direct(), 0, pay_record(id, "SIDE", 1))
                .await
                .unwrap();
        }
    };
    let server = start_in(dir.path(), &side("side")).await;
    write(&server, 1).await;
    server.stop().await;
    assert_eq!(lanes(), ["side"]);

    let server = start_in(dir.path(), &side("renamed")).await;
    server.stop().await;
    assert!(lanes().is_empty(), "{:?}", lanes());

    let server = start_in(dir.path(), &side("side")).await;
    write(&server, 2).await;
    let mut admin_client = admin(&server, dir.path()).await;
    caught_up(&mut admin_client).await;
    server.stop().await;
    assert_eq!(lanes(), ["side"]);
    let inserted: Vec<String> = stream_lines(dir.path())
        .iter()
        .filter(|l| l["operation"] == "insert")
        .map(|l| l["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(inserted, [hex::encode(b"0001"), hex::encode(b"0002")]);
}

/// A reload naming another changes directory takes effect at the next
/// start, and says so: the log, the mirrors' positions and the stream stay
/// where they are (a stream moved to new settings by the same reload goes
/// on in its own files, not in the new directory beside a log that is not
/// there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_naming_another_changes_directory_keeps_the_running_one_until_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stream = "[changes]\nstream = \"file\"\nstream_datasets = [\"PAY.MASTER\"]\n";
    let server = start_from_file(dir.path(), stream).await;
    let (_conn, ds) = open_pay(&server).await;
    let mut admin_client = admin(&server, &data).await;
    for id in 0..5 {
        ds.put(0, RplOptions::direct(), 0, pay_record(id, "BEFORE", 1))
            .await
            .unwrap();
    }
    caught_up(&mut admin_client).await;

    let elsewhere = dir.path().join("elsewhere");
    write_config(
        dir.path(),
        &format!(
            "[changes]\ndirectory = \"{}\"\nstream = \"file\"\nstream_datasets = [\"PAY.**\"]\n",
            elsewhere.display()
        ),
    );
    let reload = server.reloader.reload("test").await;
    assert!(reload.error.is_none(), "{reload:?}");
    assert!(
        reload.notes.iter().any(|note| note.starts_with(
            "changes to [changes] directory and segment_mb take effect at the next restart"
        )),
        "{reload:?}"
    );
    for id in 5..10 {
        ds.put(0, RplOptions::direct(), 0, pay_record(id, "AFTER", 1))
            .await
            .unwrap();
    }
    caught_up(&mut admin_client).await;
    assert!(
        !elsewhere.exists(),
        "the new directory was written before a restart"
    );
    let lines = stream_lines(&data);
    assert_eq!(replay(&lines, "PAY.MASTER").len(), 10);
    drop(ds);
    server.stop().await;
}

/// The rows of a CSV mirror's file for `name` (the data rows, not the
/// header), as the file reads now (its journal not replayed).
fn csv_rows(data_dir: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(data_dir.join("files").join(format!("{name}.csv")))
        .unwrap_or_default();
    text.lines().skip(1).map(str::to_string).collect()
}

/// A CSV mirror's file is what people and spreadsheet tools read: it
/// shows the dataset's latest changes seconds after they stop, not once
/// its journal has grown as long as the dataset (the mirror closes its
/// datasets on the target as a program's last CLOSE would).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_mirror_reads_as_its_dataset_seconds_after_its_changes() {
    let data = tempfile::tempdir().unwrap();
    let server = start_in(data.path(), MIRRORED).await;
    let (conn, ds) = open_pay(&server).await;
    let mut admin_client = admin(&server, data.path()).await;
    for round in 0..3 {
        for id in 1..=20u32 {
            let record = pay_record(id, &format!("ROUND{round}"), i64::from(id * 100 + round));
            if round == 0 {
                ds.put(0, RplOptions::direct(), 0, record).await.unwrap();
            } else {
                update(&ds, record).await.unwrap();
            }
        }
    }
    for id in 1..=5u32 {
        erase(&ds, format!("{id:04}").as_bytes()).await.unwrap();
    }
    caught_up(&mut admin_client).await;
    let expected: Vec<String> = (6..=20u32).map(|id| format!("{id:04},")).collect();
    let started = Instant::now();
    loop {
        let rows = csv_rows(data.path(), "PAY.MASTER");
        let keys: Vec<String> = rows.iter().map(|row| row[..5].to_string()).collect();
        if keys == expected && rows.iter().all(|row| row.contains("ROUND2")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "the mirror's CSV file after 8 s: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The primary still open and written: the next change reaches the
    // file too.
    ds.put(0, RplOptions::direct(), 0, pay_record(21, "LATE", 1))
        .await
        .unwrap();
    caught_up(&mut admin_client).await;
    let started = Instant::now();
    while !csv_rows(data.path(), "PAY.MASTER")
        .iter()
        .any(|row| row.starts_with("0021,"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "0021 not in the file"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(verify(&mut admin_client, "files", "PAY.MASTER").await, 16);
    ds.close().await.unwrap();
    drop(conn);
    server.stop().await;
}

/// A server whose `files` backend (CSV) has `memory_limit_mb = 24`, with
/// `extra` and a metrics listener.
async fn start_with_small_files(data_dir: &Path, extra: &str) -> RunningServer {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{}[metrics]\nlisten = \"127.0.0.1:0\"\n",
        data_dir.display(),
        sections(extra).replacen(
            "directory = \"files\"\n",
            "directory = \"files\"\nmemory_limit_mb = 24\n",
            1
        )
    );
    let config = Config::parse(&text, "<test>", Path::new(".")).unwrap();
    RunningServer::start_with(&config, BTreeMap::new())
        .await
        .unwrap()
}

/// Defines `MANY.DS000` to `MANY.DS299` (on `backend`, or by routing),
/// each of 30 records of 4,000 bytes (120 KB), written and closed.
async fn define_many(server: &RunningServer, backend: &str) {
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    let filler = vec![b'R'; 3996];
    for n in 0..300u32 {
        let name = format!("MANY.DS{n:03}");
        let mut spec = vsam_tests::ksds(&name, 4, 4000, "ascii");
        spec.backend = backend.into();
        vsam_client::define(&conn, spec).await.unwrap();
        let ds = Dataset::open(&conn, &name, OpenIntent::Output, 1)
            .await
            .unwrap();
        for id in 0..30u32 {
            let mut record = format!("{id:04}").into_bytes();
            record.extend_from_slice(&filler);
            ds.put(0, RplOptions::direct(), 0, record).await.unwrap();
        }
        ds.close().await.unwrap();
    }
}

/// Checks that mirror `mirror` follows the 300 datasets of
/// [`define_many`], holding each of the three looked at whole, and that no
/// call of the `files` backend failed (its memory limit, among others).
async fn assert_many_followed_within_limits(server: &RunningServer, data_dir: &Path, mirror: &str) {
    let mut admin_client = admin(server, data_dir).await;
    let report = caught_up(&mut admin_client).await;
    assert_eq!(row(&report, mirror).datasets_followed, 300);
    let (_, metrics) =
        vsam_tests::http_get(&server.metrics_addr.unwrap().to_string(), "/metrics").await;
    for cause in ["trap", "timeout", "memory", "start"] {
        assert_eq!(
            vsam_tests::metric(
                &metrics,
                "vsamrd_plugin_faults_total",
                &format!(r#"backend="files",cause="{cause}""#)
            ),
            Some(0.0),
            "{cause}"
        );
    }
    for n in [0u32, 150, 299] {
        let name = format!("MANY.DS{n:03}");
        assert_eq!(verify(&mut admin_client, mirror, &name).await, 30);
    }
}

/// A CSV mirror holds few of the datasets it follows at once: 300 of
/// 120 KB each (54 MB in a CSV instance's memory had it kept them all)
/// mirror into an instance limited to 24 MB with no call failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_mirror_of_many_datasets_stays_within_its_memory_limit() {
    let data = tempfile::tempdir().unwrap();
    let mirrored = "[[mirrors]]\ndatasets = \"MANY.**\"\nbackends = [\"files\"]\n";
    let server = start_with_small_files(data.path(), mirrored).await;
    define_many(&server, "").await;
    assert_many_followed_within_limits(&server, data.path(), "files").await;
    server.stop().await;
}

/// The copy that starts a mirror reads each of its datasets whole, and
/// closes it after, as a program's last CLOSE would: 300 datasets on CSV
/// (54 MB had the CSV instance kept them all) copied to a new mirror from
/// an instance limited to 24 MB with no call failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_that_starts_a_mirror_leaves_no_dataset_held_in_its_backend() {
    let data = tempfile::tempdir().unwrap();
    let server = start_with_small_files(data.path(), "").await;
    define_many(&server, "files").await;
    server.stop().await;
    let mirrored = "[[mirrors]]\ndatasets = \"MANY.**\"\nbackends = [\"report\"]\n";
    let server = start_with_small_files(data.path(), mirrored).await;
    assert_many_followed_within_limits(&server, data.path(), "report").await;
    server.stop().await;
}
