//! The object-store plugin: the conformance suite on a local directory and
//! on a real S3 server (SeaweedFS, signatures checked), with control
//! intervals small enough that every scenario crosses and splits them; the
//! layout ordinary tools see; two servers writing one bucket; the store
//! stopped mid-run.

use std::collections::BTreeMap;
use std::path::Path;
use vsam_conformance::{Grants, SeaweedFs, Subject, start_server_for_plugin};
use vsam_tests::{S3_WASM, assert_conforms, assert_durable};

/// Intervals of 512 bytes: a few records each.
fn small_intervals() -> BTreeMap<String, String> {
    BTreeMap::from([("ci_size".to_string(), "512".to_string())])
}

async fn conforms(bucket: String, params: BTreeMap<String, String>, what: &str) {
    let grants = Grants {
        bucket: Some(bucket),
        ..Default::default()
    };
    let server = start_server_for_plugin(Path::new(S3_WASM), &params, &grants)
        .await
        .unwrap();
    assert_conforms(&server.address, "CONF", false, what).await;
    server.server.stop().await;
    // It keeps units whole (an undo record for every sync of several
    // objects), so the suite ran its units of work on it; and what it
    // synced is in the bucket for a new instance and after a restart.
    let mut subject = Subject::new(Path::new(S3_WASM), grants.clone());
    subject.params = params.clone();
    let whole = vsam_conformance::check_whole_units(&subject)
        .await
        .unwrap_or_else(|failure| panic!("{what}: {failure}"));
    assert_eq!(whole, vsam_conformance::WholeUnits::Kept, "{what}");
    assert_durable(&subject, what).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_plugin_conforms_on_a_local_directory() {
    let bucket = r#"{ directory = "objects" }"#.to_string();
    conforms(bucket.clone(), BTreeMap::new(), "s3 on a directory").await;
    conforms(
        bucket,
        small_intervals(),
        "s3 on a directory, 512-byte intervals",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_plugin_conforms_on_seaweedfs() {
    let seaweed = SeaweedFs::start().unwrap();
    conforms(seaweed.bucket_table(), BTreeMap::new(), "s3 on SeaweedFS").await;
    let mut params = small_intervals();
    params.insert("prefix".into(), "small".into());
    conforms(
        seaweed.bucket_table(),
        params,
        "s3 on SeaweedFS, 512-byte intervals",
    )
    .await;
}

use vsam_client::{Connection, Dataset, DatasetSpec, OpenIntent, RplOptions};
use vsam_host::runtime::objects::claim::{CLAIM, CONFIRM_LAPSE, Holder, LAPSES_AFTER};
use vsam_protocol::Organization;

fn esds(name: &str) -> DatasetSpec {
    DatasetSpec {
        organization: Organization::Esds,
        key_length: 0,
        ..vsam_tests::ksds(name, 0, 100, "cp037")
    }
}

/// A record of 60 bytes whose key (8 bytes at offset 0) is `CUST` and
/// the number, in cp037.
fn customer(number: u32) -> Vec<u8> {
    let text = format!("CUST{number:04}  customer number {number:<30}");
    vsam_plugin_sdk::codepage::CodePage::Cp037
        .encode(&text)
        .unwrap()
}

/// Records in random order into 512-byte intervals: `aws s3 ls` order is
/// key order, names say which keys, and the objects laid end to end are
/// the dataset as a RECFM=VB file in key order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_objects_are_key_ordered_variable_blocked_records() {
    let server = vsam_tests::start(&format!(
        "[plugins.s3]\npath = \"{S3_WASM}\"\n[backends.b]\nplugin = \"s3\"\nbucket = {{ directory = \"bucket\" }}\nparams = {{ ci_size = \"512\", prefix = \"vsam\" }}\n[routing]\ndefault = \"b\"\n"
    ))
    .await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("PROD.CUST", 8, 100, "cp037"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "PROD.CUST", OpenIntent::Update, 1)
        .await
        .unwrap();
    let mut numbers: Vec<u32> = (0..100).map(|i| (i * 37) % 100).collect();
    numbers.dedup();
    for &n in &numbers {
        ds.put(0, RplOptions::direct(), 0, customer(n))
            .await
            .unwrap();
    }
    ds.close().await.unwrap();

    let root = server.data_dir.path().join("bucket/vsam/PROD.CUST");
    let definition = std::fs::read_to_string(root.join("dataset.json")).unwrap();
    assert!(
        definition.contains("\"organization\": \"ksds\""),
        "{definition}"
    );
    let mut names: Vec<String> = std::fs::read_dir(root.join("ci"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(
        names.len() >= 12,
        "100 x 64 bytes need more than 12 intervals: {names:?}"
    );
    assert_eq!(
        names[0], "0000000000000000",
        "the first interval starts at the lowest key"
    );
    assert!(
        names[1..]
            .iter()
            .all(|n| n.len() == 16 + 1 + 8 && n[17..].starts_with("CUST")),
        "hex key, then the key readable: {names:?}"
    );
    let mut records = Vec::new();
    for name in &names {
        let bytes = std::fs::read(root.join("ci").join(name)).unwrap();
        let mut at = 0;
        while at < bytes.len() {
            let length = u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize;
            assert_eq!(&bytes[at + 2..at + 4], &[0, 0], "RDW of {name}");
            let record = bytes[at + 4..at + length].to_vec();
            if name.len() > 16 {
                let hex = hex::encode(&record[..8]);
                assert!(hex.as_str() >= &name[..16], "{name} holds only its range");
            }
            records.push(record);
            at += length;
        }
    }
    let expected: Vec<Vec<u8>> = (0..100).map(customer).collect();
    assert_eq!(records, expected, "every record once, in key order");
    server.server.stop().await;
}

fn config_on(seaweed: &SeaweedFs) -> String {
    format!(
        "[plugins.s3]\npath = \"{S3_WASM}\"\n[backends.b]\nplugin = \"s3\"\nbucket = {}\ncall_timeout_ms = 2000\n[routing]\ndefault = \"b\"\n",
        seaweed.bucket_table()
    )
}

/// R15 of a failed request (0 if it succeeded).
fn r15<T>(result: &Result<T, vsam_client::ClientError>) -> u8 {
    match result {
        Ok(_) => 0,
        Err(e) => e.vsam().map_or(99, |v| v.r15()),
    }
}

/// Starts a server on `config`, or says why it did not start.
async fn try_start(config: &str) -> Result<vsam_tests::TestServer, String> {
    vsam_tests::try_start(config)
        .await
        .map_err(|error| format!("{error:#}"))
}

/// A bucket belongs to one server: a second is refused at start, naming
/// the first; it starts once the first has stopped (and given its claim
/// back). A claim left by a server that died lapses (taken over once it
/// has not changed for [`CONFIRM_LAPSE`]); one of the same server (its
/// data dir, this host) is taken back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_is_claimed_by_one_server() {
    let seaweed = SeaweedFs::start().unwrap();
    let grant = vsam_tests::bucket_grant(&seaweed);
    let a = vsam_tests::start(&config_on(&seaweed)).await;
    let claim = grant.get(CLAIM).await.unwrap().expect("a claim object");
    let holder: Holder = serde_json::from_slice(&claim.body).unwrap();
    assert_eq!(holder.data_dir, a.data_dir.path().display().to_string());

    let refused = try_start(&config_on(&seaweed))
        .await
        .err()
        .expect("refused");
    assert!(
        refused.contains("is claimed by another vsamrd")
            && refused.contains(&holder.data_dir)
            && refused.contains("give this server a bucket of its own"),
        "{refused}"
    );
    a.server.stop().await;
    assert!(grant.get(CLAIM).await.unwrap().is_none(), "given back");
    let b = try_start(&config_on(&seaweed))
        .await
        .expect("starts once A stopped");
    b.server.stop().await;

    // A claim renewed long ago (its server died) is taken over; a fresh
    // one of another server is not.
    let foreign = |renewed_ms: u64| Holder {
        server: "vsamrd 0.0.0 192.0.2.1:2387 pid 1".into(),
        host: "elsewhere".into(),
        data_dir: "/srv/vsamrd".into(),
        renewed_ms,
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let write = async |holder: Holder| {
        grant
            .put(
                CLAIM,
                serde_json::to_vec(&holder).unwrap(),
                object_store::PutMode::Overwrite,
            )
            .await
            .unwrap();
    };
    write(foreign(now_ms)).await;
    let refused = try_start(&config_on(&seaweed))
        .await
        .err()
        .expect("refused");
    assert!(refused.contains("192.0.2.1:2387"), "{refused}");
    write(foreign(now_ms - LAPSES_AFTER.as_millis() as u64 - 1_000)).await;
    let started = std::time::Instant::now();
    let c = try_start(&config_on(&seaweed))
        .await
        .expect("a lapsed claim is taken over");
    assert!(
        started.elapsed() >= CONFIRM_LAPSE,
        "taken over after {:?}, without watching the claim",
        started.elapsed()
    );
    let taken: Holder =
        serde_json::from_slice(&grant.get(CLAIM).await.unwrap().unwrap().body).unwrap();
    assert_eq!(taken.data_dir, c.data_dir.path().display().to_string());
    c.server.stop().await;

    // Under prefixes that do not nest, servers share a bucket.
    let under = |prefix: &str| {
        config_on(&seaweed).replace(
            "call_timeout_ms",
            &format!("params = {{ prefix = \"{prefix}\" }}\ncall_timeout_ms"),
        )
    };
    let one = try_start(&under("one/")).await.expect("one prefix");
    let two = try_start(&under("two/")).await.expect("another prefix");
    assert!(grant.get("one/.vsamrd-claim").await.unwrap().is_some());
    let refused = try_start(&under("one/")).await.err().expect("refused");
    assert!(refused.contains("under \"one/\""), "{refused}");
    one.server.stop().await;
    two.server.stop().await;
}

/// Two vsamrd servers on one bucket, the second started after the first's
/// claim was deleted by hand (a careless operator): the conditional writes
/// still keep each record whole. The same new key from both is stored once
/// (the other is refused, then a duplicate), and ESDS records appended
/// from both get distinct RBAs that each lead to the right record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_bucket_store_a_key_once_and_an_rba_once() {
    let seaweed = SeaweedFs::start().unwrap();
    let a = vsam_tests::start(&config_on(&seaweed)).await;
    vsam_tests::bucket_grant(&seaweed)
        .delete(CLAIM)
        .await
        .unwrap();
    let b = vsam_tests::start(&config_on(&seaweed)).await;
    let on_a = Connection::connect(&a.address).await.unwrap();
    let on_b = Connection::connect(&b.address).await.unwrap();
    let spec = vsam_tests::ksds("SHARED.KSDS", 8, 100, "cp037");
    vsam_client::define(&on_a, spec.clone()).await.unwrap();
    vsam_client::define(&on_b, spec).await.unwrap();
    let ksds_a = Dataset::open(&on_a, "SHARED.KSDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    let ksds_b = Dataset::open(&on_b, "SHARED.KSDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    // Both read the (empty) interval, then both insert the same key.
    assert!(
        ksds_a
            .reading(RplOptions::direct())
            .key(&customer(1)[..8])
            .records()
            .await
            .is_err()
    );
    assert!(
        ksds_b
            .reading(RplOptions::direct())
            .key(&customer(1)[..8])
            .records()
            .await
            .is_err()
    );
    let first = ksds_a.put(0, RplOptions::direct(), 0, customer(1)).await;
    let mut second_record = customer(1);
    second_record[20] = 0xC2;
    let second = ksds_b
        .put(0, RplOptions::direct(), 0, second_record.clone())
        .await;
    assert_eq!(r15(&first), 0, "{first:?}");
    assert_eq!(
        r15(&second),
        12,
        "a stale interval is never overwritten: {second:?}"
    );
    let message = second.unwrap_err().to_string();
    assert!(message.contains("another writer changed"), "{message}");
    let again = ksds_b.put(0, RplOptions::direct(), 0, second_record).await;
    let again = again.unwrap_err();
    let vsam = again.vsam().unwrap();
    assert_eq!(
        (vsam.r15(), vsam.fdbk()),
        (8, 8),
        "then a duplicate key: {again}"
    );
    let stored = ksds_b.read(&customer(1)[..8]).await.unwrap();
    assert_eq!(stored.data, customer(1), "the first writer's record");

    // ESDS: each server appends in turn; a refused append is repeated.
    vsam_client::define(&on_a, esds("SHARED.ESDS"))
        .await
        .unwrap();
    vsam_client::define(&on_b, esds("SHARED.ESDS"))
        .await
        .unwrap();
    let esds_a = Dataset::open(&on_a, "SHARED.ESDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    let esds_b = Dataset::open(&on_b, "SHARED.ESDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    let mut told = Vec::new();
    let mut refused = 0;
    for i in 0..12u32 {
        let ds = if i % 2 == 0 { &esds_a } else { &esds_b };
        let record = customer(i)[..(20 + i as usize)].to_vec();
        loop {
            match ds
                .put(
                    0,
                    RplOptions::addressed(vsam_protocol::Processing::Sequential),
                    0,
                    record.clone(),
                )
                .await
            {
                Ok(written) => {
                    told.push((written.address, record));
                    break;
                }
                Err(e) => {
                    assert_eq!(e.vsam().map(|v| v.r15()), Some(12), "{e}");
                    refused += 1;
                    assert!(refused < 50, "appends keep failing: {e}");
                }
            }
        }
    }
    assert!(
        refused > 0,
        "the servers' views of the last interval went stale"
    );
    let mut expected_rba = 0;
    for (rba, record) in &told {
        assert_eq!(*rba, expected_rba, "RBAs are contiguous and distinct");
        expected_rba += record.len() as u64;
        for ds in [&esds_a, &esds_b] {
            let read = ds
                .reading(RplOptions::addressed(vsam_protocol::Processing::Direct))
                .at(*rba)
                .records()
                .await
                .unwrap();
            assert_eq!(&read[0].data, record);
        }
    }
    a.server.stop().await;
    b.server.stop().await;
}

/// The S3 server stopped mid-run: GETs and PUTs fail with R15=12 saying
/// the store does not answer, the refused record never appears, and once
/// the server is back the same connection carries on by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_store_fails_requests_cleanly_and_service_resumes() {
    let seaweed = SeaweedFs::start().unwrap();
    let server = vsam_tests::start(&config_on(&seaweed)).await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("FAULT.KSDS", 8, 100, "cp037"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "FAULT.KSDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    for n in 0..50 {
        ds.put(0, RplOptions::direct(), 0, customer(n * 2))
            .await
            .unwrap();
    }

    seaweed.stop().unwrap();
    let put = ds.put(0, RplOptions::direct(), 0, customer(7)).await;
    let get = ds
        .reading(RplOptions::direct())
        .key(&customer(8)[..8])
        .records()
        .await;
    for (what, result) in [("PUT", put.map(drop)), ("GET", get.map(drop))] {
        let error = result.unwrap_err();
        assert_eq!(error.vsam().map(|v| v.r15()), Some(12), "{what}: {error}");
        let message = error.to_string();
        assert!(
            message.contains(&seaweed.endpoint) && message.contains("FAULT.KSDS"),
            "{what} says which dataset and which store: {message}"
        );
    }

    seaweed.restart().unwrap();
    let mut resumed = None;
    for _ in 0..50 {
        match ds
            .reading(RplOptions::direct())
            .key(&customer(8)[..8])
            .records()
            .await
        {
            Ok(records) => {
                resumed = Some(records);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    assert_eq!(resumed.expect("service resumed")[0].data, customer(8));
    let missing = ds
        .reading(RplOptions::direct())
        .key(&customer(7)[..8])
        .records()
        .await;
    assert_eq!(r15(&missing), 8, "the refused PUT left nothing behind");
    ds.put(0, RplOptions::direct(), 0, customer(7))
        .await
        .unwrap();
    ds.close().await.unwrap();
    let ds = Dataset::open(&conn, "FAULT.KSDS", OpenIntent::Input, 1)
        .await
        .unwrap();
    let all = ds.browse(100).await.unwrap();
    let mut expected: Vec<Vec<u8>> = (0..50).map(|n| customer(n * 2)).collect();
    expected.push(customer(7));
    expected.sort();
    assert_eq!(
        all.into_iter().map(|r| r.data).collect::<Vec<_>>(),
        expected
    );
    server.server.stop().await;
}

/// Signatures are checked: a backend with a wrong secret stops vsamrd at
/// start with the reason, before any program relies on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_stop_vsamrd_at_start_with_the_reason() {
    let seaweed = SeaweedFs::start().unwrap();
    let config = config_on(&seaweed).replace(&seaweed.secret_access_key, "not-the-secret");
    let message = try_start(&config)
        .await
        .err()
        .expect("a wrong secret is refused");
    // The first request a server makes of its bucket is its claim.
    assert!(
        message.contains("backend b: get \".vsamrd-claim\"")
            && message.contains("the store refused the credentials"),
        "{message}"
    );
    assert!(
        !message.contains("not-the-secret"),
        "secrets stay out of messages: {message}"
    );
}

/// A server on a local bucket directory `dir`, 512-byte intervals under
/// prefix `vsam/`.
async fn bucket_server(dir: &Path) -> vsam_host::RunningServer {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[plugins.s3]\npath = \"{S3_WASM}\"\n[backends.b]\nplugin = \"s3\"\nbucket = {{ directory = \"bucket\" }}\nparams = {{ ci_size = \"512\", prefix = \"vsam\" }}\n[routing]\ndefault = \"b\"\n",
        dir.display()
    );
    let config = vsam_host::config::Config::parse(&text, "<test>", Path::new(".")).unwrap();
    vsam_host::RunningServer::start_with(&config, BTreeMap::new())
        .await
        .unwrap()
}

/// Customer `number` changed by a unit of work (same key and length).
fn changed(number: u32) -> Vec<u8> {
    let text = format!("CUST{number:04}  changed by a unit {number:<30}");
    vsam_plugin_sdk::codepage::CodePage::Cp037
        .encode(&text)
        .unwrap()
}

/// The file of the interval that holds `record` (8-byte key first) among
/// the dataset's interval files under `ci`.
fn interval_file(ci: &Path, record: &[u8]) -> std::path::PathBuf {
    let key = hex::encode(&record[..8]);
    let mut names: Vec<String> = std::fs::read_dir(ci)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let name = names
        .iter()
        .rev()
        .find(|name| name[..16] <= *key)
        .expect("an interval at or below the key");
    ci.join(name)
}

/// A connection to `server` (on a local bucket in `dir`) holding PROD.CUST
/// with customers 0 to 39, and the directory of its interval files.
async fn forty_customers(
    server: &vsam_host::RunningServer,
    dir: &Path,
) -> (Connection, std::path::PathBuf) {
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("PROD.CUST", 8, 100, "cp037"))
        .await
        .unwrap();
    let plain = Dataset::open(&conn, "PROD.CUST", OpenIntent::Update, 1)
        .await
        .unwrap();
    for n in 0..40 {
        plain
            .put(0, RplOptions::direct(), 0, customer(n))
            .await
            .unwrap();
    }
    plain.close().await.unwrap();
    (conn, dir.join("bucket/vsam/PROD.CUST/ci"))
}

/// Commits a unit of work changing customers `changes`, which fails on
/// the interval file `behind`: the backend reads every interval (a browse
/// keeps them), then another writer stores `behind` again, a new version
/// the commit's conditional write finds. The commit's error.
async fn commit_failing_on(
    conn: &Connection,
    changes: &[u32],
    behind: &Path,
) -> vsam_client::ClientError {
    let unit = Dataset::open_with_access(
        conn,
        "PROD.CUST",
        OpenIntent::Update,
        vsam_protocol::access::COMMIT,
        1,
    )
    .await
    .unwrap();
    for &n in changes {
        unit.read_for_update(&customer(n)[..8]).await.unwrap();
        unit.put(0, RplOptions::direct().update(), 0, changed(n))
            .await
            .unwrap();
    }
    browse_all(conn).await;
    stored_again_behind(behind);
    vsam_client::commit(conn).await.unwrap_err()
}

/// Browses PROD.CUST whole: the backend reads every interval and keeps it
/// (with its version) for the unit's writes at the commit.
async fn browse_all(conn: &Connection) {
    let browser = Dataset::open(conn, "PROD.CUST", OpenIntent::Input, 1)
        .await
        .unwrap();
    let browsed = browser
        .reading(RplOptions::sequential())
        .batch(100)
        .records()
        .await
        .unwrap();
    assert_eq!(browsed.len(), 40);
}

/// Stores interval file `file` again as it is, as another writer would: a
/// new version, which a conditional write of the backend's finds.
fn stored_again_behind(file: &Path) {
    let copy = file.with_file_name("copy");
    std::fs::copy(file, &copy).unwrap();
    std::fs::rename(&copy, file).unwrap();
}

/// A unit of work changing records in two intervals whose commit fails on
/// the second (another writer changed it meanwhile) leaves the first as it
/// was: the plugin puts back what it wrote, so nothing of the unit shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_whose_commit_fails_half_way_is_put_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = bucket_server(dir.path()).await;
    let address = server.addr.to_string();
    let (conn, ci) = forty_customers(&server, dir.path()).await;
    let (low, high) = (
        interval_file(&ci, &customer(1)),
        interval_file(&ci, &customer(38)),
    );
    assert_ne!(low, high, "the two records are in different intervals");
    let low_before = std::fs::read(&low).unwrap();

    let failed = commit_failing_on(&conn, &[1, 38], &high).await;
    assert!(
        failed.to_string().contains("another writer changed it"),
        "{failed}"
    );
    assert_eq!(
        std::fs::read(&low).unwrap(),
        low_before,
        "the interval written before the failure is put back"
    );
    assert!(
        !dir.path().join("bucket/vsam/_vsam/unit-intent").exists(),
        "the undo record is gone"
    );
    let reader = Connection::connect(&address).await.unwrap();
    let reader = Dataset::open(&reader, "PROD.CUST", OpenIntent::Input, 1)
        .await
        .unwrap();
    for n in [1, 38] {
        assert_eq!(
            reader.read(&customer(n)[..8]).await.unwrap().data,
            customer(n)
        );
    }
    server.stop().await;
}

/// One object of an undo record: its name, the body to put back (`None`
/// for an object the sync created) and the body the sync wrote.
type UndoStep<'a> = (String, Option<&'a [u8]>, &'a [u8]);

/// The boot an undo record of an earlier start of vsamrd names.
const EARLIER_START: &str = "an earlier start";

/// An undo record's layout, byte for byte as documented in the plugin's
/// `intent` module: written by start `boot` of vsamrd, backend `b`, for
/// `steps` (the second layout keeps the digest of what was written).
fn undo_record(boot: &str, second_layout: bool, steps: &[UndoStep]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut intent = match second_layout {
        true => b"VSAMUNDO2\n".to_vec(),
        false => b"VSAMUNDO1\n".to_vec(),
    };
    for text in [boot.as_bytes(), b"b"] {
        intent.extend((text.len() as u32).to_be_bytes());
        intent.extend(text);
    }
    intent.extend((steps.len() as u32).to_be_bytes());
    for (object, before, written) in steps {
        intent.extend((object.len() as u32).to_be_bytes());
        intent.extend(object.as_bytes());
        intent.push(before.is_some() as u8);
        let before = before.unwrap_or_default();
        intent.extend((before.len() as u32).to_be_bytes());
        intent.extend(before);
        if second_layout {
            intent.extend(Sha256::digest(written));
        }
    }
    intent
}

/// The object name of interval file `path` under the test's prefix.
fn object_name(path: &Path) -> String {
    format!(
        "vsam/PROD.CUST/ci/{}",
        path.file_name().unwrap().to_str().unwrap()
    )
}

/// A server on a local bucket in `dir` holding customers 0 to 19, with
/// the records of `changes` changed by one unit of work each: the files
/// of their intervals, and each file's body before the change.
async fn customers_changed(dir: &Path, changes: &[u32]) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let server = bucket_server(dir).await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("PROD.CUST", 8, 100, "cp037"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "PROD.CUST", OpenIntent::Update, 1)
        .await
        .unwrap();
    for n in 0..20 {
        ds.put(0, RplOptions::direct(), 0, customer(n))
            .await
            .unwrap();
    }
    let ci = dir.join("bucket/vsam/PROD.CUST/ci");
    let mut files = Vec::new();
    for &n in changes {
        let file = interval_file(&ci, &customer(n));
        let before = std::fs::read(&file).unwrap();
        ds.read_for_update(&customer(n)[..8]).await.unwrap();
        ds.put(0, RplOptions::direct().update(), 0, changed(n))
            .await
            .unwrap();
        assert_ne!(std::fs::read(&file).unwrap(), before);
        files.push((file, before));
    }
    ds.close().await.unwrap();
    server.stop().await;
    files
}

/// Leaves `intent` in the bucket in `dir` as a crash leaves an undo
/// record, then starts a server on it, which carries it out before it
/// serves: the server and the record's file.
async fn start_after_a_crash(
    dir: &Path,
    intent: Vec<u8>,
) -> (vsam_host::RunningServer, std::path::PathBuf) {
    let intent_file = leave_undo_record(dir, intent);
    (bucket_server(dir).await, intent_file)
}

/// A new connection to `server` and PROD.CUST opened on it for input.
async fn read_customers(server: &vsam_host::RunningServer) -> (Connection, Dataset) {
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    let ds = Dataset::open(&conn, "PROD.CUST", OpenIntent::Input, 1)
        .await
        .unwrap();
    (conn, ds)
}

/// Writes `intent` as the undo record of the bucket in `dir`: its file.
fn leave_undo_record(dir: &Path, intent: Vec<u8>) -> std::path::PathBuf {
    let intent_file = dir.join("bucket/vsam/_vsam/unit-intent");
    std::fs::create_dir_all(intent_file.parent().unwrap()).unwrap();
    std::fs::write(&intent_file, intent).unwrap();
    intent_file
}

/// What a crash in the middle of storing a unit leaves, an undo record
/// naming objects written and created, is carried out when the backend
/// starts, before it serves anything. The record is of the first layout
/// (an older plugin's, without digests): carried out whatever the objects
/// hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_record_left_by_a_crash_is_carried_out_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let changed_files = customers_changed(dir.path(), &[5]).await;
    let (file, before) = &changed_files[0];

    // As a crash would leave it: the interval rewritten, a new interval
    // created, and the undo record naming both.
    let ci = dir.path().join("bucket/vsam/PROD.CUST/ci");
    let created = ci.join("ffffffffffffffff");
    std::fs::write(&created, b"").unwrap();
    let intent = undo_record(
        EARLIER_START,
        false,
        &[
            (object_name(file), Some(before), b""),
            (object_name(&created), None, b""),
        ],
    );
    let (server, intent_file) = start_after_a_crash(dir.path(), intent).await;
    let (_conn, ds) = read_customers(&server).await;
    assert_eq!(ds.read(&customer(5)[..8]).await.unwrap().data, customer(5));
    assert_eq!(
        std::fs::read(file).unwrap(),
        *before,
        "the interval is put back"
    );
    assert!(
        !created.exists(),
        "the interval the unit created is deleted"
    );
    assert!(!intent_file.exists(), "the undo record is gone");
    server.stop().await;
}

/// An undo record puts an object back only while it holds what the sync
/// that left the record wrote: one written again since (a later sync,
/// acknowledged) is kept, so that carrying out a failed sync's record
/// never loses acknowledged writes; the others are put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_record_never_puts_back_over_a_later_write() {
    let dir = tempfile::tempdir().unwrap();
    let changed_files = customers_changed(dir.path(), &[5, 15]).await;
    let [(later, later_before), (stands, stands_before)] = &changed_files[..] else {
        unreachable!("two changes")
    };
    assert_ne!(later, stands, "the two records are in different intervals");
    let stands_now = std::fs::read(stands).unwrap();
    let ci = dir.path().join("bucket/vsam/PROD.CUST/ci");
    let created = ci.join("ffffffffffffffff");
    std::fs::write(&created, b"created by the sync").unwrap();
    // The record's sync wrote something else into the interval of
    // customer 5 than it holds now (a later sync wrote it again), and
    // what the intervals of customer 15 and the created one hold.
    let intent = undo_record(
        EARLIER_START,
        true,
        &[
            (
                object_name(later),
                Some(later_before),
                b"what the failed sync wrote",
            ),
            (object_name(stands), Some(stands_before), &stands_now),
            (object_name(&created), None, b"created by the sync"),
        ],
    );
    let (server, intent_file) = start_after_a_crash(dir.path(), intent).await;
    let (_conn, ds) = read_customers(&server).await;
    assert_eq!(
        ds.read(&customer(5)[..8]).await.unwrap().data,
        changed(5),
        "the later write is kept"
    );
    assert_eq!(
        ds.read(&customer(15)[..8]).await.unwrap().data,
        customer(15),
        "the failed sync's write is put back"
    );
    assert_eq!(std::fs::read(stands).unwrap(), *stands_before);
    assert!(
        !created.exists(),
        "the interval the sync created is deleted"
    );
    assert!(!intent_file.exists(), "the undo record is gone");
    server.stop().await;
}

/// A sync of several objects that failed, and whose put-back failed too
/// (the store gone), leaves its undo record of this start of vsamrd: the
/// backend's next instance, the writer, carries it out before its first
/// call, a read too, so that no read shows that sync's writes. The record
/// is written by hand, naming an interval whose last write it takes for
/// the failed sync's; a failed commit makes vsamrd replace the instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_syncs_undo_record_is_carried_out_before_the_next_writers_first_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = bucket_server(dir.path()).await;
    let (conn, ci) = forty_customers(&server, dir.path()).await;
    let low = interval_file(&ci, &customer(1));
    let high = interval_file(&ci, &customer(38));
    assert_ne!(low, high, "the two records are in different intervals");
    let low_before = std::fs::read(&low).unwrap();
    let ds = Dataset::open(&conn, "PROD.CUST", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.read_for_update(&customer(1)[..8]).await.unwrap();
    ds.put(0, RplOptions::direct().update(), 0, changed(1))
        .await
        .unwrap();
    let low_written = std::fs::read(&low).unwrap();
    let intent = undo_record(
        vsam_host::runtime::wasm::boot(),
        true,
        &[(object_name(&low), Some(&low_before), &low_written)],
    );
    let intent_file = leave_undo_record(dir.path(), intent);
    // vsamrd drops the instance that ran a commit that failed.
    commit_failing_on(&conn, &[38], &high).await;
    assert!(
        intent_file.exists(),
        "the instance that failed left it alone"
    );

    let (_conn, reader) = read_customers(&server).await;
    assert_eq!(
        reader.read(&customer(1)[..8]).await.unwrap().data,
        customer(1),
        "the first read of the next instance finds the failed sync put back"
    );
    assert_eq!(std::fs::read(&low).unwrap(), low_before);
    assert!(!intent_file.exists(), "the undo record is gone");
    assert_eq!(
        reader.read(&customer(38)[..8]).await.unwrap().data,
        customer(38)
    );
    server.stop().await;
}

/// A batch that uses many datasets one after another: the instance keeps at
/// most 1,024 of them open (before, about 1 KB each for ever: 3,000 datasets
/// failed their calls at a limit of 3 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_used_one_after_another_keep_the_instance_memory_bounded() {
    let server = vsam_tests::start_with_plugin(
        S3_WASM,
        "bucket = { directory = \"objects\" }\nmemory_limit_mb = 3\n",
    )
    .await;
    let conn = vsam_client::Connection::connect(&server.address)
        .await
        .unwrap();
    vsam_tests::use_datasets_one_after_another(&conn, 3000).await;
    server.server.stop().await;
}

/// Loads 3,000 records of 8 KB (24 MB) into a new KSDS through units of
/// work of 32 records, then browses them all, on a local bucket with
/// 256 KiB intervals, the default `cache` of 256 intervals and the given
/// `cache_mb`, in an instance limited to 12 MB; the first request that
/// fails, if one does.
async fn load_and_browse_in_12_mb(cache_mb: u32) -> Option<String> {
    let server = vsam_tests::start_with_plugin(
        S3_WASM,
        &format!(
            "bucket = {{ directory = \"objects\" }}\nmemory_limit_mb = 12\nparams = {{ ci_size = \"262144\", cache_mb = \"{cache_mb}\" }}\n"
        ),
    )
    .await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("BIG.CIS", 8, 8192, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open_with_access(
        &conn,
        "BIG.CIS",
        OpenIntent::Update,
        vsam_protocol::access::COMMIT,
        1,
    )
    .await
    .unwrap();
    let filler = vec![b'R'; 8184];
    let mut failure = None;
    'load: for unit in 0..3000u32 / 32 + 1 {
        for n in unit * 32..(unit * 32 + 32).min(3000) {
            let mut record = format!("{n:08}").into_bytes();
            record.extend_from_slice(&filler);
            if let Err(error) = ds.put(0, RplOptions::direct(), 0, record).await {
                failure = Some(format!("PUT {n}: {error}"));
                break 'load;
            }
        }
        if let Err(error) = vsam_client::commit(&conn).await {
            failure = Some(format!("COMMIT of unit {unit}: {error}"));
            break;
        }
    }
    if failure.is_none() {
        let mut browsed = 0;
        loop {
            match ds
                .reading(RplOptions::sequential())
                .batch(16)
                .records()
                .await
            {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => browsed += batch.len(),
                Err(error) if error.is_end_of_data() => break,
                Err(error) => {
                    failure = Some(format!("browse after {browsed} records: {error}"));
                    break;
                }
            }
        }
        if failure.is_none() {
            assert_eq!(browsed, 3000);
        }
    }
    drop(conn);
    server.server.stop().await;
    failure
}

/// `cache_mb` bounds the bytes of the intervals a dataset keeps: with
/// 256 KiB intervals, `cache` (256 intervals, 64 MiB) alone let a 24 MB
/// dataset fill an instance of 12 MB, and its calls failed on memory; 2 MB
/// of them keep it within.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_intervals_a_dataset_keeps_are_bounded_in_bytes() {
    assert_eq!(load_and_browse_in_12_mb(2).await, None);
    let failed = load_and_browse_in_12_mb(64)
        .await
        .expect("a call past 12 MB");
    assert!(failed.contains("memory_limit_mb"), "{failed}");
}
