//! A fleet on one PostgreSQL: three vsamrd on the same database, clients
//! spread over them transferring money between accounts (GET UPD of two
//! accounts in key order, PUT both and a journal record, COMMIT), one
//! server SIGKILLed and started again mid-run; its clients fail over to
//! the others. At the end the sum of the balances is unchanged, every
//! account's balance and count of transfers agree with the journal (no
//! update lost), every acknowledged transfer is in the journal, and the
//! database holds no record lock.

use crate::stores::{self, Rng, Services, Store};
use crate::vsamrd::Vsamrd;
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use vsam_client::{ClientError, Connection, Dataset, DatasetSpec, OpenIntent, RplOptions};
use vsam_protocol::{access, fdbk};

const ACCOUNTS: &str = "FLEET.ACCOUNTS";
const JOURNAL: &str = "FLEET.JOURNAL";
const RECORD_LENGTH: usize = 40;
const JOURNAL_KEY: usize = 16;
const START_BALANCE: u64 = 1_000_000;

/// The figures of a run.
pub struct Report {
    /// Servers in the fleet.
    pub servers: usize,
    /// Client connections.
    pub clients: usize,
    /// Accounts.
    pub accounts: usize,
    /// SIGKILLs sent (each server started again after).
    pub kills: usize,
    /// Transfers acknowledged.
    pub committed: usize,
    /// Refusals with X'14' (a record another connection or server held).
    pub conflicts: usize,
    /// Transfers whose COMMIT a kill interrupted, and how many of them
    /// were found stored.
    pub in_doubt: (usize, usize),
    /// Longest time a client of a killed server took to be served again.
    pub failover: Duration,
    /// From the DEFINEs on one server until every server listed them.
    pub catalog_seen: Duration,
    /// Broken promises, each described.
    pub broken: Vec<String>,
}

/// One transfer: its journal key, the two accounts and the amount.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Transfer {
    key: Vec<u8>,
    from: u32,
    to: u32,
    amount: u64,
}

fn account_key(n: u32) -> Vec<u8> {
    format!("A{n:07}").into_bytes()
}

fn account_record(n: u32, balance: u64, count: u64) -> Vec<u8> {
    let mut record = format!("A{n:07}{balance:012}{count:010}").into_bytes();
    record.resize(RECORD_LENGTH, b' ');
    record
}

/// Balance and count of transfers of an account record.
fn parse_account(record: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(record.get(8..30)?).ok()?;
    Some((text[..12].parse().ok()?, text[12..22].parse().ok()?))
}

fn journal_record(transfer: &Transfer) -> Vec<u8> {
    let mut record = transfer.key.clone();
    record.extend(
        format!(
            "{:07}{:07}{:06}",
            transfer.from, transfer.to, transfer.amount
        )
        .into_bytes(),
    );
    record.resize(RECORD_LENGTH, b' ');
    record
}

fn parse_journal(key: &[u8], record: &[u8]) -> Option<Transfer> {
    let text = std::str::from_utf8(record.get(JOURNAL_KEY..JOURNAL_KEY + 20)?).ok()?;
    Some(Transfer {
        key: key.to_vec(),
        from: text[..7].parse().ok()?,
        to: text[7..14].parse().ok()?,
        amount: text[14..20].parse().ok()?,
    })
}

/// What one client did.
#[derive(Default)]
struct Teller {
    committed: Vec<Transfer>,
    in_doubt: Vec<Transfer>,
    conflicts: usize,
    errors: Vec<String>,
    failover: Duration,
}

/// Runs the fleet: `servers` vsamrd, `clients` connections, `secs`
/// seconds, `kills` SIGKILLs spread over the run.
pub async fn run(
    servers: usize,
    clients: usize,
    accounts: u32,
    secs: u64,
    kills: usize,
    services: &mut Services,
    rng: &mut Rng,
) -> Result<Report> {
    let sections = services.sections(Store::Postgres, "fleet")?;
    let dirs: Vec<tempfile::TempDir> = (0..servers)
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<_>>()?;
    let mut fleet = Vec::with_capacity(servers);
    for dir in &dirs {
        fleet.push(Some(Vsamrd::start(dir.path(), "", &sections).await?));
    }
    let addresses = |fleet: &[Option<Vsamrd>]| -> Vec<String> {
        fleet
            .iter()
            .map(|s| s.as_ref().map_or(String::new(), |s| s.address.clone()))
            .collect()
    };
    // One server defines the datasets; the others list them as soon as
    // the shared catalog tells them.
    let defined = Instant::now();
    {
        let conn = Connection::connect(&addresses(&fleet)[0]).await?;
        vsam_client::define(&conn, stores::spec(ACCOUNTS, "b", RECORD_LENGTH)).await?;
        vsam_client::define(&conn, journal_spec()).await?;
    }
    let mut catalog_seen = Duration::ZERO;
    for server in fleet.iter().flatten() {
        let conn = Connection::connect(&server.address).await?;
        loop {
            let names = vsam_client::list(&conn, "FLEET.**").await?;
            if names.len() == 2 {
                break;
            }
            if defined.elapsed() > Duration::from_secs(10) {
                anyhow::bail!(
                    "server {} did not list the datasets defined on another within 10 s",
                    server.address
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        catalog_seen = catalog_seen.max(defined.elapsed());
    }
    {
        let conn = Connection::connect(&addresses(&fleet)[0]).await?;
        let ds = Dataset::open(&conn, ACCOUNTS, OpenIntent::Output, 1).await?;
        for n in 0..accounts {
            ds.put(
                0,
                RplOptions::direct(),
                0,
                account_record(n, START_BALANCE, 0),
            )
            .await?;
        }
        ds.close().await?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let listed = addresses(&fleet);
    let tasks: Vec<_> = (0..clients)
        .map(|id| {
            // Its own server first, then the others: where it fails over.
            let first = id % servers;
            let list: Vec<String> = (0..servers)
                .map(|k| listed[(first + k) % servers].clone())
                .collect();
            tokio::spawn(teller(
                id,
                list.join(","),
                accounts,
                rng.next(),
                stop.clone(),
            ))
        })
        .collect();
    let started = Instant::now();
    let run_for = Duration::from_secs(secs);
    for kill in 0..kills {
        let at = run_for * (kill as u32 + 1) / (kills as u32 + 2);
        tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
        let victim = rng.below(servers as u64) as usize;
        if let Some(server) = fleet[victim].take() {
            server.kill()?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        fleet[victim] = Some(Vsamrd::start(dirs[victim].path(), "", &sections).await?);
    }
    tokio::time::sleep(run_for.saturating_sub(started.elapsed())).await;
    stop.store(true, Ordering::Relaxed);
    let mut tellers = Vec::with_capacity(clients);
    for task in tasks {
        tellers.push(task.await?);
    }

    let address = addresses(&fleet)[0].clone();
    let found = stores::read_all(&address, ACCOUNTS).await?;
    let journal = stores::read_all(&address, JOURNAL).await?;
    for server in fleet.into_iter().flatten() {
        server.terminate().await?;
    }
    let held = services.postgres()?.psql(
        "vsam",
        "select count(*) from pg_locks where locktype = 'advisory'",
    )?;

    let mut report = Report {
        servers,
        clients,
        accounts: accounts as usize,
        kills,
        committed: tellers.iter().map(|t| t.committed.len()).sum(),
        conflicts: tellers.iter().map(|t| t.conflicts).sum(),
        in_doubt: (0, 0),
        failover: tellers.iter().map(|t| t.failover).max().unwrap_or_default(),
        catalog_seen,
        broken: tellers.iter().flat_map(|t| t.errors.clone()).collect(),
    };
    if held.trim() != "0" {
        report.broken.push(format!(
            "{held} record locks left held after every server stopped"
        ));
    }
    check(&mut report, &tellers, &found, &journal, accounts);
    Ok(report)
}

fn journal_spec() -> DatasetSpec {
    let mut spec = stores::spec(JOURNAL, "b", RECORD_LENGTH);
    spec.key_length = JOURNAL_KEY as u16;
    spec
}

/// The end state against what the clients were told.
fn check(
    report: &mut Report,
    tellers: &[Teller],
    found: &crate::ledger::Records,
    journal: &crate::ledger::Records,
    accounts: u32,
) {
    let broken = &mut report.broken;
    let applied: BTreeMap<Vec<u8>, Transfer> = journal
        .iter()
        .filter_map(|(key, record)| parse_journal(key, record).map(|t| (key.clone(), t)))
        .collect();
    if applied.len() != journal.len() {
        broken.push("a journal record cannot be read".into());
    }
    for teller in tellers {
        for transfer in &teller.committed {
            if !applied.contains_key(&transfer.key) {
                broken.push(format!(
                    "acknowledged transfer {} is not in the journal",
                    String::from_utf8_lossy(&transfer.key)
                ));
            }
        }
        for transfer in &teller.in_doubt {
            report.in_doubt.0 += 1;
            if applied.contains_key(&transfer.key) {
                report.in_doubt.1 += 1;
            }
        }
    }
    let known: usize = tellers
        .iter()
        .map(|t| t.committed.len() + t.in_doubt.len())
        .sum();
    if applied.len() > known {
        broken.push(format!(
            "the journal holds {} transfers, the clients made at most {known}",
            applied.len()
        ));
    }
    // What each account must hold after the journal's transfers.
    let mut expected: BTreeMap<u32, (i64, u64)> = (0..accounts)
        .map(|n| (n, (START_BALANCE as i64, 0)))
        .collect();
    for transfer in applied.values() {
        if let Some(from) = expected.get_mut(&transfer.from) {
            from.0 -= transfer.amount as i64;
            from.1 += 1;
        }
        if let Some(to) = expected.get_mut(&transfer.to) {
            to.0 += transfer.amount as i64;
            to.1 += 1;
        }
    }
    let mut total: u64 = 0;
    for (n, (balance, count)) in &expected {
        let Some((stored_balance, stored_count)) =
            found.get(&account_key(*n)).and_then(|r| parse_account(r))
        else {
            broken.push(format!("account {n} is missing or unreadable"));
            continue;
        };
        total += stored_balance;
        if stored_balance as i64 != *balance || stored_count != *count {
            broken.push(format!(
                "account {n}: balance {stored_balance} after {stored_count} transfers stored, the journal says {balance} after {count} (an update was lost)"
            ));
        }
    }
    let start = START_BALANCE * u64::from(accounts);
    if total != start {
        broken.push(format!("the balances add up to {total}, not {start}"));
    }
}

/// Transfers until `stop`, failing over to the next server of `servers`
/// when its connection breaks.
async fn teller(
    id: usize,
    servers: String,
    accounts: u32,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Teller {
    let mut rng = Rng::new(seed);
    let mut teller = Teller::default();
    let mut sequence = 0u64;
    let mut lost_at: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let session = async {
            let conn = Connection::connect(&servers).await?;
            let ds =
                Dataset::open_with_access(&conn, ACCOUNTS, OpenIntent::Update, access::COMMIT, 1)
                    .await?;
            let journal =
                Dataset::open_with_access(&conn, JOURNAL, OpenIntent::Output, access::COMMIT, 1)
                    .await?;
            Ok::<_, ClientError>((conn, ds, journal))
        }
        .await;
        let (conn, ds, journal) = match session {
            Ok(session) => session,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Some(lost) = lost_at.take() {
            teller.failover = teller.failover.max(lost.elapsed());
        }
        while !stop.load(Ordering::Relaxed) {
            let a = rng.below(u64::from(accounts)) as u32;
            let mut b = rng.below(u64::from(accounts) - 1) as u32;
            if b >= a {
                b += 1;
            }
            sequence += 1;
            let transfer = Transfer {
                key: format!("T{id:03}{sequence:012}").into_bytes(),
                from: a,
                to: b,
                amount: 1 + rng.below(100),
            };
            let outcome = transfer_once(&conn, &ds, &journal, &transfer).await;
            if matches!(outcome, Ok(()) | Err(Failure::Conflict))
                && let Some(lost) = lost_at.take()
            {
                teller.failover = teller.failover.max(lost.elapsed());
            }
            match outcome {
                Ok(()) => teller.committed.push(transfer),
                Err(Failure::Conflict) => {
                    teller.conflicts += 1;
                    tokio::time::sleep(Duration::from_millis(rng.below(5))).await;
                }
                Err(Failure::Moved { in_doubt }) => {
                    // The connection moved to the next server with its
                    // datasets; the unit went with the lost one.
                    if in_doubt {
                        teller.in_doubt.push(transfer);
                    }
                    lost_at.get_or_insert_with(Instant::now);
                    let _ = vsam_client::rollback(&conn).await;
                }
                Err(Failure::Broken { in_doubt }) => {
                    if in_doubt {
                        teller.in_doubt.push(transfer);
                    }
                    lost_at = Some(Instant::now());
                    break;
                }
                Err(Failure::Answered(error)) => {
                    teller.errors.push(format!("client {id}: {error}"));
                    let _ = vsam_client::rollback(&conn).await;
                }
            }
        }
    }
    teller
}

enum Failure {
    /// X'14': the unit was rolled back; try again.
    Conflict,
    /// The connection broke and could not move; `in_doubt` if it broke
    /// during COMMIT.
    Broken { in_doubt: bool },
    /// The server was lost and the connection moved to the next one (the
    /// unit rolled back); `in_doubt` if it was lost during COMMIT.
    Moved { in_doubt: bool },
    /// The server answered an error.
    Answered(ClientError),
}

fn failure(error: ClientError, committing: bool) -> Failure {
    match error {
        ClientError::Closed(_) | ClientError::Connect { .. } => Failure::Broken {
            in_doubt: committing,
        },
        ClientError::ServerLost { .. } => Failure::Moved {
            in_doubt: committing,
        },
        ClientError::Vsam(ref e)
            if e.status.r15 == 8 && e.status.fdbk == fdbk::EXCLUSIVE_CONTROL =>
        {
            Failure::Conflict
        }
        other => Failure::Answered(other),
    }
}

/// One transfer in a unit of work: both accounts in key order, then the
/// journal record, then COMMIT. A refusal rolls the unit back.
async fn transfer_once(
    conn: &Connection,
    ds: &Dataset,
    journal: &Dataset,
    transfer: &Transfer,
) -> Result<(), Failure> {
    let changes = async {
        let (first, second) = if transfer.from < transfer.to {
            (transfer.from, transfer.to)
        } else {
            (transfer.to, transfer.from)
        };
        for n in [first, second] {
            let record = ds.read_for_update(&account_key(n)).await?;
            let Some((balance, count)) = parse_account(&record.data) else {
                return Err(ClientError::Unexpected {
                    request: "GET",
                    detail: format!(
                        "account {n} holds {:?}, not an account record",
                        String::from_utf8_lossy(&record.data)
                    ),
                });
            };
            let balance = if n == transfer.from {
                balance - transfer.amount
            } else {
                balance + transfer.amount
            };
            ds.put(
                0,
                RplOptions::direct().update(),
                0,
                account_record(n, balance, count + 1),
            )
            .await?;
        }
        journal
            .put(0, RplOptions::direct(), 0, journal_record(transfer))
            .await?;
        Ok(())
    }
    .await;
    if let Err(error) = changes {
        let failed = failure(error, false);
        if !matches!(failed, Failure::Broken { .. })
            && let Err(error) = vsam_client::rollback(conn).await
        {
            return Err(failure(error, false));
        }
        return Err(failed);
    }
    vsam_client::commit(conn)
        .await
        .map_err(|e| failure(e, true))
}

/// Prints the report; false if a promise was broken.
pub fn print(report: &Report) -> bool {
    println!(
        "\nA fleet on one PostgreSQL: {} vsamrd, {} clients transferring money between {} accounts in units of work (GET UPD both in key order, PUT both and a journal record, COMMIT), {} SIGKILL(s) of a server mid-run",
        report.servers, report.clients, report.accounts, report.kills
    );
    println!(
        "{:>10} {:>10} {:>16} {:>12} {:>17} {:>7}",
        "committed", "X'14'", "in doubt: stored", "failover ms", "DEFINE listed ms", "broken"
    );
    println!(
        "{:>10} {:>10} {:>10}/{:<5} {:>12.0} {:>17.1} {:>7}",
        report.committed,
        report.conflicts,
        report.in_doubt.1,
        report.in_doubt.0,
        report.failover.as_secs_f64() * 1000.0,
        report.catalog_seen.as_secs_f64() * 1000.0,
        report.broken.len()
    );
    for broken in report.broken.iter().take(10) {
        println!("    broken: {broken}");
    }
    let ok = report.broken.is_empty() && report.committed > 0;
    if report.committed == 0 {
        println!("    no transfer was committed");
    }
    ok
}
