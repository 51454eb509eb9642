//! Many clients at once: inserts from concurrent connections all land
//! exactly once, and two clients contending for one record serialize on
//! exclusive control without losing an update.

use vsam_client::{Connection, Dataset, DatasetSpec, OpenIntent, RplOptions};
use vsam_tests::{CSV_WASM, start_with_plugin};

fn counter_spec(name: &str) -> DatasetSpec {
    vsam_tests::ksds(name, 8, 32, "ascii")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_land_exactly_once() {
    let server = start_with_plugin(CSV_WASM, "").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, counter_spec("CC.INSERTS"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for client in 0..8u32 {
        let address = server.address.clone();
        tasks.push(tokio::spawn(async move {
            let conn = Connection::connect(&address).await.unwrap();
            let ds = Dataset::open(&conn, "CC.INSERTS", OpenIntent::Update, 1)
                .await
                .unwrap();
            for i in 0..50u32 {
                // Every client also tries a key another client owns: exactly one wins.
                let own = format!("{client:02}{i:06}-mine");
                ds.put(0, RplOptions::direct(), 0, own.into_bytes())
                    .await
                    .unwrap();
                let shared = format!("99{i:06}-by{client}");
                let _ = ds
                    .put(0, RplOptions::direct(), 0, shared.into_bytes())
                    .await;
            }
            ds.close().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let ds = Dataset::open(&conn, "CC.INSERTS", OpenIntent::Input, 1)
        .await
        .unwrap();
    let mut keys = Vec::new();
    loop {
        match ds.browse(500).await {
            Ok(batch) => keys.extend(batch.into_iter().map(|r| r.key)),
            Err(e) if e.is_end_of_data() => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(keys.len(), 8 * 50 + 50);
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, keys, "every key once, in order");
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_contending_for_one_record_lose_no_update() {
    let server = start_with_plugin(CSV_WASM, "").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, counter_spec("CC.COUNTER"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "CC.COUNTER", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"COUNTER.00000000".to_vec())
        .await
        .unwrap();
    ds.close().await.unwrap();

    let mut tasks = Vec::new();
    for _ in 0..2 {
        let address = server.address.clone();
        tasks.push(tokio::spawn(async move {
            let conn = Connection::connect(&address).await.unwrap();
            let ds = Dataset::open(&conn, "CC.COUNTER", OpenIntent::Update, 1)
                .await
                .unwrap();
            let upd = RplOptions::direct().update();
            let mut conflicts = 0u32;
            let mut done = 0;
            while done < 100 {
                match ds.get(0, upd, b"COUNTER.", 0, 0, 1).await {
                    Ok(records) => {
                        let value: u32 = std::str::from_utf8(&records[0].data[8..])
                            .unwrap()
                            .parse()
                            .unwrap();
                        let next = format!("COUNTER.{:08}", value + 1);
                        ds.put(0, upd, 0, next.into_bytes()).await.unwrap();
                        done += 1;
                    }
                    Err(e) if e.vsam().is_some_and(|v| v.fdbk() == 0x14) => {
                        conflicts += 1;
                        tokio::task::yield_now().await;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    let ds = Dataset::open(&conn, "CC.COUNTER", OpenIntent::Input, 1)
        .await
        .unwrap();
    let record = ds.read(b"COUNTER.").await.unwrap();
    assert_eq!(
        record.data, b"COUNTER.00000200",
        "200 increments, none lost ({conflicts} conflicts seen)"
    );
    server.server.stop().await;
}
