//! A misbehaving backend for sandbox tests: the in-memory store, except that
//! a key starting with `TRAP` reads outside its memory (a trap), `PANC`
//! panics, `LOOP` spins forever and `BOMB` eats memory until the host's cap
//! stops it, and a GET of a key starting with
//! `ESCP` tries to write outside its bucket, `ESCF` to reach files outside
//! its directory, `NETW<port>` to reach the network, and each returns what
//! happened; `LONG` returns a record longer than any dataset allows.
//!
//! Faults that wait in a host function rather than compute: `SLEP` sleeps
//! two minutes (WASI's clock and poll), `SSYN` (a write) makes the next
//! `sync` sleep, `PGSL` runs `SELECT pg_sleep(120)` on the granted database (`PGSX`
//! after turning its session's `statement_timeout` off),
//! `SQLW` updates the row of key `HELD` in table `held` (which a test holds
//! locked), `OBJG` reads an object from the granted bucket; `init` sleeps
//! with parameter `init = "sleep"` and spins with `init = "loop"`. `LOGS`
//! writes 200,000 log lines, `LOG1` one, `LOGF` one with a newline
//! and one of 100,000 bytes. A GET of `SQLX` runs a statement
//! on the granted database that never ends (a `WITH RECURSIVE` without a
//! bound), `SQLM` one whose rows pass any plugin's memory (4,000 rows of a
//! million bytes), `SQLA` ATTACHes a file under /tmp and VACUUMs INTO
//! another, `SQLP` sets PRAGMAs that reach beyond its database (the
//! process's heap limits, its cache, its durability) and asks one about a
//! table, `FILE` opens files in its directory and keeps them open until
//! an open fails; each returns what happened.
//! Every other key works normally.
#![warn(missing_docs)]

// The example store, compiled in (a dependency would export its interface too).
#[path = "../../../../examples/memory-plugin/src/store.rs"]
mod store;

use store::MemoryStore;
use vsam_plugin_sdk::{Backend, Dataset, Direction, Entry, Start, StoreResult, export_backend};

/// The in-memory store with faults injected by key prefix. A replaced
/// instance starts empty, so datasets are created on first use.
pub struct FaultyStore(MemoryStore, bool);

/// Long enough to outlast any call limit a test sets.
const NAP: std::time::Duration = std::time::Duration::from_secs(120);

impl FaultyStore {
    fn store(&mut self, ds: &Dataset) -> &mut MemoryStore {
        let _ = self.0.create(ds, None);
        &mut self.0
    }
}

fn misbehave(key: &[u8]) {
    if key.starts_with(b"TRAP") {
        // An access far beyond the instance's linear memory: a wasm trap
        // (out of bounds), not a panic.
        let beyond = std::hint::black_box(0xffff_fff0usize) as *const u8;
        // SAFETY: none; the access is the fault being injected.
        let _ = unsafe { std::ptr::read_volatile(beyond) };
    }
    if key.starts_with(b"PANC") {
        panic!("injected panic");
    }
    if key.starts_with(b"LOOP") {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    if key.starts_with(b"SLEP") {
        std::thread::sleep(NAP);
    }
    if key.starts_with(b"PGSL") {
        let _ = vsam_plugin_sdk::sql::query("SELECT pg_sleep(120)", &[]);
    }
    if key.starts_with(b"PGSX") {
        let _ = vsam_plugin_sdk::sql::batch("SET statement_timeout = 0");
        let _ = vsam_plugin_sdk::sql::query("SELECT pg_sleep(120)", &[]);
    }
    if key.starts_with(b"SQLW") {
        let _ =
            vsam_plugin_sdk::sql::execute("UPDATE held SET note = 'waited' WHERE id = 'HELD'", &[]);
    }
    if key.starts_with(b"OBJG") {
        let _ = vsam_plugin_sdk::objects::get("anything");
    }
    if key.starts_with(b"LOGS") {
        for n in 0..200_000 {
            vsam_plugin_sdk::log::info(&format!("flood line {n}"));
        }
    }
    if key.starts_with(b"LOG1") {
        vsam_plugin_sdk::log::info("one line after the flood");
    }
    if key.starts_with(b"LOGF") {
        vsam_plugin_sdk::log::info("forging\nFORGED vsamrd: a line of vsamrd's own");
        vsam_plugin_sdk::log::info(&format!("long line {}", "x".repeat(100_000)));
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

/// Reads and writes files inside and outside the granted directory
/// (`/data`); one line per attempt with the outcome.
fn escape_directory() -> Vec<u8> {
    let mut report = String::new();
    let mut line = |what: &str, outcome: std::io::Result<String>| {
        let outcome = match outcome {
            Ok(text) => format!("ok {}", text.trim()),
            Err(error) => format!("refused {:?}", error.kind()),
        };
        report.push_str(&format!("{what} => {outcome}\n"));
    };
    let written = |result: std::io::Result<()>| result.map(|()| "written".to_string());
    line(
        "read /data/inside.txt",
        std::fs::read_to_string("/data/inside.txt"),
    );
    line(
        "read /data/../secret.txt",
        std::fs::read_to_string("/data/../secret.txt"),
    );
    line(
        "read ../secret.txt",
        std::fs::read_to_string("../secret.txt"),
    );
    line(
        "read /data/link/secret.txt",
        std::fs::read_to_string("/data/link/secret.txt"),
    );
    line("read /etc/passwd", std::fs::read_to_string("/etc/passwd"));
    line(
        "write /data/../escaped",
        written(std::fs::write("/data/../escaped", "x")),
    );
    line(
        "write /tmp/escaped",
        written(std::fs::write("/tmp/escaped", "x")),
    );
    line(
        "list /",
        std::fs::read_dir("/").map(|d| d.count().to_string()),
    );
    let names: Vec<String> = std::env::vars().map(|(name, _)| name).collect();
    line("environment", Ok(names.join(" ")));
    report.into_bytes()
}

/// Connects to 127.0.0.1:`port`, binds a socket and looks up a name, as
/// WASI lets a component ask; one line per attempt with the outcome.
fn reach_network(port: u16) -> Vec<u8> {
    use wasip2::sockets::instance_network::instance_network;
    use wasip2::sockets::ip_name_lookup::resolve_addresses;
    use wasip2::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
    use wasip2::sockets::tcp_create_socket::create_tcp_socket;
    let network = instance_network();
    let address = |port| {
        IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port,
            address: (127, 0, 0, 1),
        })
    };
    let connect = match create_tcp_socket(IpAddressFamily::Ipv4) {
        Err(error) => format!("refused {}", error.name()),
        Ok(socket) => match socket.start_connect(&network, address(port)) {
            Err(error) => format!("refused {}", error.name()),
            Ok(()) => {
                socket.subscribe().block();
                match socket.finish_connect() {
                    Ok(_) => "ok connected".to_string(),
                    Err(error) => format!("refused {}", error.name()),
                }
            }
        },
    };
    let bind = match create_tcp_socket(IpAddressFamily::Ipv4) {
        Err(error) => format!("refused {}", error.name()),
        Ok(socket) => match socket.start_bind(&network, address(0)) {
            Err(error) => format!("refused {}", error.name()),
            Ok(()) => match socket.finish_bind() {
                Ok(()) => "ok bound".to_string(),
                Err(error) => format!("refused {}", error.name()),
            },
        },
    };
    let lookup = match resolve_addresses(&network, "localhost") {
        Err(error) => format!("refused {}", error.name()),
        Ok(addresses) => {
            addresses.subscribe().block();
            match addresses.resolve_next_address() {
                Ok(found) => format!("ok {found:?}"),
                Err(error) => format!("refused {}", error.name()),
            }
        }
    };
    format!("connect => {connect}\nbind => {bind}\nlookup => {lookup}\n").into_bytes()
}

/// Opens files in its directory and keeps them open until an open fails:
/// how many, and why it stopped.
fn open_without_end() -> String {
    let mut open = Vec::new();
    loop {
        match std::fs::File::create(format!("/data/open-{}", open.len() % 16)) {
            Ok(file) => open.push(file),
            Err(error) => {
                let count = open.len();
                // Held for good: the instance keeps them past the call.
                std::mem::forget(open);
                return format!("opened {count}, then {error}");
            }
        }
    }
}

/// Tries to reach files beyond the granted SQLite database: ATTACH a new
/// one and VACUUM INTO one, both under /tmp; one line per statement with
/// the outcome, naming the file.
fn attach_elsewhere() -> String {
    let boot = vsam_plugin_sdk::instance::boot();
    let mut report = String::new();
    for (what, path) in [("attach", "attached"), ("vacuum", "vacuumed")] {
        let path = format!("/tmp/vsamrd-{path}-{boot}.db");
        let statement = match what {
            "attach" => format!("ATTACH DATABASE '{path}' AS elsewhere"),
            _ => format!("VACUUM INTO '{path}'"),
        };
        let outcome = match vsam_plugin_sdk::sql::batch(&statement) {
            Ok(()) => "ok".to_string(),
            Err(error) => format!("refused {error:?}"),
        };
        report.push_str(&format!("{what} {path} => {outcome}\n"));
    }
    report
}

/// Sets PRAGMAs on the granted SQLite database that reach beyond it, then
/// asks one about a table: one line per statement with the outcome.
fn set_pragmas() -> String {
    let mut report = String::new();
    for statement in [
        "PRAGMA hard_heap_limit = 1",
        "PRAGMA soft_heap_limit = 1",
        "PRAGMA cache_size = -100000000",
        "PRAGMA temp_store = MEMORY",
        "PRAGMA synchronous = OFF",
        "PRAGMA journal_mode = OFF",
        "PRAGMA locking_mode = EXCLUSIVE",
        "PRAGMA writable_schema = ON",
        "PRAGMA table_info(sqlite_master)",
    ] {
        let outcome = match vsam_plugin_sdk::sql::query(statement, &[]) {
            Ok(rows) => format!("ok {} rows", rows.len()),
            Err(error) => format!("refused {error:?}"),
        };
        report.push_str(&format!("{statement} => {outcome}\n"));
    }
    report
}

/// Runs the statement `key` names (see the crate's doc): how it ended.
fn runaway_statement(key: &[u8]) -> String {
    use vsam_plugin_sdk::sql::query;
    let result = if key.starts_with(b"SQLX") {
        query(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
            &[],
        )
    } else {
        match vsam_plugin_sdk::sql::dialect() {
            Ok(vsam_plugin_sdk::sql::Dialect::Postgres) => query(
                "SELECT repeat('x', 1000000) FROM generate_series(1, 4000)",
                &[],
            ),
            _ => query(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000) SELECT zeroblob(1000000) FROM c",
                &[],
            ),
        }
    };
    match result {
        Ok(rows) => format!("ok {} rows", rows.len()),
        Err(error) => format!("refused {error:?}"),
    }
}

impl Backend for FaultyStore {
    fn init(params: &[(String, String)]) -> Result<Self, String> {
        for (name, value) in params {
            match (name.as_str(), value.as_str()) {
                ("init", "sleep") => std::thread::sleep(NAP),
                ("init", "loop") => misbehave(b"LOOP"),
                _ => {}
            }
        }
        MemoryStore::init(&[]).map(|store| FaultyStore(store, false))
    }
    fn sync(&mut self) -> StoreResult<()> {
        if std::mem::take(&mut self.1) {
            std::thread::sleep(NAP);
        }
        Ok(())
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
        if key.starts_with(b"ESCF") {
            return Ok(Some(escape_directory()));
        }
        if let Some(port) = key.strip_prefix(b"NETW") {
            let port = std::str::from_utf8(port).ok().and_then(|p| p.parse().ok());
            return Ok(Some(reach_network(port.unwrap_or(9))));
        }
        if key.starts_with(b"LONG") {
            return Ok(Some(vec![b'L'; 1 << 20]));
        }
        if key.starts_with(b"SQLX") || key.starts_with(b"SQLM") {
            return Ok(Some(runaway_statement(key).into_bytes()));
        }
        if key.starts_with(b"SQLA") {
            return Ok(Some(attach_elsewhere().into_bytes()));
        }
        if key.starts_with(b"SQLP") {
            return Ok(Some(set_pragmas().into_bytes()));
        }
        if key.starts_with(b"FILE") {
            return Ok(Some(open_without_end().into_bytes()));
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
        self.1 |= key.starts_with(b"SSYN");
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
