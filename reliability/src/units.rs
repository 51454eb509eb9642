//! Units of work killed mid-flight: SIGKILL at random moments while
//! clients run units (inserts, updates and erases, then COMMIT; every third
//! unit rolled back instead), per backend. After each restart every
//! committed unit is whole, nothing of a unit not committed shows, and the
//! unit whose COMMIT was on its way is there whole or not at all; and the
//! two alternate indexes over the dataset (upgraded with it, in the same
//! commit) agree with it, read through their paths. A backend
//! that cannot keep units whole must refuse `commit` durability at OPEN,
//! and its row says so.

use crate::records::KEY_LENGTH;
use crate::stores::{self, Rng, Services, Store};
use crate::vsamrd::Vsamrd;
use anyhow::Result;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use vsam_client::{AixSpec, ClientError, Connection, Dataset, OpenIntent, PathSpec, RplOptions};
use vsam_protocol::{access, open_error};

const DATASET: &str = "UNITS.KSDS";
const RECORD_LENGTH: usize = 48;
/// Changes per unit.
const CHANGES: usize = 12;
/// The alternate indexes over the dataset, each with a path: name, path,
/// offset, length, UNIQUEKEY. By the unit number a record was last
/// written in (updates move its entry), and by the record's key (inserts
/// and erases add and remove entries of a unique index).
const INDEXES: [(&str, &str, usize, u16, bool); 2] = [
    ("UNITS.BYUNIT", "UNITS.BYUNIT.PATH", 14, 10, false),
    ("UNITS.BYKEY", "UNITS.BYKEY.PATH", 0, 8, true),
];

/// A writer's records, by key.
type Records = BTreeMap<Vec<u8>, Vec<u8>>;

/// How the kills went for one backend.
pub struct Row {
    /// The backend.
    pub store: Store,
    /// SIGKILLs sent.
    pub kills: usize,
    /// Units committed (acknowledged).
    pub committed: usize,
    /// Units rolled back on purpose.
    pub rolled_back: usize,
    /// Units whose COMMIT a kill interrupted, and how many of them were
    /// found stored (whole).
    pub in_doubt: (usize, usize),
    /// After a restart, a writer's records were neither its committed
    /// state nor that plus its unit in doubt: what was found instead.
    pub broken: Vec<String>,
    /// Errors the server answered (not a lost connection).
    pub errors: Vec<String>,
    /// The backend refused `commit` durability (as it must when its plugin
    /// cannot keep units whole).
    pub refused: Option<String>,
}

/// One writer's knowledge: what is committed, and the unit in doubt.
struct Writer {
    id: usize,
    committed: Records,
    in_doubt: Option<Records>,
    next_key: u64,
}

impl Writer {
    fn key(&mut self) -> Vec<u8> {
        self.next_key += 1;
        format!("{:02}{:06}", self.id, self.next_key).into_bytes()
    }

    fn record(key: &[u8], unit: u64) -> Vec<u8> {
        let mut record = format!("{}-unit-{unit:010}", String::from_utf8_lossy(key)).into_bytes();
        record.resize(RECORD_LENGTH, b'.');
        record
    }
}

/// Kills vsamrd `kills` times on `store` while `writers` clients run units.
pub async fn run(
    store: Store,
    kills: usize,
    writers: usize,
    services: &mut Services,
    rng: &mut Rng,
) -> Result<Row> {
    let dir = tempfile::tempdir()?;
    // Intervals of about 20 records: a unit of the object store spans
    // several and splits some, so it is stored under an undo record.
    let sections = services.sections_with(store, "units", "ci_size = \"1024\", ")?;
    let mut row = Row {
        store,
        kills,
        committed: 0,
        rolled_back: 0,
        in_doubt: (0, 0),
        broken: Vec::new(),
        errors: Vec::new(),
        refused: None,
    };
    let mut clients: Vec<Writer> = (0..writers)
        .map(|id| Writer {
            id,
            committed: Records::new(),
            in_doubt: None,
            next_key: 0,
        })
        .collect();
    for round in 0..=kills {
        let server = Vsamrd::start(dir.path(), "", &sections).await?;
        if round == 0 {
            let conn = Connection::connect(&server.address).await?;
            vsam_client::define(&conn, stores::spec(DATASET, "b", RECORD_LENGTH)).await?;
            define_indexes(&conn).await?;
            match Dataset::open_with_access(&conn, DATASET, OpenIntent::Update, access::COMMIT, 1)
                .await
            {
                Ok(_) => {}
                Err(ClientError::Vsam(refused))
                    if refused.status.fdbk == u8::from(open_error::NOT_AVAILABLE) =>
                {
                    row.refused = Some(refused.status.message.clone());
                    server.kill()?;
                    return Ok(row);
                }
                Err(other) => return Err(other.into()),
            }
        } else {
            let found = stores::read_all(&server.address, DATASET).await?;
            row.broken.extend(
                indexes_disagree(&server.address, &found)
                    .await?
                    .into_iter()
                    .map(|what| format!("after kill {round}: {what}")),
            );
            for client in &mut clients {
                let prefix = format!("{:02}", client.id).into_bytes();
                let mine: Records = found
                    .iter()
                    .filter(|(key, _)| key.starts_with(&prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let doubt = client.in_doubt.take();
                if doubt.is_some() {
                    row.in_doubt.0 += 1;
                }
                if mine == client.committed {
                    continue;
                }
                if doubt.as_ref() == Some(&mine) {
                    row.in_doubt.1 += 1;
                    client.committed = mine;
                    continue;
                }
                row.broken.push(format!(
                    "after kill {round}, writer {}: {} records found, {} committed{}",
                    client.id,
                    mine.len(),
                    client.committed.len(),
                    doubt.map_or(String::new(), |d| format!(
                        ", {} with the unit in doubt",
                        d.len()
                    ))
                ));
                client.committed = mine;
            }
        }
        if round == kills {
            server.kill()?;
            break;
        }
        let running = std::mem::take(&mut clients);
        for (client, outcome) in server
            .kill_during(running, 50, rng, units_until_killed)
            .await?
        {
            row.committed += outcome.committed;
            row.rolled_back += outcome.rolled_back;
            row.errors.extend(outcome.errors);
            clients.push(client);
        }
        server.kill()?;
    }
    Ok(row)
}

async fn define_indexes(conn: &Connection) -> Result<()> {
    for (aix, path, offset, length, unique) in INDEXES {
        let spec = AixSpec {
            name: aix.into(),
            base: DATASET.into(),
            key_offset: offset as u32,
            key_length: length,
            unique,
            upgrade: true,
        };
        vsam_client::define_aix(conn, spec).await?;
        let spec = PathSpec {
            name: path.into(),
            aix: aix.into(),
        };
        vsam_client::define_path(conn, spec).await?;
    }
    Ok(())
}

/// What differs between the records `base` holds and what each path
/// reads: every record exactly once, under its alternate key, when the
/// indexes agree with their base.
async fn indexes_disagree(address: &str, base: &Records) -> Result<Vec<String>> {
    let conn = Connection::connect(address).await?;
    let mut found = Vec::new();
    for (aix, path, offset, length, _) in INDEXES {
        let ds = Dataset::open(&conn, path, OpenIntent::Input, 1).await?;
        let mut seen: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        loop {
            match ds.browse(1000).await {
                Ok(batch) => seen.extend(
                    batch
                        .into_iter()
                        .map(|record| (record.key, record.data[..KEY_LENGTH].to_vec())),
                ),
                Err(e) if e.is_end_of_data() => break,
                Err(e) => return Err(e.into()),
            }
        }
        ds.close().await?;
        seen.sort();
        let mut expected: Vec<(Vec<u8>, Vec<u8>)> = base
            .iter()
            .map(|(key, record)| {
                let alternate = &record[offset..offset + usize::from(length)];
                (alternate.to_vec(), key.clone())
            })
            .collect();
        expected.sort();
        if seen != expected {
            let differs =
                seen.iter()
                    .zip(&expected)
                    .find(|(a, b)| a != b)
                    .map_or(String::new(), |(a, b)| {
                        format!(
                            "; first difference: {} read, {} expected",
                            String::from_utf8_lossy(&a.1),
                            String::from_utf8_lossy(&b.1)
                        )
                    });
            found.push(format!(
                "alternate index {aix}: {} records read through {path}, {} in the base{differs}",
                seen.len(),
                expected.len()
            ));
        }
    }
    Ok(found)
}

#[derive(Default)]
struct Outcome {
    committed: usize,
    rolled_back: usize,
    errors: Vec<String>,
}

/// Runs units until the connection breaks.
async fn units_until_killed(address: String, mut client: Writer, seed: u64) -> (Writer, Outcome) {
    let mut rng = Rng::new(seed);
    let mut outcome = Outcome::default();
    let Ok(conn) = Connection::connect(&address).await else {
        return (client, outcome);
    };
    let Ok(ds) =
        Dataset::open_with_access(&conn, DATASET, OpenIntent::Update, access::COMMIT, 1).await
    else {
        return (client, outcome);
    };
    let started = Instant::now();
    for unit in 0u64.. {
        let mut after = client.committed.clone();
        let changes: Result<(), ClientError> = async {
            for _ in 0..CHANGES {
                let existing = (!after.is_empty() && rng.below(100) < 40)
                    .then(|| {
                        after
                            .keys()
                            .nth(rng.below(after.len() as u64) as usize)
                            .cloned()
                    })
                    .flatten();
                match existing {
                    Some(key) if rng.below(4) == 0 => {
                        ds.read_for_update(&key).await?;
                        ds.erase(0).await?;
                        after.remove(&key);
                    }
                    Some(key) => {
                        let record = Writer::record(&key, seed ^ unit);
                        ds.read_for_update(&key).await?;
                        ds.put(0, RplOptions::direct().update(), 0, record.clone())
                            .await?;
                        after.insert(key, record);
                    }
                    None => {
                        let key = client.key();
                        let record = Writer::record(&key, seed ^ unit);
                        ds.put(0, RplOptions::direct(), 0, record.clone()).await?;
                        after.insert(key, record);
                    }
                }
            }
            Ok(())
        }
        .await;
        if let Err(error) = changes {
            // Nothing of a unit not committed may show: no doubt.
            note(&mut outcome, error);
            return (client, outcome);
        }
        if unit % 3 == 2 {
            match vsam_client::rollback(&conn).await {
                Ok(()) => outcome.rolled_back += 1,
                Err(error) => {
                    note(&mut outcome, error);
                    return (client, outcome);
                }
            }
            continue;
        }
        match vsam_client::commit(&conn).await {
            Ok(()) => {
                client.committed = after;
                outcome.committed += 1;
            }
            Err(error) => {
                client.in_doubt = Some(after);
                note(&mut outcome, error);
                return (client, outcome);
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            outcome.errors.push("never killed".into());
            return (client, outcome);
        }
    }
    (client, outcome)
}

/// A broken connection is what a kill does; anything the server answered
/// is an error to report.
fn note(outcome: &mut Outcome, error: ClientError) {
    match error {
        ClientError::Closed(_) | ClientError::Connect { .. } => {}
        other => outcome.errors.push(other.to_string()),
    }
}
