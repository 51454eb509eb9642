//! What one plugin call costs, with no TCP and no server: the same GETs and
//! INSERTs made directly on a store, through its WebAssembly instance and
//! natively, on one thread. It measures the sandbox (the in-memory store in
//! wasm and natively) and each language a plugin is written in: the log
//! store written in Rust (`examples/log-plugin`) and the same store written
//! in Python (`examples/python-plugin`, built by componentize-py); the SQL
//! plugin in Rust and the JavaScript store (`examples/js-plugin`, built by
//! ComponentizeJS), both on an SQLite database.

use crate::{DATASET, KEY_LENGTH, RECORD_LENGTH, record};
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use vsam_host::config::BackendSettings;
use vsam_host::runtime::call::{Call, NativeStore, RecordStore};
use vsam_host::runtime::sql::DatabaseUrl;
use vsam_host::runtime::{Grants, LoadedPlugin, PluginRuntime, WasmStore};
use vsam_plugin_sdk::{Backend, Dataset};

/// Records stored before the timed calls.
const STORED: u64 = 1000;

/// The cost of one call on one store.
pub struct CallCost {
    /// Which store, in which language, built how.
    pub store: &'static str,
    /// Microseconds per GET of a stored record.
    pub get_us: f64,
    /// Microseconds per INSERT of a new record (no sync).
    pub insert_us: f64,
}

fn settings(directory: Option<&Path>) -> BackendSettings {
    BackendSettings {
        name: "bench".into(),
        plugin: "bench".into(),
        directory: directory.map(Path::to_path_buf),
        database: directory.map(|dir| DatabaseUrl::Sqlite(dir.join("bench.db"))),
        bucket: None,
        log: false,
        params: Vec::new(),
        call_timeout_ms: 5000,
        memory_limit: 1 << 30,
        readers: 0,
        storage_faults: None,
    }
}

fn call(store: &mut dyn RecordStore, request: Call) -> Result<()> {
    store
        .call(request)
        .map(drop)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Times `calls` GETs and `calls / 10` INSERTs on `store`.
fn measure(store: &'static str, target: &mut dyn RecordStore, calls: u64) -> Result<CallCost> {
    let ds = Dataset::ksds(DATASET, KEY_LENGTH as u32, RECORD_LENGTH as u32).with_codepage("ascii");
    call(target, Call::Create(ds.clone(), None))?;
    for i in 0..STORED {
        call(
            target,
            Call::Insert(ds.clone(), record(i)[..KEY_LENGTH].to_vec(), record(i)),
        )?;
    }
    call(target, Call::Sync)?;
    let started = Instant::now();
    for i in 0..calls {
        let key = record(i % STORED)[..KEY_LENGTH].to_vec();
        call(target, Call::Get(ds.clone(), key))?;
    }
    let get_us = started.elapsed().as_secs_f64() * 1e6 / calls as f64;
    let inserts = (calls / 10).max(1);
    let started = Instant::now();
    for i in STORED..STORED + inserts {
        call(
            target,
            Call::Insert(ds.clone(), record(i)[..KEY_LENGTH].to_vec(), record(i)),
        )?;
    }
    let insert_us = started.elapsed().as_secs_f64() * 1e6 / inserts as f64;
    call(target, Call::Sync)?;
    Ok(CallCost {
        store,
        get_us,
        insert_us,
    })
}

/// An instance of `plugin` granted `directory` and an SQLite file in it.
fn wasm(plugin: &Arc<LoadedPlugin>, directory: &Path) -> Result<WasmStore> {
    let settings = settings(Some(directory));
    let grants = Grants::for_backend(&settings, plugin.runtime())?;
    Ok(WasmStore::new(plugin.clone(), settings, grants))
}

/// The component a `scripts/` build script builds (the Python and the
/// JavaScript examples).
fn built_by(script: &str) -> Result<Vec<u8>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(script);
    let built = std::process::Command::new(&script)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !built.status.success() {
        anyhow::bail!(
            "{} failed (scripts/setup installs what it needs): {}",
            script.display(),
            String::from_utf8_lossy(&built.stderr).trim()
        );
    }
    let path = String::from_utf8(built.stdout)?;
    std::fs::read(path.trim()).with_context(|| format!("reading {}", path.trim()))
}

/// Measures every store, on this thread (a call blocks it); the runtime
/// `tokio` serves the instances' host functions. A store that cannot be
/// measured (the Python one, without componentize-py) is named in the
/// notes with the reason.
pub fn run(calls: u64, tokio: tokio::runtime::Handle) -> Result<(Vec<CallCost>, Vec<String>)> {
    let runtime = PluginRuntime::new(None, tokio)?;
    let dir = tempfile::tempdir()?;
    let place = |name: &str| -> Result<std::path::PathBuf> {
        let path = dir.path().join(name);
        std::fs::create_dir_all(&path)?;
        Ok(path)
    };
    let memory = runtime.load("memory", vsam_host::runtime::builtin::MEMORY)?;
    let log = runtime.load("log", &std::fs::read(env!("VSAM_BENCH_LOG_WASM"))?)?;
    let python = built_by("build-python-plugin").and_then(|bytes| runtime.load("python", &bytes));
    let javascript = built_by("build-js-plugin").and_then(|bytes| runtime.load("js", &bytes));
    let sql = runtime.load("sql", vsam_host::runtime::builtin::SQL)?;
    let log_native = place("log-native")?;
    let native_log = vsam_plugin_sdk::storage::with_data_dir(&log_native, || {
        vsam_example_log::LogStore::init(&[])
    })
    .map_err(anyhow::Error::msg)?;
    let mut costs = vec![
        measure(
            "memory, Rust, wasm",
            &mut WasmStore::new(memory, settings(None), Default::default()),
            calls,
        )?,
        measure(
            "memory, Rust, native",
            &mut NativeStore(
                vsam_example_memory::MemoryStore::init(&[]).map_err(anyhow::Error::msg)?,
            ),
            calls,
        )?,
        measure("log, Rust, wasm", &mut wasm(&log, &place("log")?)?, calls)?,
        measure("log, Rust, native", &mut NativeStore(native_log), calls)?,
    ];
    let mut notes = Vec::new();
    match python {
        Ok(python) => costs.push(measure(
            "log, Python, wasm",
            &mut wasm(&python, &place("python")?)?,
            calls,
        )?),
        Err(error) => notes.push(format!("log, Python, wasm: not measured: {error:#}")),
    }
    costs.push(measure(
        "sqlite, Rust, wasm",
        &mut wasm(&sql, &place("sql")?)?,
        calls,
    )?);
    match javascript {
        Ok(javascript) => costs.push(measure(
            "sqlite, JavaScript, wasm",
            &mut wasm(&javascript, &place("js")?)?,
            calls,
        )?),
        Err(error) => notes.push(format!("sqlite, JavaScript, wasm: not measured: {error:#}")),
    }
    Ok((costs, notes))
}
