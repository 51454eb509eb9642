//! A misbehaving backend for sandbox tests: the in-memory store, except that
//! a key starting with `TRAP` panics, `LOOP` spins forever and `BOMB` eats
//! memory until the host's cap stops it, and a GET of a key starting with
//! `ESCP` tries to write outside its bucket and returns what happened.
//! Every other key works normally.

// The example store, compiled in (a dependency would export its interface too).
#[path = "../../../../examples/memory-plugin/src/store.rs"]
mod store;

use store::MemoryStore;
use vsam_plugin_sdk::{Backend, Dataset, Direction, Entry, Start, StoreResult, export_backend};

/// The in-memory store with faults injected by key prefix. A replaced
/// instance starts empty, so datasets are created on first use.
pub struct FaultyStore(MemoryStore);

impl FaultyStore {
    fn store(&mut self, ds: &Dataset) -> &mut MemoryStore {
        let _ = self.0.create(ds, None);
        &mut self.0
    }
}

fn misbehave(key: &[u8]) {
    if key.starts_with(b"TRAP") {
        panic!("injected trap");
    }
    if key.starts_with(b"LOOP") {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    if key.starts_with(b"BOMB") {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 16 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

/// Writes under names that would leave the bucket (and one that would
/// not); one line per name with the outcome.
fn escape_bucket() -> Vec<u8> {
    let mut report = String::new();
    for name in [
        "../outside",
        "inside/../../outside",
        "/outside",
        "inside//x",
        "inside",
    ] {
        let outcome = match vsam_plugin_sdk::objects::put(name, b"escaped") {
            Ok(_) => "stored".to_string(),
            Err(error) => format!("{error:?}"),
        };
        report.push_str(&format!("{name} => {outcome}\n"));
    }
    report.into_bytes()
}

impl Backend for FaultyStore {
    fn init(params: &[(String, String)]) -> Result<Self, String> {
        MemoryStore::init(params).map(FaultyStore)
    }
    fn create(&mut self, ds: &Dataset, layout: Option<&str>) -> StoreResult<()> {
        self.0.create(ds, layout)
    }
    fn destroy(&mut self, ds: &Dataset) -> StoreResult<()> {
        self.0.destroy(ds)
    }
    fn get(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        if key.starts_with(b"ESCP") {
            return Ok(Some(escape_bucket()));
        }
        misbehave(key);
        self.store(ds).get(ds, key)
    }
    fn scan(
        &mut self,
        ds: &Dataset,
        from: Start,
        dir: Direction,
        limit: u32,
    ) -> StoreResult<Vec<Entry>> {
        if let Start::Inclusive(key) | Start::Exclusive(key) = &from {
            misbehave(key);
        }
        self.store(ds).scan(ds, from, dir, limit)
    }
    fn insert(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        misbehave(&key);
        self.store(ds).insert(ds, key, value)
    }
    fn replace(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        misbehave(&key);
        self.store(ds).replace(ds, key, value)
    }
    fn delete(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<()> {
        misbehave(key);
        self.store(ds).delete(ds, key)
    }
    fn append(&mut self, ds: &Dataset, value: Vec<u8>) -> StoreResult<Vec<u8>> {
        misbehave(&value);
        self.store(ds).append(ds, value)
    }
}

export_backend!(FaultyStore);
