//! SIGKILL at random moments under write load, per backend: every write a
//! client was told succeeded must be there after the restart, intact.

use crate::ledger::{self, Check, Ledger, State};
use crate::stores::{self, Rng, Services, Store};
use crate::vsamrd::Vsamrd;
use anyhow::Result;
use std::time::{Duration, Instant};
use vsam_client::{ClientError, Connection, Dataset, OpenIntent, RplOptions};

const DATASET: &str = "CRASH.KSDS";
const RECORD_LENGTH: usize = 64;
/// Records per PUT CHAIN.
const CHAIN: usize = 20;

/// How the kills went for one backend.
pub struct Row {
    /// The backend.
    pub store: Store,
    /// SIGKILLs sent.
    pub kills: usize,
    /// Every check after a restart, summed.
    pub check: Check,
    /// Spawn-to-ready times of the restarts.
    pub restarts: Vec<Duration>,
    /// Errors the server answered (not a lost connection) while writing.
    pub answered_errors: Vec<String>,
    /// Which writes were lost, if any.
    pub losses: Vec<String>,
}

/// Kills vsamrd `kills` times on `store` while `writers` clients write.
pub async fn run(
    store: Store,
    kills: usize,
    writers: usize,
    services: &mut Services,
    rng: &mut Rng,
) -> Result<Row> {
    let dir = tempfile::tempdir()?;
    let sections = services.sections(store, "crash")?;
    let mut ledgers: Vec<Ledger> = (0..writers)
        .map(|w| Ledger::new(w, RECORD_LENGTH))
        .collect();
    let mut row = Row {
        store,
        kills,
        check: Check::default(),
        restarts: Vec::new(),
        answered_errors: Vec::new(),
        losses: Vec::new(),
    };
    for round in 0..=kills {
        let server = Vsamrd::start(dir.path(), "", &sections).await?;
        if round == 0 {
            let conn = Connection::connect(&server.address).await?;
            vsam_client::define(&conn, stores::spec(DATASET, "b", RECORD_LENGTH)).await?;
        } else {
            row.restarts.push(server.ready_after);
            let found = stores::read_all(&server.address, DATASET).await?;
            let (split, foreign) = ledger::by_writer(found, writers);
            row.check.corrupted += foreign;
            for (ledger, found) in ledgers.iter_mut().zip(&split) {
                row.check += ledger.check(found);
                for loss in ledger.losses.drain(..) {
                    row.losses.push(format!("after kill {round}: {loss}"));
                }
            }
        }
        if round == kills {
            server.kill()?;
            break;
        }
        let clients = std::mem::take(&mut ledgers);
        for (ledger, errors) in server
            .kill_during(clients, 20, rng, write_until_killed)
            .await?
        {
            ledgers.push(ledger);
            row.answered_errors.extend(errors);
        }
        server.kill()?;
    }
    Ok(row)
}

/// Writes (inserts, updates, erases and PUT CHAINs) until the connection
/// breaks; the write it breaks under is in doubt. Returns the ledger and
/// the errors the server answered, which a kill never causes.
async fn write_until_killed(address: String, ledger: Ledger, seed: u64) -> (Ledger, Vec<String>) {
    write_until_killed_on(DATASET, address, ledger, seed).await
}

/// [`write_until_killed`] on `dataset`.
pub(crate) async fn write_until_killed_on(
    dataset: &'static str,
    address: String,
    mut ledger: Ledger,
    seed: u64,
) -> (Ledger, Vec<String>) {
    let mut rng = Rng::new(seed);
    let mut errors = Vec::new();
    let Ok(conn) = Connection::connect(&address).await else {
        return (ledger, errors);
    };
    let Ok(ds) = Dataset::open(&conn, dataset, OpenIntent::Update, 1).await else {
        return (ledger, errors);
    };
    let started = Instant::now();
    loop {
        let roll = rng.below(100);
        let existing = ledger.present_key(rng.next());
        let outcome = match (roll, existing) {
            (0..45, _) | (_, None) => {
                let key = ledger.new_key();
                let version = ledger.new_version();
                let record = ledger.record(&key, version);
                let result = ds.put(0, RplOptions::direct(), 0, record).await.map(drop);
                settle(&mut ledger, key, State::Present(version), result)
            }
            (45..70, Some(key)) => {
                let version = ledger.new_version();
                let record = ledger.record(&key, version);
                let result = async {
                    ds.reading(RplOptions::direct().update())
                        .key(&key)
                        .records()
                        .await?;
                    ds.put(0, RplOptions::direct().update(), 0, record).await?;
                    Ok(())
                }
                .await;
                settle(&mut ledger, key, State::Present(version), result)
            }
            (70..80, Some(key)) => {
                let result = async {
                    ds.reading(RplOptions::direct().update())
                        .key(&key)
                        .records()
                        .await?;
                    ds.erase(0).await
                }
                .await;
                settle(&mut ledger, key, State::Absent, result)
            }
            _ => {
                let (chain, records) = ledger.new_chain(CHAIN);
                match ds.put_chain(0, RplOptions::direct(), records).await {
                    Ok(outcome) if outcome.failure.is_none() => {
                        for (key, version) in chain {
                            ledger.acknowledge(key, State::Present(version));
                        }
                        Ok(())
                    }
                    Ok(outcome) => {
                        let written = outcome.written.len();
                        for (key, version) in chain.into_iter().take(written) {
                            ledger.acknowledge(key, State::Present(version));
                        }
                        Err(format!("PUT CHAIN stopped: {:?}", outcome.failure))
                    }
                    Err(error) => {
                        ledger.chain_in_doubt(chain);
                        answered(error)
                    }
                }
            }
        };
        if let Err(error) = outcome {
            if !error.is_empty() {
                errors.push(error);
            }
            return (ledger, errors);
        }
        if started.elapsed() > Duration::from_secs(60) {
            errors.push("never killed".into());
            return (ledger, errors);
        }
    }
}

/// Books a single write: acknowledged, or in doubt when the connection
/// broke. `Err("")` stops the writer quietly (the kill); `Err(message)`
/// reports an error the server answered.
fn settle(
    ledger: &mut Ledger,
    key: Vec<u8>,
    state: State,
    result: Result<(), ClientError>,
) -> Result<(), String> {
    match result {
        Ok(()) => {
            ledger.acknowledge(key, state);
            Ok(())
        }
        Err(error) => {
            ledger.in_doubt(key, state);
            answered(error)
        }
    }
}

/// A broken connection is what a kill does; anything the server answered
/// is an error to report.
fn answered(error: ClientError) -> Result<(), String> {
    match error {
        ClientError::Closed(_) | ClientError::Connect { .. } => Err(String::new()),
        other => Err(other.to_string()),
    }
}
