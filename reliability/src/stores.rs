//! The backends under test, their configuration, and the dataset helpers
//! every scenario uses.

use crate::ledger::Records;
use crate::records::KEY_LENGTH;
use anyhow::Result;
use vsam_client::{Connection, Dataset, DatasetSpec, OpenIntent, Organization};
use vsam_conformance::{Postgres, SeaweedFs};

/// A backend of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The CSV plugin on a local directory.
    Csv,
    /// The SQL plugin on embedded SQLite.
    Sqlite,
    /// The SQL plugin on a PostgreSQL server.
    Postgres,
    /// The object-store plugin on a SeaweedFS S3 server.
    Objects,
}

impl Store {
    /// Every backend, in the order of the tables.
    pub const ALL: [Store; 4] = [Store::Csv, Store::Sqlite, Store::Postgres, Store::Objects];

    /// Its name in the tables and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Store::Csv => "csv",
            Store::Sqlite => "sqlite",
            Store::Postgres => "postgresql",
            Store::Objects => "object store",
        }
    }
}

/// The external servers some backends need, started once per run.
#[derive(Default)]
pub struct Services {
    postgres: Option<Postgres>,
    seaweed: Option<SeaweedFs>,
}

impl Services {
    /// The PostgreSQL server, started on first use.
    pub fn postgres(&mut self) -> Result<&Postgres> {
        if self.postgres.is_none() {
            self.postgres = Some(Postgres::start()?);
        }
        Ok(self.postgres.as_ref().expect("started"))
    }

    /// The SeaweedFS server, started on first use.
    pub fn seaweed(&mut self) -> Result<&SeaweedFs> {
        if self.seaweed.is_none() {
            self.seaweed = Some(SeaweedFs::start()?);
        }
        Ok(self.seaweed.as_ref().expect("started"))
    }

    /// The configuration sections of backend `b` on `store`, its files
    /// under `place` (relative to the data directory, or absolute).
    pub fn sections(&mut self, store: Store, place: &str) -> Result<String> {
        self.sections_with(store, place, "")
    }

    /// `sections`, with more parameters for the object store's plugin
    /// (`name = "value", ` each).
    pub fn sections_with(&mut self, store: Store, place: &str, s3_params: &str) -> Result<String> {
        let backend = match store {
            Store::Csv => format!("plugin = \"csv\"\ndirectory = \"{place}\"\n"),
            Store::Sqlite => format!("plugin = \"sql\"\ndatabase = \"sqlite:{place}.db\"\n"),
            Store::Postgres => format!(
                "plugin = \"sql\"\ndatabase = \"{}\"\n",
                self.postgres()?.url
            ),
            Store::Objects => format!(
                "plugin = \"s3\"\nbucket = {}\nparams = {{ {s3_params}prefix = \"{place}/\" }}\n",
                self.seaweed()?.bucket_table()
            ),
        };
        Ok(format!(
            "[plugins.csv]\npath = \"builtin:csv\"\n[plugins.sql]\npath = \"builtin:sql\"\n[plugins.s3]\npath = \"builtin:s3\"\n[backends.b]\n{backend}"
        ))
    }
}

/// A KSDS on backend `backend` with 8-byte keys at offset 0.
pub fn spec(name: &str, backend: &str, record_length: usize) -> DatasetSpec {
    DatasetSpec {
        name: name.into(),
        organization: Organization::Ksds,
        key_offset: 0,
        key_length: KEY_LENGTH as u16,
        min_record: 0,
        max_record: record_length as u32,
        codepage: "ascii".into(),
        backend: backend.into(),
        layout: String::new(),
    }
}

/// Every record of `dataset`, by key, read by batched sequential GETs.
pub async fn read_all(address: &str, dataset: &str) -> Result<Records> {
    let conn = Connection::connect(address).await?;
    let ds = Dataset::open(&conn, dataset, OpenIntent::Input, 1).await?;
    let mut all = Records::new();
    loop {
        match ds.browse(1000).await {
            Ok(batch) => all.extend(batch.into_iter().map(|r| (r.key, r.data))),
            Err(e) if e.is_end_of_data() => break,
            Err(e) => return Err(e.into()),
        }
    }
    ds.close().await?;
    Ok(all)
}

/// A small deterministic random number generator (SplitMix64): runs are
/// repeatable from their printed seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
