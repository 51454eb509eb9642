//! The shared catalog: the entries of datasets stored in a shared database
//! kept in that database (table `vsamrd_catalog`), so that every server of
//! the fleet serves the datasets any of them defined. A DEFINE claims its
//! name there (two DEFINEs at once: one claims it, the other is told who
//! did); a DELETE leaves the name's row without a definition (a tombstone,
//! so that a server that was down meanwhile drops its entry rather than
//! bring it back). Every change is announced with NOTIFY on channel
//! `vsamrd_catalog`, which every lock session listens to.

use super::session::{CHANNEL, FleetRefusal, LockSession};
use crate::catalog::DatasetDef;

/// The table, created by the first server that needs it.
const CREATE: &str = "CREATE TABLE IF NOT EXISTS vsamrd_catalog (\
     name TEXT PRIMARY KEY, \
     definition TEXT, \
     server TEXT NOT NULL, \
     changed_at TIMESTAMPTZ NOT NULL DEFAULT now())";

/// Claims a name: a new row, or a deleted name's row.
const CLAIM: &str = "INSERT INTO vsamrd_catalog (name, definition, server) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, server = EXCLUDED.server, changed_at = now() \
     WHERE vsamrd_catalog.definition IS NULL RETURNING name";

/// Adds an entry defined before the catalog was shared, unless the name
/// has a row (defined, or deleted, elsewhere).
const CARRY_OVER: &str = "INSERT INTO vsamrd_catalog (name, definition, server) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO NOTHING RETURNING name";

const WITHDRAW: &str = "UPDATE vsamrd_catalog SET definition = NULL, server = $2, changed_at = now() \
     WHERE name = $1";

/// Marks a name deleted if its entry is still the text `$3` (read just
/// before): a definition of the name written meanwhile stays.
const WITHDRAW_IF: &str = "UPDATE vsamrd_catalog SET definition = NULL, server = $2, changed_at = now() \
     WHERE name = $1 AND definition = $3 RETURNING name";

const ENTRY: &str = "SELECT definition, server FROM vsamrd_catalog WHERE name = $1";

const ALL: &str = "SELECT name, definition, server FROM vsamrd_catalog ORDER BY name";

/// The shared catalog's table when `dataset`'s table would have its name
/// (dataset `VSAMRD.CATALOG`, in the SQL plugin's naming): such a dataset
/// cannot live on a database a fleet shares.
pub fn catalog_table_named(dataset: &str) -> Option<&'static str> {
    (vsam_plugin_sdk::naming::sql_table(dataset) == "vsamrd_catalog").then_some("vsamrd_catalog")
}

/// A name's row in the shared catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedEntry {
    /// The dataset's name.
    pub name: String,
    /// Its definition (with the defining server's backend name); `None`
    /// once deleted.
    pub definition: Option<DatasetDef>,
    /// The server that defined or deleted it last.
    pub server: String,
}

/// What claiming a name found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The name is this server's definition now.
    Claimed,
    /// Another definition holds the name: it, and the server that made it.
    Taken(DatasetDef, String),
}

fn unavailable(e: impl std::fmt::Display) -> FleetRefusal {
    FleetRefusal::Unavailable(format!("the shared catalog cannot be used: {e}"))
}

fn parse(name: &str, text: Option<String>) -> Result<Option<DatasetDef>, FleetRefusal> {
    text.map(|text| {
        serde_json::from_str(&text).map_err(|e| {
            unavailable(format!(
                "the entry of {name} in vsamrd_catalog is not a definition this server reads ({e})"
            ))
        })
    })
    .transpose()
}

impl LockSession {
    /// Runs `statement` with text parameters on the lock session, the
    /// catalog table created first if it is missing.
    async fn catalog_rows(
        &self,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, FleetRefusal> {
        self.rows_creating(CREATE, statement, params).await
    }

    /// Runs `statement` with text parameters on the lock session, its table
    /// created by `create` first if it is missing. (Typed parameters: one
    /// round trip, where an untyped statement is prepared, run and closed.)
    pub(super) async fn rows_creating(
        &self,
        create: &str,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, FleetRefusal> {
        let (client, _) = self.client().await?;
        let params: Vec<_> = params
            .iter()
            .map(|param| (*param, tokio_postgres::types::Type::TEXT))
            .collect();
        match client.query_typed(statement, &params).await {
            Ok(rows) => Ok(rows),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                // Servers starting together may race to create it: the
                // loser's error is a duplicate, and the table is there.
                if let Err(e) = client.batch_execute(create).await
                    && client.batch_execute(create).await.is_err()
                {
                    return Err(unavailable(crate::runtime::error_chain(&e)));
                }
                client
                    .query_typed(statement, &params)
                    .await
                    .map_err(|e| unavailable(crate::runtime::error_chain(&e)))
            }
            Err(e) => Err(unavailable(crate::runtime::error_chain(&e))),
        }
    }

    /// Tells every server of the fleet that the catalog changed.
    async fn announce(&self, what: &str) -> Result<(), FleetRefusal> {
        let (client, _) = self.client().await?;
        let text = tokio_postgres::types::Type::TEXT;
        client
            .query_typed(
                "SELECT pg_notify($1, $2)",
                &[(&CHANNEL, text.clone()), (&what, text)],
            )
            .await
            .map_err(|e| unavailable(crate::runtime::error_chain(&e)))?;
        Ok(())
    }

    /// Claims `def`'s name for it (see [`Claim`]), announcing a claim.
    pub async fn claim(&self, def: &DatasetDef) -> Result<Claim, FleetRefusal> {
        let text = serde_json::to_string(def).map_err(unavailable)?;
        let claimed = self
            .catalog_rows(CLAIM, &[&def.name, &text, &self.application()])
            .await?;
        if !claimed.is_empty() {
            self.announce(&format!("define {}", def.name)).await?;
            return Ok(Claim::Claimed);
        }
        match self.entry(&def.name).await? {
            Some(entry) => match entry.definition {
                Some(theirs) => Ok(Claim::Taken(theirs, entry.server)),
                // Deleted between the two statements: claim it again.
                None => Box::pin(self.claim(def)).await,
            },
            None => Err(unavailable(format!(
                "the claim of {} was refused, and the name has no entry",
                def.name
            ))),
        }
    }

    /// Adds `def`, defined before the catalog was shared, unless the name
    /// has a row already.
    pub async fn carry_over(&self, def: &DatasetDef) -> Result<(), FleetRefusal> {
        let text = serde_json::to_string(def).map_err(unavailable)?;
        let added = self
            .catalog_rows(CARRY_OVER, &[&def.name, &text, &self.application()])
            .await?;
        if !added.is_empty() {
            self.announce(&format!("define {}", def.name)).await?;
        }
        Ok(())
    }

    /// Marks `name` deleted, announcing it.
    pub async fn withdraw(&self, name: &str) -> Result<(), FleetRefusal> {
        self.catalog_rows(WITHDRAW, &[&name, &self.application()])
            .await?;
        self.announce(&format!("delete {name}")).await
    }

    /// Marks `def`'s name deleted, announcing it, if its entry is that very
    /// definition (the one this server wrote, with its backend's name):
    /// true if it was. Another server's definition of the name stays.
    pub async fn withdraw_if(&self, def: &DatasetDef) -> Result<bool, FleetRefusal> {
        let rows = self.catalog_rows(ENTRY, &[&def.name]).await?;
        let Some(text) = rows.first().and_then(|row| row.get::<_, Option<String>>(0)) else {
            return Ok(false);
        };
        if parse(&def.name, Some(text.clone())).ok().flatten().as_ref() != Some(def) {
            return Ok(false);
        }
        let withdrawn = self
            .catalog_rows(WITHDRAW_IF, &[&def.name, &self.application(), &text])
            .await?;
        if withdrawn.is_empty() {
            return Ok(false);
        }
        self.announce(&format!("delete {}", def.name)).await?;
        Ok(true)
    }

    /// The row of `name`, if it has one.
    pub async fn entry(&self, name: &str) -> Result<Option<SharedEntry>, FleetRefusal> {
        let rows = self.catalog_rows(ENTRY, &[&name]).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(SharedEntry {
            name: name.to_string(),
            definition: parse(name, row.get(0))?,
            server: row.get(1),
        }))
    }

    /// Every row, in name order; a row whose definition this server cannot
    /// read is left out (and logged), so that one damaged row does not
    /// stop the others from being served.
    pub async fn entries(&self) -> Result<Vec<SharedEntry>, FleetRefusal> {
        Ok(read_rows(&self.catalog_rows(ALL, &[]).await?))
    }

    /// The rows of `names` that have one, read as [`Self::entries`] reads
    /// them: what announcements named, a few hundred names a statement.
    pub async fn entries_named(
        &self,
        names: impl IntoIterator<Item = &String>,
    ) -> Result<Vec<SharedEntry>, FleetRefusal> {
        let names: Vec<&String> = names.into_iter().collect();
        let mut read = Vec::new();
        for chunk in names.chunks(NAMED_AT_ONCE) {
            // Dataset names hold no comma; a name that does (in a row
            // someone wrote by hand) only reads rows that are applied
            // like any other.
            let list = chunk
                .iter()
                .map(|name| name.as_str())
                .collect::<Vec<_>>()
                .join(",");
            read.extend(read_rows(&self.catalog_rows(NAMED, &[&list]).await?));
        }
        Ok(read)
    }
}

/// The rows of the names a comma-separated list names.
const NAMED: &str = "SELECT name, definition, server FROM vsamrd_catalog \
     WHERE name = ANY(string_to_array($1, ',')) ORDER BY name";

/// The most names one [`NAMED`] statement reads.
const NAMED_AT_ONCE: usize = 500;

/// Rows of [`ALL`] or [`NAMED`] as entries, those this server cannot read
/// left out (and logged).
fn read_rows(rows: &[tokio_postgres::Row]) -> Vec<SharedEntry> {
    rows.iter()
        .filter_map(|row| {
            let name: String = row.get(0);
            match parse(&name, row.get(1)) {
                Ok(definition) => Some(SharedEntry {
                    definition,
                    server: row.get(2),
                    name,
                }),
                Err(refusal) => {
                    tracing::warn!("{refusal}; the entry is left out");
                    None
                }
            }
        })
        .collect()
}
