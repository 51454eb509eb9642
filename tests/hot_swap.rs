//! Hot swap: new plugin versions and configuration changes are applied
//! while clients work, without a failed request; versions that cannot
//! serve are refused and the running one carries on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use vsam_client::admin::AdminClient;
use vsam_client::{Connection, Dataset, OpenIntent, RplOptions};
use vsam_protocol::admin::{AdminAnswer, AdminCommand, PluginVersionRow, StatusReport};
use vsam_protocol::fdbk;
use vsam_tests::deployment::Deployment;

fn record(key: &str, text: &str) -> Vec<u8> {
    format!("{key}{text}").into_bytes()
}

async fn read_all(conn: &Connection, name: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let ds = Dataset::open(conn, name, OpenIntent::Input, 1)
        .await
        .unwrap();
    let mut all = BTreeMap::new();
    loop {
        match ds.browse(500).await {
            Ok(batch) => all.extend(batch.into_iter().map(|r| (r.key, r.data))),
            Err(e) if e.is_end_of_data() => break,
            Err(e) => panic!("browse of {name}: {e}"),
        }
    }
    ds.close().await.unwrap();
    all
}

async fn load(conn: &Connection, name: &str, count: u32) {
    let ds = Dataset::open(conn, name, OpenIntent::Update, 1)
        .await
        .unwrap();
    for i in 0..count {
        let key = format!("B{i:07}");
        ds.put(0, RplOptions::direct(), 0, record(&key, "-static"))
            .await
            .unwrap();
    }
    ds.close().await.unwrap();
}

async fn plugins(admin: &mut AdminClient) -> Vec<PluginVersionRow> {
    match admin.request(AdminCommand::Plugins).await.unwrap() {
        AdminAnswer::Plugins { versions } => versions,
        other => panic!("{other:?}"),
    }
}

async fn status(admin: &mut AdminClient) -> StatusReport {
    match admin.request(AdminCommand::Status).await.unwrap() {
        AdminAnswer::Status(status) => status,
        other => panic!("{other:?}"),
    }
}

/// Clients insert, update, read and browse while the SQL plugin is
/// swapped ten times (writer and two readers each time): no request
/// fails, a browse continues at the right record, a held record stays
/// held, and every acknowledged write is there at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_under_traffic_fail_no_request_and_keep_positions_and_locks() {
    let deployment = Deployment::new("readers = 2", false);
    let server = deployment.start().await;
    let address = server.addr.to_string();
    let conn = Connection::connect(&address).await.unwrap();
    for name in ["HS.WRITES", "HS.BROWSE", "HS.LOCKS"] {
        vsam_client::define(&conn, vsam_tests::ksds(name, 8, 40, "ascii"))
            .await
            .unwrap();
    }
    load(&conn, "HS.BROWSE", 300).await;
    let locks = Dataset::open(&conn, "HS.LOCKS", OpenIntent::Update, 1)
        .await
        .unwrap();
    locks
        .put(0, RplOptions::direct(), 0, record("LOCKED01", "-before"))
        .await
        .unwrap();
    // Held under exclusive control across every swap.
    locks
        .reading(RplOptions::direct().update())
        .key(b"LOCKED01")
        .records()
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for client in 0..4u32 {
        let address = address.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let conn = Connection::connect(&address).await.unwrap();
            let ds = Dataset::open(&conn, "HS.WRITES", OpenIntent::Update, 1)
                .await
                .unwrap();
            let mut acknowledged = BTreeMap::new();
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("W{client}{i:06}");
                let value = record(&key, "-v1");
                ds.put(0, RplOptions::direct(), 0, value.clone())
                    .await
                    .unwrap_or_else(|e| panic!("insert {key}: {e}"));
                acknowledged.insert(key.clone().into_bytes(), value);
                if i.is_multiple_of(3) {
                    let got = ds
                        .reading(RplOptions::direct().update())
                        .key(key.as_bytes())
                        .records()
                        .await
                        .unwrap_or_else(|e| panic!("GET UPD {key}: {e}"));
                    assert_eq!(got[0].data, record(&key, "-v1"));
                    let updated = record(&key, "-v2");
                    ds.put(0, RplOptions::direct().update(), 0, updated.clone())
                        .await
                        .unwrap_or_else(|e| panic!("update {key}: {e}"));
                    acknowledged.insert(key.into_bytes(), updated);
                }
                i += 1;
            }
            ds.close().await.unwrap();
            acknowledged
        }));
    }
    // A browse one record at a time, across the swaps.
    let browser = {
        let address = address.clone();
        tokio::spawn(async move {
            let conn = Connection::connect(&address).await.unwrap();
            let ds = Dataset::open(&conn, "HS.BROWSE", OpenIntent::Input, 1)
                .await
                .unwrap();
            let mut keys = Vec::new();
            loop {
                match ds.next().await {
                    Ok(record) => keys.push(record.key),
                    Err(e) if e.is_end_of_data() => break,
                    Err(e) => panic!("browse: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            keys
        })
    };

    let mut admin = deployment.admin(&server).await;
    let mut hashes = Vec::new();
    for swap in 1..=10u32 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let hash = deployment.write_plugin_version(swap);
        let report = server.reloader.reload("test").await;
        assert_eq!(report.error, None, "swap {swap}");
        assert!(
            report
                .changes
                .iter()
                .any(|c| c.contains("backend sqlite: now plugin sql")),
            "swap {swap}: {:?}",
            report.changes
        );
        let serving = plugins(&mut admin).await;
        let serving: Vec<_> = serving.iter().filter(|v| v.state == "serving").collect();
        assert_eq!(serving.len(), 1, "{serving:?}");
        assert_eq!(serving[0].hash, hash);
        assert_eq!(serving[0].backends, ["sqlite"]);
        assert_eq!(serving[0].datasets, 3);
        hashes.push(hash);
    }
    hashes.dedup();
    assert_eq!(hashes.len(), 10, "every swap was a new version");

    // The record held since before the first swap is still held...
    let other = Connection::connect(&address).await.unwrap();
    let contender = Dataset::open(&other, "HS.LOCKS", OpenIntent::Update, 1)
        .await
        .unwrap();
    let refused = contender
        .reading(RplOptions::direct().update())
        .key(b"LOCKED01")
        .records()
        .await
        .unwrap_err();
    let refused = refused.vsam().expect("a VSAM error");
    assert_eq!(
        (refused.r15(), refused.fdbk()),
        (8, fdbk::EXCLUSIVE_CONTROL.0)
    );
    // ...and its holder updates it.
    locks
        .put(
            0,
            RplOptions::direct().update(),
            0,
            record("LOCKED01", "-after"),
        )
        .await
        .unwrap();
    let got = contender.read(b"LOCKED01").await.unwrap();
    assert_eq!(got.data, record("LOCKED01", "-after"));

    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = BTreeMap::new();
    for writer in writers {
        acknowledged.extend(writer.await.expect("no writer request failed"));
    }
    let browsed = browser.await.expect("the browse never failed");
    let expected: Vec<Vec<u8>> = (0..300).map(|i| format!("B{i:07}").into_bytes()).collect();
    assert_eq!(browsed, expected, "the browse went on at the right record");
    assert!(acknowledged.len() > 100, "{} writes", acknowledged.len());
    let stored = read_all(&conn, "HS.WRITES").await;
    assert_eq!(stored, acknowledged, "every acknowledged write, exactly");
    // Once drained, the old versions leave `vsamr admin plugins`: the
    // serving one is listed alone.
    let drained_by = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let listed = plugins(&mut admin).await;
        if listed.iter().all(|v| v.state == "serving") {
            let sql: Vec<_> = listed.iter().filter(|v| v.backends == ["sqlite"]).collect();
            assert_eq!(sql.len(), 1, "{listed:?}");
            assert_eq!(Some(&sql[0].hash), hashes.last());
            break;
        }
        assert!(
            std::time::Instant::now() < drained_by,
            "old versions still listed: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

/// Versions that cannot serve are refused with the reason, shown by
/// `admin status`, and the running version keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_that_cannot_serve_are_refused_and_the_old_one_serves_on() {
    let deployment = Deployment::new("", false);
    let server = deployment.start().await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("HS.REFUSED", 8, 40, "ascii"))
        .await
        .unwrap();
    load(&conn, "HS.REFUSED", 10).await;
    let mut admin = deployment.admin(&server).await;
    let serving = status(&mut admin).await.backends[0].hash.clone();

    let good = std::fs::read(vsam_tests::SQL_WASM).unwrap();
    let contract_2 = vsam_tests::deployment::replace_all(
        &good,
        b"vsam:backend/store@1.0.0",
        b"vsam:backend/store@2.0.0",
    );
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "half-written",
            good[..good.len() / 2].to_vec(),
            "",
            "compiling plugin sql",
        ),
        (
            "not wasm",
            b"#!/bin/sh\n".to_vec(),
            "",
            "not a WebAssembly component",
        ),
        (
            "another contract",
            contract_2,
            "",
            "implements contract vsam:backend@2.0.0, this vsamrd speaks vsam:backend@1.0.0",
        ),
        (
            "init refuses",
            good.clone(),
            "params = { colour = \"blue\" }",
            "unknown parameter \"colour\"",
        ),
    ];
    for (what, bytes, backend_extra, reason) in cases {
        std::fs::write(deployment.plugin_path(), &bytes).unwrap();
        deployment.write_config(backend_extra, false);
        let report = server.reloader.reload("test").await;
        let error = report.error.unwrap_or_else(|| panic!("{what} was applied"));
        assert!(error.contains(reason), "{what}: {error}");
        assert!(error.contains("nothing was changed"), "{what}: {error}");
        let shown = status(&mut admin).await;
        assert_eq!(shown.backends[0].hash, serving, "{what}");
        let last = shown.last_reload.expect("the refusal is shown");
        assert_eq!(last.error.as_deref(), Some(error.as_str()));
        assert_eq!(read_all(&conn, "HS.REFUSED").await.len(), 10, "{what}");
    }
    // A valid component that is not this backend's plugin (the in-memory
    // example renamed over sql.wasm): it starts, but cannot read the
    // datasets the serving version reads, so it never takes traffic.
    std::fs::write(
        deployment.plugin_path(),
        std::fs::read(vsam_tests::MEMORY_WASM).unwrap(),
    )
    .unwrap();
    deployment.write_config("", false);
    let report = server.reloader.reload("test").await;
    let error = report.error.expect("another component was swapped in");
    assert!(
        error.contains("backend sqlite: the health check of the new version (plugin sql version ")
            && error.contains(
                "failed: it cannot read dataset HS.REFUSED, which the serving version reads (no storage for the dataset)"
            )
            && error.contains("check that the plugin file is this backend's plugin"),
        "{error}"
    );
    assert!(!error.contains("DELETE"), "{error}");
    assert_eq!(status(&mut admin).await.backends[0].hash, serving);
    assert_eq!(read_all(&conn, "HS.REFUSED").await.len(), 10);
    // The right plugin over another database: the new settings fail the
    // same check.
    std::fs::write(deployment.plugin_path(), &good).unwrap();
    let config = std::fs::read_to_string(deployment.config_path()).unwrap();
    std::fs::write(
        deployment.config_path(),
        config.replace("sqlite:vsam.db", "sqlite:elsewhere.db"),
    )
    .unwrap();
    let error = server.reloader.reload("test").await.error.unwrap();
    assert!(
        error.contains("backend sqlite: the health check of the new settings failed")
            && error.contains("HS.REFUSED"),
        "{error}"
    );
    assert_eq!(read_all(&conn, "HS.REFUSED").await.len(), 10);

    // The original file back: nothing to do.
    std::fs::write(deployment.plugin_path(), &good).unwrap();
    deployment.write_config("", false);
    let report = server.reloader.reload("test").await;
    assert_eq!((report.error, report.changes.len()), (None, 0));
    server.stop().await;
}

/// A plugin file written in place is picked up by the watcher once it is
/// complete; a half-written one is refused, never loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_loads_complete_versions_only() {
    let deployment = Deployment::new("", true);
    let server = deployment.start().await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("HS.WATCH", 8, 40, "ascii"))
        .await
        .unwrap();
    load(&conn, "HS.WATCH", 5).await;
    let mut admin = deployment.admin(&server).await;
    let wait_for = |hash: String| {
        let reloader = server.reloader.clone();
        async move {
            let started = Instant::now();
            loop {
                let report = reloader.last_report();
                let shown = report.as_ref().map(|r| r.changes.join("; "));
                if shown.as_deref().is_some_and(|c| c.contains(&hash[..12])) {
                    return report.unwrap();
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "version {hash} not loaded; last reload: {report:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let v2 = deployment.write_plugin_version(2);
    assert_eq!(wait_for(v2.clone()).await.trigger, "file change");
    assert_eq!(status(&mut admin).await.backends[0].hash, v2);

    // Half a file: refused (or not even tried while it grows).
    let v3 = deployment.plugin_version_bytes(3);
    std::fs::write(deployment.plugin_path(), &v3[..v3.len() / 2]).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status(&mut admin).await.backends[0].hash, v2);
    assert_eq!(read_all(&conn, "HS.WATCH").await.len(), 5);
    let v3 = deployment.write_plugin_version(3);
    wait_for(v3.clone()).await;
    assert_eq!(status(&mut admin).await.backends[0].hash, v3);
    assert_eq!(read_all(&conn, "HS.WATCH").await.len(), 5);
    server.stop().await;
}

/// Routing and backends change with the configuration: a new rule sends
/// new datasets to a new backend; a backend still holding datasets cannot
/// be removed, nor can a configured dataset be redefined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_changes_apply_all_or_nothing() {
    let deployment = Deployment::new("", false);
    let server = deployment.start().await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("HS.OLD", 8, 40, "ascii"))
        .await
        .unwrap();
    let csv = format!(
        "[plugins.csv]\npath = \"{}\"\n[backends.files]\nplugin = \"csv\"\ndirectory = \"files\"\n",
        vsam_tests::CSV_WASM
    );
    let rules = "[[routing.rules]]\npattern = \"CSV.**\"\nbackend = \"files\"\n";
    let dataset =
        "[[datasets]]\nname = \"CSV.CONFIG\"\norganization = \"esds\"\nrecord_size = 50\n";
    deployment.write_config_text(&format!("{csv}{rules}{dataset}"));
    let report = server.reloader.reload("test").await;
    assert_eq!(report.error, None);
    let changes = report.changes.join("; ");
    assert!(changes.contains("backend files: added"), "{changes}");
    assert!(
        changes.contains("routing: 1 rule(s), default sqlite"),
        "{changes}"
    );
    assert!(
        changes.contains("dataset CSV.CONFIG: added on files"),
        "{changes}"
    );
    let defined = vsam_client::define(&conn, vsam_tests::ksds("CSV.NEW", 8, 40, "ascii"))
        .await
        .unwrap();
    assert_eq!(defined.backend, "files");
    let info = vsam_client::info(&conn, "CSV.CONFIG").await.unwrap();
    assert_eq!(info.backend, "files");
    load(&conn, "CSV.NEW", 3).await;
    assert!(
        deployment
            .dir
            .path()
            .join("data/files")
            .read_dir()
            .unwrap()
            .count()
            > 0
    );

    // Removing the backend that holds CSV.NEW is refused, whole.
    deployment.write_config_text("[[routing.rules]]\npattern = \"X.**\"\nbackend = \"sqlite\"\n");
    let report = server.reloader.reload("test").await;
    let error = report.error.expect("refused");
    assert!(
        error.contains("backend files is no longer configured but holds"),
        "{error}"
    );
    let defined = vsam_client::define(&conn, vsam_tests::ksds("CSV.AFTER", 8, 40, "ascii"))
        .await
        .unwrap();
    assert_eq!(defined.backend, "files", "the old routing still applies");

    // Redefining a configured dataset is refused.
    let changed = dataset.replace("50", "60");
    deployment.write_config_text(&format!("{csv}{rules}{changed}"));
    let error = server.reloader.reload("test").await.error.expect("refused");
    assert!(
        error.contains("CSV.CONFIG is defined differently"),
        "{error}"
    );
    assert_eq!(read_all(&conn, "CSV.NEW").await.len(), 3);
    server.stop().await;
}

/// The admin interface answers only to its token and survives garbage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_interface_wants_its_token() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let deployment = Deployment::new("", false);
    let server = deployment.start().await;
    let admin_addr = server.admin_addr.expect("admin enabled").to_string();
    let mut wrong = AdminClient::connect(&admin_addr, "not-the-token-at-all".into())
        .await
        .unwrap();
    let error = wrong.request(AdminCommand::Reload).await.unwrap_err();
    assert!(error.to_string().contains("wrong admin token"), "{error}");
    assert!(server.reloader.last_report().is_none(), "nothing reloaded");

    let stream = tokio::net::TcpStream::connect(&admin_addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    for garbage in ["GET / HTTP/1.1", "{\"token\": 1}", "{}"] {
        write
            .write_all(format!("{garbage}\n").as_bytes())
            .await
            .unwrap();
        let answer = lines.next_line().await.unwrap().expect("an answer");
        assert!(
            answer.contains("not an admin request"),
            "{garbage}: {answer}"
        );
    }
    let mut admin = deployment.admin(&server).await;
    assert_eq!(status(&mut admin).await.backends.len(), 1);
    server.stop().await;
}

/// Whoever reaches the admin port holds nothing of the server's for long:
/// past the limit per address a connection is closed at once, one that
/// sends no request is closed after the handshake time, and the port
/// answers its operator again once they are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_bounds_its_connections_and_their_time() {
    use vsam_host::admin::{HANDSHAKE_TIMEOUT, MAX_CONNECTIONS_PER_ADDRESS};
    let deployment = Deployment::new("", false);
    let server = deployment.start().await;
    let admin_addr = server.admin_addr.expect("admin enabled").to_string();
    vsam_tests::assert_bounded_port(&admin_addr, MAX_CONNECTIONS_PER_ADDRESS, HANDSHAKE_TIMEOUT)
        .await;
    let mut admin = deployment.admin(&server).await;
    assert_eq!(status(&mut admin).await.backends.len(), 1);
    server.stop().await;
}

/// An admin client kept by a tool and left idle past the time the server
/// gives a connection for its first request (the server lets it go)
/// connects again for its next request, rather than failing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_client_left_idle_connects_again() {
    use vsam_host::admin::HANDSHAKE_TIMEOUT;
    let deployment = Deployment::new("", false);
    let server = deployment.start().await;
    let mut admin = deployment.admin(&server).await;
    tokio::time::sleep(HANDSHAKE_TIMEOUT + Duration::from_secs(1)).await;
    assert_eq!(status(&mut admin).await.backends.len(), 1);
    // And the connection it made serves the next request.
    assert_eq!(status(&mut admin).await.backends.len(), 1);
    server.stop().await;
}

/// `[metrics]` is read at start: a reload that changes it applies the rest
/// and says the metrics wait for a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_says_metrics_changes_wait_for_a_restart() {
    let deployment = Deployment::new("", false);
    let server = deployment.start().await;
    deployment.write_config_text("[metrics]\ndatasets = [\"PROD.*\"]\n");
    let report = server.reloader.reload("test").await;
    assert!(report.error.is_none(), "{report:?}");
    assert!(
        report
            .notes
            .contains(&"changes to [metrics] take effect at the next restart".to_string()),
        "{report:?}"
    );
    let again = server.reloader.reload("test").await;
    assert!(again.notes.is_empty(), "nothing changed since: {again:?}");
    server.stop().await;
}
