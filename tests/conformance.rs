//! The conformance suite passes through vsamrd on both shipped plugins,
//! loaded from their component files like any third-party plugin.

use std::collections::BTreeMap;
use std::path::Path;
use vsam_tests::{CSV_WASM, MEMORY_WASM};

async fn passes(wasm: &str) {
    let server = vsam_conformance::start_server_for_plugin(Path::new(wasm), &BTreeMap::new())
        .await
        .unwrap();
    let results = vsam_conformance::run_suite(&server.address, "CONF", "").await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| r.outcome.as_ref().err().map(|f| format!("{}: {f}", r.name)))
        .collect();
    assert!(
        results.len() >= 20,
        "the suite has {} scenarios",
        results.len()
    );
    assert!(
        failures.is_empty(),
        "{wasm} failed:\n{}",
        failures.join("\n")
    );
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_plugin_conforms() {
    passes(MEMORY_WASM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_plugin_conforms() {
    passes(CSV_WASM).await;
}
