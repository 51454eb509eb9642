//! The scenarios. Each one defines its own datasets (named under the
//! environment's prefix), drives them through the client library like a
//! program would, and checks every answer: records byte for byte, and the
//! exact R15 and FDBK of every error.

use crate::check::{Step, data, expect_eq, expect_fdbk, expect_status, fail};
pub use crate::env::Env;
use futures::future::BoxFuture;
use vsam_client::{
    ChainOutcome, ChainedRecord, ClientError, Connection, Dataset, DatasetSpec, OpenIntent,
    Organization, Record, RplOptions,
};
use vsam_protocol::{Fdbk, Processing, fdbk};

/// One named scenario.
pub struct Scenario {
    /// Its short name, for `--only` (`ksds.browse`; `ksds` selects every
    /// `ksds.` scenario).
    pub id: &'static str,
    /// What it checks.
    pub name: &'static str,
    /// Runs it.
    pub run: fn(Env) -> BoxFuture<'static, Step>,
}

macro_rules! scenario {
    ($id:literal, $name:literal, $function:path) => {
        Scenario {
            id: $id,
            name: $name,
            run: |env| Box::pin($function(env)),
        }
    };
}

/// Every scenario, in order.
pub fn all() -> Vec<Scenario> {
    vec![
        scenario!(
            "ksds.round-trip",
            "ksds: insert and read back byte for byte",
            ksds_round_trip
        ),
        scenario!(
            "ksds.duplicate-key",
            "ksds: duplicate key is FDBK 08",
            ksds_duplicate
        ),
        scenario!(
            "ksds.not-found",
            "ksds: not found is FDBK 10, position lost",
            ksds_not_found
        ),
        scenario!(
            "ksds.kge-generic",
            "ksds: KGE and generic keys",
            ksds_kge_generic
        ),
        scenario!(
            "ksds.browse",
            "ksds: browse forward and backward",
            ksds_browse
        ),
        scenario!(
            "ksds.batched-get",
            "ksds: batched sequential GET",
            ksds_batched
        ),
        scenario!(
            "ksds.skip-sequential",
            "ksds: skip-sequential GET",
            ksds_skip_sequential
        ),
        scenario!(
            "ksds.update",
            "ksds: update with GET UPD and PUT",
            ksds_update
        ),
        scenario!("ksds.erase", "ksds: erase", ksds_erase),
        scenario!(
            "ksds.sequential-insert",
            "ksds: sequential insert order",
            ksds_sequential_insert
        ),
        scenario!(
            "requests.record-length",
            "record length checks",
            record_lengths
        ),
        scenario!(
            "requests.open-intent",
            "open intent limits requests",
            open_intents
        ),
        scenario!(
            "requests.invalid-options",
            "invalid options and strings",
            invalid_options
        ),
        scenario!(
            "requests.no-position",
            "sequential GET needs a position",
            no_position
        ),
        scenario!(
            "requests.exclusive-control",
            "exclusive control across connections",
            exclusive_control
        ),
        scenario!(
            "esds.addressed",
            "esds: RBAs, addressed access, no erase",
            esds
        ),
        scenario!("rrds.slots", "rrds: slots, empty slots, erase", rrds),
        scenario!(
            "rrds.variable",
            "vrrds: relative slots whose records keep their lengths",
            vrrds
        ),
        scenario!(
            "catalog.define-delete",
            "catalog: define, info, list, delete",
            catalog
        ),
        scenario!(
            "requests.strings",
            "several strings keep separate positions",
            strings
        ),
        scenario!("ksds.reopen", "records survive close and reopen", reopen),
        scenario!(
            "ksds.reset",
            "open output with reset empties the dataset",
            reset
        ),
        scenario!(
            "aix.paths",
            "alternate indexes and paths",
            crate::alternate::alternate_index
        ),
        scenario!(
            "ksds.large-records",
            "large records round trip",
            large_records
        ),
        scenario!(
            "chain.order",
            "put chain: in order, stops at the first failure",
            put_chain
        ),
        scenario!(
            "chain.esds-rrds",
            "put chain: ESDS RBAs and RRDS slots",
            put_chain_esds_rrds
        ),
        scenario!(
            "chain.update",
            "put chain with UPD: updates by key, stops at the first failure",
            put_chain_update
        ),
        scenario!(
            "catalog.storage-names",
            "names differing only in @ # $ - and dots keep separate storage",
            storage_names
        ),
        scenario!(
            "units.commit-rollback",
            "units of work: commit, rollback, held records",
            crate::units::commit_and_rollback
        ),
        scenario!(
            "units.dropped-large",
            "units of work: a dropped connection, a large unit",
            crate::units::dropped_and_large
        ),
        scenario!(
            "ksds.browse-while-writing",
            "a browse sees the writes another connection makes around it",
            crate::concurrent::browse_while_writing
        ),
    ]
}

fn record(key: &[u8], body: &[u8]) -> Vec<u8> {
    [key, body].concat()
}

async fn put(ds: &Dataset, rec: Vec<u8>) -> Result<Record, ClientError> {
    ds.put(0, RplOptions::direct(), 0, rec).await
}

async fn get(ds: &Dataset, key: &[u8]) -> Result<Vec<Record>, ClientError> {
    ds.reading(RplOptions::direct()).key(key).records().await
}

async fn next(ds: &Dataset, string: u16, options: RplOptions) -> Result<Vec<Record>, ClientError> {
    ds.reading(options).on(string).records().await
}

/// Reads sequentially until end of data.
async fn read_all(ds: &Dataset, string: u16, options: RplOptions) -> Step<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        match next(ds, string, options).await {
            Ok(records) => out.extend(data(&records)),
            Err(e) if e.is_end_of_data() => return Ok(out),
            Err(e) => return Err(e.into()),
        }
        if out.len() > 100_000 {
            return fail("sequential read never reached end of data");
        }
    }
}

async fn load(ds: &Dataset, keys: &[&[u8]]) -> Step<Vec<Vec<u8>>> {
    let mut records = Vec::new();
    for key in keys {
        let rec = record(key, b"-DATA");
        put(ds, rec.clone()).await?;
        records.push(rec);
    }
    Ok(records)
}

async fn ksds_round_trip(env: Env) -> Step {
    let name = env.ksds("RT").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let records = [
        record(&[0xF0, 0xF0, 0xF0, 0xF2], &all_bytes[..96]),
        record(&[0x00, 0x00, 0x00, 0x00], &all_bytes[96..192]),
        record(&[0xFF, 0xFF, 0xFF, 0xFF], &all_bytes[192..]),
        record(&[0xC1, 0x40, 0x0D, 0x25], b"\n\r,\"\\x00 text"),
    ];
    for rec in &records {
        let written = put(&ds, rec.clone()).await?;
        expect_eq("PUT returns the key", written.key.as_slice(), &rec[..4])?;
    }
    for rec in &records {
        let found = get(&ds, &rec[..4]).await?;
        expect_eq(
            "GET returns the record as written",
            data(&found),
            vec![rec.clone()],
        )?;
        expect_eq("GET returns the key", found[0].key.as_slice(), &rec[..4])?;
    }
    let mut sorted = records.to_vec();
    sorted.sort_by(|a, b| a[..4].cmp(&b[..4]));
    ds.point(0, RplOptions::sequential(), &[0; 4], 0, 0).await?;
    expect_eq(
        "browse is in unsigned byte order (EBCDIC letters before digits)",
        read_all(&ds, 0, RplOptions::sequential()).await?,
        sorted,
    )?;
    ds.close().await?;
    Ok(())
}

async fn ksds_duplicate(env: Env) -> Step {
    let name = env.ksds("DUP").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    put(&ds, record(b"K001", b"first")).await?;
    expect_fdbk(
        "insert of an existing key",
        put(&ds, record(b"K001", b"second")).await,
        fdbk::DUPLICATE_KEY,
    )?;
    expect_eq(
        "the first record is kept",
        data(&get(&ds, b"K001").await?),
        vec![record(b"K001", b"first")],
    )?;
    Ok(())
}

async fn ksds_not_found(env: Env) -> Step {
    let name = env.ksds("NF").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    load(&ds, &[b"K001", b"K003"]).await?;
    expect_fdbk(
        "GET of a missing key",
        get(&ds, b"K002").await,
        fdbk::NOT_FOUND,
    )?;
    expect_fdbk(
        "sequential GET after not found",
        next(&ds, 0, RplOptions::sequential()).await,
        fdbk::NO_POSITION,
    )?;
    expect_fdbk(
        "POINT to a missing key",
        ds.point(0, RplOptions::direct(), b"K002", 0, 0).await,
        fdbk::NOT_FOUND,
    )?;
    expect_fdbk(
        "GET of a missing key for update",
        ds.reading(RplOptions::direct().update())
            .key(b"K009")
            .records()
            .await,
        fdbk::NOT_FOUND,
    )?;
    Ok(())
}

async fn ksds_kge_generic(env: Env) -> Step {
    let name = env.ksds("KGE").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    load(&ds, &[b"AA10", b"AB20", b"AB30", b"BC40"]).await?;
    let kge = RplOptions::direct().greater_or_equal();
    expect_eq(
        "KGE between keys",
        data(&ds.get(0, kge, b"AB25", 0, 0, 1).await?),
        vec![record(b"AB30", b"-DATA")],
    )?;
    expect_eq(
        "KGE on a key",
        data(&ds.get(0, kge, b"AB20", 0, 0, 1).await?),
        vec![record(b"AB20", b"-DATA")],
    )?;
    expect_fdbk(
        "KGE above the last key",
        ds.get(0, kge, b"ZZZZ", 0, 0, 1).await,
        fdbk::NOT_FOUND,
    )?;
    let generic = RplOptions::direct().generic();
    expect_eq(
        "generic KEQ",
        data(&ds.get(0, generic, b"AB", 2, 0, 1).await?),
        vec![record(b"AB20", b"-DATA")],
    )?;
    expect_fdbk(
        "generic KEQ with no match",
        ds.get(0, generic, b"AC", 2, 0, 1).await,
        fdbk::NOT_FOUND,
    )?;
    expect_eq(
        "generic KGE",
        data(
            &ds.get(0, generic.greater_or_equal(), b"AC", 2, 0, 1)
                .await?,
        ),
        vec![record(b"BC40", b"-DATA")],
    )?;
    expect_fdbk(
        "generic length above the key length",
        ds.get(0, generic, b"AB20X", 5, 0, 1).await,
        fdbk::INVALID_KEY_LENGTH,
    )?;
    expect_fdbk(
        "full key of the wrong length",
        ds.reading(RplOptions::direct()).key(b"AB2").records().await,
        fdbk::INVALID_KEY_LENGTH,
    )?;
    ds.point(0, RplOptions::sequential().generic(), b"AB", 2, 0)
        .await?;
    expect_eq(
        "browse after a generic POINT",
        read_all(&ds, 0, RplOptions::sequential()).await?.len(),
        3,
    )?;
    expect_fdbk(
        "POINT KGE above the last key",
        ds.point(
            0,
            RplOptions::sequential().greater_or_equal(),
            b"ZZZZ",
            0,
            0,
        )
        .await,
        fdbk::END_OF_DATA,
    )?;
    Ok(())
}

async fn ksds_browse(env: Env) -> Step {
    let name = env.ksds("BR").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    let keys: Vec<Vec<u8>> = (0..30u32)
        .map(|i| format!("{:04}", (i * 7) % 30).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let mut records = load(&ds, &refs).await?;
    records.sort();
    expect_eq(
        "forward browse from OPEN",
        read_all(&ds, 0, RplOptions::sequential()).await?,
        records.clone(),
    )?;
    expect_fdbk(
        "GET after end of data",
        next(&ds, 0, RplOptions::sequential()).await,
        fdbk::END_OF_DATA,
    )?;
    ds.point(0, RplOptions::sequential().last_record(), &[], 0, 0)
        .await?;
    let mut reversed = records.clone();
    reversed.reverse();
    expect_eq(
        "backward browse from LRD",
        read_all(&ds, 0, RplOptions::sequential().backward()).await?,
        reversed,
    )?;
    ds.point(0, RplOptions::sequential().backward(), b"0010", 0, 0)
        .await?;
    let down: Vec<Vec<u8>> = records[..=10].iter().rev().cloned().collect();
    expect_eq(
        "backward browse from a key",
        read_all(&ds, 0, RplOptions::sequential().backward()).await?,
        down,
    )?;
    ds.point(0, RplOptions::sequential(), b"0025", 0, 0).await?;
    expect_eq(
        "forward browse from a key",
        read_all(&ds, 0, RplOptions::sequential()).await?,
        records[25..].to_vec(),
    )?;
    let direct_lrd = ds
        .reading(RplOptions::direct().last_record())
        .records()
        .await?;
    expect_eq(
        "direct GET with LRD returns the last record",
        data(&direct_lrd),
        vec![records[29].clone()],
    )?;
    Ok(())
}

async fn ksds_batched(env: Env) -> Step {
    let name = env.ksds("BAT").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    let keys: Vec<Vec<u8>> = (0..50u32).map(|i| format!("{i:04}").into_bytes()).collect();
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let records = load(&ds, &refs).await?;
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        match ds.browse(7).await {
            Ok(batch) => {
                sizes.push(batch.len());
                seen.extend(data(&batch));
            }
            Err(e) if e.is_end_of_data() => break,
            Err(e) => return Err(e.into()),
        }
    }
    expect_eq(
        "batched browse returns every record once, in order",
        seen,
        records.clone(),
    )?;
    expect_eq("batch sizes", sizes, vec![7, 7, 7, 7, 7, 7, 7, 1])?;
    ds.point(0, RplOptions::sequential().last_record(), &[], 0, 0)
        .await?;
    let back = ds
        .reading(RplOptions::sequential().backward())
        .batch(3)
        .records()
        .await?;
    expect_eq(
        "batched backward browse",
        data(&back),
        records[47..].iter().rev().cloned().collect::<Vec<_>>(),
    )?;
    expect_fdbk(
        "batched direct GET",
        ds.reading(RplOptions::direct())
            .key(b"0001")
            .batch(5)
            .records()
            .await,
        fdbk::INVALID_OPTIONS,
    )?;
    expect_fdbk(
        "batched GET for update",
        ds.reading(RplOptions::sequential().update())
            .batch(5)
            .records()
            .await,
        fdbk::INVALID_OPTIONS,
    )?;
    Ok(())
}

async fn ksds_skip_sequential(env: Env) -> Step {
    let name = env.ksds("SKP").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    let records = load(&ds, &[b"0010", b"0020", b"0030", b"0040"]).await?;
    let skip = RplOptions {
        processing: Processing::SkipSequential,
        ..RplOptions::default()
    };
    expect_eq(
        "SKP to a key",
        data(&ds.get(0, skip, b"0020", 0, 0, 1).await?),
        vec![records[1].clone()],
    )?;
    expect_eq(
        "SEQ continues after it",
        data(&next(&ds, 0, RplOptions::sequential()).await?),
        vec![records[2].clone()],
    )?;
    expect_eq(
        "SKP KGE forward",
        data(&ds.get(0, skip.greater_or_equal(), b"0035", 0, 0, 1).await?),
        vec![records[3].clone()],
    )?;
    expect_fdbk(
        "SKP backward",
        ds.get(0, skip.backward(), b"0010", 0, 0, 1).await,
        fdbk::INVALID_OPTIONS,
    )?;
    Ok(())
}

async fn ksds_update(env: Env) -> Step {
    let name = env.ksds("UPD").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    load(&ds, &[b"K001", b"K002"]).await?;
    let upd = RplOptions::direct().update();
    ds.get(0, upd, b"K001", 0, 0, 1).await?;
    ds.put(0, upd, 0, record(b"K001", b"-CHANGED-AND-LONGER"))
        .await?;
    expect_eq(
        "the update is stored",
        data(&get(&ds, b"K001").await?),
        vec![record(b"K001", b"-CHANGED-AND-LONGER")],
    )?;
    expect_fdbk(
        "PUT UPD without GET UPD",
        ds.put(0, upd, 0, record(b"K001", b"x")).await,
        fdbk::NO_GET_UPDATE,
    )?;
    ds.get(0, upd, b"K002", 0, 0, 1).await?;
    expect_fdbk(
        "PUT UPD that changes the key",
        ds.put(0, upd, 0, record(b"K003", b"x")).await,
        fdbk::KEY_CHANGED,
    )?;
    ds.get(0, upd, b"K002", 0, 0, 1).await?;
    expect_fdbk(
        "PUT UPD with an invalid length",
        ds.put(0, upd, 0, vec![b'K'; 101]).await,
        fdbk::INVALID_LENGTH,
    )?;
    ds.get(0, upd, b"K002", 0, 0, 1).await?;
    get(&ds, b"K001").await?;
    expect_fdbk(
        "another request on the string releases the hold",
        ds.put(0, upd, 0, record(b"K002", b"x")).await,
        fdbk::NO_GET_UPDATE,
    )?;
    let seq_upd = RplOptions::sequential().update();
    ds.point(0, RplOptions::sequential(), b"K001", 0, 0).await?;
    let held = next(&ds, 0, seq_upd).await?;
    ds.put(0, seq_upd, 0, record(&held[0].key, b"-SEQ")).await?;
    expect_eq(
        "sequential update continues the browse",
        data(&next(&ds, 0, RplOptions::sequential()).await?),
        vec![record(b"K002", b"-DATA")],
    )?;
    expect_eq(
        "sequential update stored",
        data(&get(&ds, b"K001").await?),
        vec![record(b"K001", b"-SEQ")],
    )?;
    Ok(())
}

async fn ksds_erase(env: Env) -> Step {
    let name = env.ksds("ERA").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    let records = load(&ds, &[b"K001", b"K002", b"K003"]).await?;
    expect_fdbk(
        "ERASE without GET UPD",
        ds.erase(0).await,
        fdbk::NO_GET_UPDATE,
    )?;
    ds.reading(RplOptions::direct().update())
        .key(b"K002")
        .records()
        .await?;
    ds.erase(0).await?;
    expect_fdbk(
        "the erased record is gone",
        get(&ds, b"K002").await,
        fdbk::NOT_FOUND,
    )?;
    ds.point(0, RplOptions::sequential(), b"K001", 0, 0).await?;
    expect_eq(
        "browse skips it",
        read_all(&ds, 0, RplOptions::sequential()).await?,
        vec![records[0].clone(), records[2].clone()],
    )?;
    put(&ds, record(b"K002", b"-AGAIN")).await?;
    expect_eq(
        "the key can be inserted again",
        data(&get(&ds, b"K002").await?),
        vec![record(b"K002", b"-AGAIN")],
    )?;
    Ok(())
}

async fn ksds_sequential_insert(env: Env) -> Step {
    let name = env.ksds("SEQ").await?;
    let ds = env.open(&name, OpenIntent::Output).await?;
    let seq = RplOptions::sequential();
    ds.put(0, seq, 0, record(b"0001", b"")).await?;
    ds.put(0, seq, 0, record(b"0005", b"")).await?;
    expect_fdbk(
        "sequential insert below the previous key",
        ds.put(0, seq, 0, record(b"0003", b"")).await,
        fdbk::SEQUENCE_ERROR,
    )?;
    expect_fdbk(
        "sequential insert of the previous key",
        ds.put(0, seq, 0, record(b"0005", b"x")).await,
        fdbk::DUPLICATE_KEY,
    )?;
    ds.put(0, RplOptions::direct(), 0, record(b"0003", b""))
        .await?;
    ds.put(0, seq, 0, record(b"0009", b"")).await?;
    ds.close().await?;
    let ds = env.open(&name, OpenIntent::Input).await?;
    expect_eq("all inserts stored", read_all(&ds, 0, seq).await?.len(), 4)?;
    Ok(())
}

async fn record_lengths(env: Env) -> Step {
    let name = env.ksds("LEN").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    expect_fdbk(
        "empty record",
        put(&ds, Vec::new()).await,
        fdbk::INVALID_LENGTH,
    )?;
    expect_fdbk(
        "record shorter than the key",
        put(&ds, b"K0".to_vec()).await,
        fdbk::INVALID_LENGTH,
    )?;
    expect_fdbk(
        "record above the maximum",
        put(&ds, vec![b'K'; 101]).await,
        fdbk::INVALID_LENGTH,
    )?;
    put(&ds, vec![b'K'; 100]).await?;
    put(&ds, b"K001".to_vec()).await?;
    Ok(())
}

async fn open_intents(env: Env) -> Step {
    let name = env.ksds("INT").await?;
    let loader = env.open(&name, OpenIntent::Output).await?;
    put(&loader, record(b"K001", b"")).await?;
    expect_fdbk(
        "GET on output",
        get(&loader, b"K001").await,
        fdbk::NOT_ALLOWED_BY_OPEN,
    )?;
    expect_fdbk(
        "POINT on output",
        loader
            .point(0, RplOptions::sequential(), b"K001", 0, 0)
            .await,
        fdbk::NOT_ALLOWED_BY_OPEN,
    )?;
    let reader = env.open(&name, OpenIntent::Input).await?;
    expect_fdbk(
        "PUT on input",
        put(&reader, record(b"K002", b"")).await,
        fdbk::NOT_ALLOWED_BY_OPEN,
    )?;
    expect_fdbk(
        "GET UPD on input",
        reader
            .reading(RplOptions::direct().update())
            .key(b"K001")
            .records()
            .await,
        fdbk::NOT_ALLOWED_BY_OPEN,
    )?;
    expect_fdbk(
        "ERASE on input",
        reader.erase(0).await,
        fdbk::NOT_ALLOWED_BY_OPEN,
    )?;
    get(&reader, b"K001").await?;
    expect_status(
        "OPEN of an undefined dataset",
        Dataset::open(&env.first, &env.name("NOPE"), OpenIntent::Input, 1)
            .await
            .map(|_| ()),
        8,
        vsam_protocol::open_error::NOT_FOUND,
    )?;
    expect_status(
        "OPEN with more strings than the server allows",
        Dataset::open(&env.first, &name, OpenIntent::Input, u16::MAX)
            .await
            .map(|_| ()),
        8,
        vsam_protocol::open_error::INVALID_OPTIONS,
    )?;
    Ok(())
}

async fn invalid_options(env: Env) -> Step {
    let name = env.ksds("OPT").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    put(&ds, record(b"K001", b"")).await?;
    use vsam_protocol::options::bits;
    for (what, word) in [
        ("KEY and ADR together", bits::KEY | bits::ADR | bits::DIR),
        ("BWD with KGE", bits::DIR | bits::BWD | bits::KGE),
        ("UPD with NSP", bits::DIR | bits::UPD | bits::NSP),
    ] {
        let answer = env
            .first
            .call(vsam_protocol::Request::Get(vsam_protocol::Get {
                target: vsam_protocol::StringRef {
                    handle: ds.handle(),
                    string: 0,
                },
                options: word,
                key: b"K001".to_vec(),
                generic_length: 0,
                address: 0,
                max_records: 1,
            }))
            .await?;
        expect_result_fdbk(what, answer, fdbk::INVALID_OPTIONS)?;
    }
    expect_fdbk(
        "string beyond STRNO",
        ds.reading(RplOptions::direct())
            .on(9)
            .key(b"K001")
            .records()
            .await,
        fdbk::NO_STRING,
    )?;
    expect_fdbk(
        "addressed GET on a KSDS",
        ds.reading(RplOptions::addressed(Processing::Direct))
            .records()
            .await,
        fdbk::INVALID_OPTIONS,
    )?;
    expect_fdbk(
        "addressed insert into a KSDS",
        ds.put(
            0,
            RplOptions::addressed(Processing::Direct),
            0,
            record(b"K002", b""),
        )
        .await,
        fdbk::ADDRESSED_INSERT_KSDS,
    )?;
    expect_fdbk(
        "insert in backward mode",
        ds.put(0, RplOptions::direct().backward(), 0, record(b"K002", b""))
            .await,
        fdbk::INSERT_BACKWARD,
    )?;
    Ok(())
}

fn expect_result_fdbk(what: &str, answer: vsam_protocol::Answer, code: Fdbk) -> Step {
    match answer {
        vsam_protocol::Answer::Result { status, .. } if status.r15 == 8 && status.fdbk == code => {
            Ok(())
        }
        other => fail(format!("{what}: expected R15=8 FDBK={code}, got {other:?}")),
    }
}

async fn no_position(env: Env) -> Step {
    let name = env.ksds("POS").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    load(&ds, &[b"K001", b"K002"]).await?;
    expect_fdbk(
        "backward GET right after OPEN",
        next(&ds, 0, RplOptions::sequential().backward()).await,
        fdbk::NO_POSITION,
    )?;
    next(&ds, 0, RplOptions::sequential()).await?;
    ds.endreq(0).await?;
    expect_fdbk(
        "sequential GET after ENDREQ",
        next(&ds, 0, RplOptions::sequential()).await,
        fdbk::NO_POSITION,
    )?;
    get(&ds, b"K001").await?;
    expect_fdbk(
        "sequential GET after a direct GET without NSP",
        next(&ds, 0, RplOptions::sequential()).await,
        fdbk::NO_POSITION,
    )?;
    let nsp = RplOptions {
        intent: vsam_protocol::Intent::NoUpdateKeepPosition,
        ..RplOptions::direct()
    };
    ds.get(0, nsp, b"K001", 0, 0, 1).await?;
    expect_eq(
        "sequential GET after a direct GET with NSP",
        data(&next(&ds, 0, RplOptions::sequential()).await?),
        vec![record(b"K002", b"-DATA")],
    )?;
    Ok(())
}

async fn exclusive_control(env: Env) -> Step {
    let name = env.ksds("EXC").await?;
    let mine = env.open(&name, OpenIntent::Update).await?;
    let theirs = Dataset::open(&env.second, &name, OpenIntent::Update, 1).await?;
    load(&mine, &[b"K001", b"K002"]).await?;
    let upd = RplOptions::direct().update();
    mine.get(0, upd, b"K001", 0, 0, 1).await?;
    expect_fdbk(
        "GET UPD of a held record",
        theirs.get(0, upd, b"K001", 0, 0, 1).await,
        fdbk::EXCLUSIVE_CONTROL,
    )?;
    expect_fdbk(
        "another string of the same program",
        mine.get(1, upd, b"K001", 0, 0, 1).await,
        fdbk::EXCLUSIVE_CONTROL,
    )?;
    get(&theirs, b"K001").await?;
    theirs.get(0, upd, b"K002", 0, 0, 1).await?;
    mine.put(0, upd, 0, record(b"K001", b"-MINE")).await?;
    let got = theirs.get(0, upd, b"K001", 0, 0, 1).await?;
    expect_eq(
        "released by PUT, and the new record is seen",
        data(&got),
        vec![record(b"K001", b"-MINE")],
    )?;
    theirs.endreq(0).await?;
    mine.get(0, upd, b"K001", 0, 0, 1).await?;
    expect_fdbk(
        "held again",
        theirs.get(0, upd, b"K001", 0, 0, 1).await,
        fdbk::EXCLUSIVE_CONTROL,
    )?;
    mine.close().await?;
    theirs.get(0, upd, b"K001", 0, 0, 1).await?;
    drop(theirs);
    drop(env.second);
    // A disconnect releases the hold too.
    let third = Connection::connect(&env.address).await?;
    let other = Dataset::open(&third, &name, OpenIntent::Update, 1).await?;
    for _ in 0..100 {
        match other.get(0, upd, b"K001", 0, 0, 1).await {
            Ok(_) => return Ok(()),
            Err(e)
                if e.vsam()
                    .is_some_and(|v| v.fdbk() == fdbk::EXCLUSIVE_CONTROL) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    fail("the hold of a disconnected client was not released")
}

async fn esds(env: Env) -> Step {
    let name = env.define("ES", Organization::Esds, 0, 50).await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    let adr = RplOptions::addressed(Processing::Sequential);
    let a = ds.put(0, adr, 0, b"first record".to_vec()).await?;
    let b = ds.put(0, adr, 0, b"second".to_vec()).await?;
    let c = ds.put(0, adr, 0, vec![0u8; 50]).await?;
    expect_eq(
        "RBAs are byte offsets",
        (a.address, b.address, c.address),
        (0, 12, 18),
    )?;
    let direct = RplOptions::addressed(Processing::Direct);
    expect_eq(
        "GET by RBA",
        data(&ds.get(0, direct, &[], 0, 12, 1).await?),
        vec![b"second".to_vec()],
    )?;
    expect_fdbk(
        "GET by an RBA inside a record",
        ds.get(0, direct, &[], 0, 5, 1).await,
        fdbk::BAD_RBA,
    )?;
    expect_fdbk(
        "GET by an RBA past the end",
        ds.get(0, direct, &[], 0, 999, 1).await,
        fdbk::BAD_RBA,
    )?;
    expect_fdbk(
        "keyed GET",
        ds.reading(RplOptions::direct()).key(b"x").records().await,
        fdbk::KEYED_ON_ESDS,
    )?;
    expect_fdbk(
        "keyed PUT",
        ds.put(0, RplOptions::direct(), 0, b"x".to_vec()).await,
        fdbk::KEYED_ON_ESDS,
    )?;
    ds.get(0, direct.update(), &[], 0, 12, 1).await?;
    expect_fdbk("ERASE", ds.erase(0).await, fdbk::ERASE_ON_ESDS)?;
    ds.get(0, direct.update(), &[], 0, 12, 1).await?;
    expect_fdbk(
        "update that changes the length",
        ds.put(0, direct.update(), 12, b"longer!".to_vec()).await,
        fdbk::LENGTH_CHANGED,
    )?;
    ds.get(0, direct.update(), &[], 0, 12, 1).await?;
    ds.put(0, direct.update(), 12, b"SECOND".to_vec()).await?;
    ds.point(0, adr, &[], 0, 0).await?;
    let all = read_all(&ds, 0, adr).await?;
    expect_eq(
        "sequential read in entry order",
        all,
        vec![b"first record".to_vec(), b"SECOND".to_vec(), vec![0u8; 50]],
    )?;
    ds.point(0, adr.last_record(), &[], 0, 0).await?;
    let last = next(&ds, 0, adr.backward()).await?;
    expect_eq(
        "backward from the end",
        (last[0].address, last[0].data.len()),
        (18, 50),
    )?;
    expect_fdbk(
        "POINT to a bad RBA",
        ds.point(0, adr, &[], 0, 3).await,
        fdbk::BAD_RBA,
    )?;
    Ok(())
}

async fn rrds(env: Env) -> Step {
    let name = env.define("RR", Organization::Rrds, 0, 8).await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    let key = RplOptions::direct();
    for rrn in [3u64, 1, 5] {
        let written = ds
            .put(0, key, rrn, format!("SLOT{rrn:04}").into_bytes())
            .await?;
        expect_eq("PUT returns the RRN", written.address, rrn)?;
    }
    expect_fdbk(
        "insert into a full slot",
        ds.put(0, key, 3, b"SLOTXXXX".to_vec()).await,
        fdbk::DUPLICATE_KEY,
    )?;
    expect_fdbk(
        "RRN 0",
        ds.put(0, key, 0, b"SLOT0000".to_vec()).await,
        fdbk::INVALID_RRN,
    )?;
    expect_fdbk(
        "RRN above the maximum",
        ds.get(0, key, &[], 0, 1 << 33, 1).await,
        fdbk::INVALID_RRN,
    )?;
    expect_fdbk(
        "record shorter than the slot",
        ds.put(0, key, 2, b"SHORT".to_vec()).await,
        fdbk::INVALID_LENGTH,
    )?;
    expect_fdbk(
        "GET of an empty slot",
        ds.get(0, key, &[], 0, 2, 1).await,
        fdbk::NOT_FOUND,
    )?;
    expect_fdbk(
        "addressed GET",
        ds.reading(RplOptions::addressed(Processing::Direct))
            .at(1)
            .records()
            .await,
        fdbk::ADDRESSED_ON_RRDS,
    )?;
    expect_eq(
        "GET by RRN",
        data(&ds.get(0, key, &[], 0, 5, 1).await?),
        vec![b"SLOT0005".to_vec()],
    )?;
    let seq = RplOptions::sequential();
    ds.point(0, seq, &[], 0, 1).await?;
    expect_eq(
        "sequential GET skips empty slots",
        read_all(&ds, 0, seq).await?,
        vec![
            b"SLOT0001".to_vec(),
            b"SLOT0003".to_vec(),
            b"SLOT0005".to_vec(),
        ],
    )?;
    ds.get(0, key.update(), &[], 0, 3, 1).await?;
    ds.erase(0).await?;
    ds.point(0, seq, &[], 0, 1).await?;
    expect_eq(
        "ERASE empties the slot",
        read_all(&ds, 0, seq).await?.len(),
        2,
    )?;
    ds.put(0, key, 3, b"SLOTNEW3".to_vec()).await?;
    ds.point(0, seq, &[], 0, 5).await?;
    next(&ds, 0, seq).await?;
    let after = ds.put(0, seq, 0, b"SLOT0006".to_vec()).await?;
    expect_eq("sequential PUT goes to the next slot", after.address, 6)?;
    ds.point(0, seq.last_record(), &[], 0, 0).await?;
    let last = next(&ds, 0, seq.backward()).await?;
    expect_eq("last slot", last[0].address, 6)?;
    Ok(())
}

async fn vrrds(env: Env) -> Step {
    let name = env.define("VRR", Organization::Vrrds, 0, 20).await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    let key = RplOptions::direct();
    let records: [(u64, &[u8]); 3] = [
        (1, b"A"),
        (2, b"TWELVE-BYTES"),
        (5, b"TWENTY-BYTES-LONGEST"),
    ];
    for (rrn, record) in records {
        ds.put(0, key, rrn, record.to_vec()).await?;
    }
    expect_fdbk(
        "a record longer than the largest",
        ds.put(0, key, 6, vec![b'X'; 21]).await,
        fdbk::INVALID_LENGTH,
    )?;
    expect_fdbk(
        "GET of an empty slot",
        ds.get(0, key, &[], 0, 3, 1).await,
        fdbk::NOT_FOUND,
    )?;
    ds.get(0, key.update(), &[], 0, 2, 1).await?;
    ds.put(0, key.update(), 2, b"NOW-LONGER-RECORD".to_vec())
        .await?;
    let other = Dataset::open(&env.second, &name, OpenIntent::Input, 1).await?;
    let seq = RplOptions::sequential();
    other.point(0, seq, &[], 0, 1).await?;
    expect_eq(
        "every record at the length it was written, the update's new length too",
        read_all(&other, 0, seq).await?,
        vec![
            b"A".to_vec(),
            b"NOW-LONGER-RECORD".to_vec(),
            b"TWENTY-BYTES-LONGEST".to_vec(),
        ],
    )?;
    expect_eq(
        "GET by RRN",
        data(&other.get(0, key, &[], 0, 1, 1).await?),
        vec![b"A".to_vec()],
    )?;
    Ok(())
}

async fn catalog(env: Env) -> Step {
    let name = env.ksds("CAT").await?;
    expect_fdbk(
        "DEFINE of an existing name",
        define_dup(&env).await,
        fdbk::DUPLICATE_KEY,
    )?;
    let bad = DatasetSpec {
        name: env.name("BAD"),
        organization: Organization::Ksds,
        key_offset: 98,
        key_length: 8,
        min_record: 0,
        max_record: 100,
        codepage: "cp037".into(),
        backend: env.backend.clone(),
        layout: String::new(),
    };
    expect_fdbk(
        "DEFINE with the key past the record",
        vsam_client::define(&env.first, bad.clone()).await,
        fdbk::INVALID_OPTIONS,
    )?;
    // An offset near 2^32 must not wrap round to a key inside the record.
    let wrapping = DatasetSpec {
        key_offset: u32::MAX,
        key_length: 1,
        ..bad
    };
    expect_fdbk(
        "DEFINE with a key offset of 2^32-1",
        vsam_client::define(&env.first, wrapping).await,
        fdbk::INVALID_OPTIONS,
    )?;
    let info = vsam_client::info(&env.first, &name).await?;
    expect_eq(
        "INFO",
        (info.organization, info.key_length, info.max_record),
        (Organization::Ksds, 4, 100),
    )?;
    let listed = vsam_client::list(&env.first, &format!("{}.*", env.prefix)).await?;
    expect_eq(
        "LIST",
        listed.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
        vec![name.clone()],
    )?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    put(&ds, record(b"K001", b"")).await?;
    expect_fdbk(
        "DELETE while open",
        vsam_client::delete(&env.first, &name).await,
        fdbk::EXCLUSIVE_CONTROL,
    )?;
    ds.close().await?;
    vsam_client::delete(&env.first, &name).await?;
    expect_fdbk(
        "INFO after DELETE",
        vsam_client::info(&env.first, &name).await,
        fdbk::NOT_FOUND,
    )?;
    env.ksds("CAT").await?;
    let ds = env.open(&name, OpenIntent::Input).await?;
    expect_fdbk(
        "a redefined dataset starts empty",
        next(&ds, 0, RplOptions::sequential()).await,
        fdbk::END_OF_DATA,
    )?;
    Ok(())
}

async fn define_dup(env: &Env) -> Result<DatasetSpec, ClientError> {
    let spec = DatasetSpec {
        name: env.name("CAT"),
        organization: Organization::Ksds,
        key_offset: 0,
        key_length: 4,
        min_record: 0,
        max_record: 100,
        codepage: "cp037".into(),
        backend: env.backend.clone(),
        layout: String::new(),
    };
    vsam_client::define(&env.first, spec).await
}

async fn strings(env: Env) -> Step {
    let name = env.ksds("STR").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    let records = load(&ds, &[b"K001", b"K002", b"K003", b"K004"]).await?;
    ds.point(1, RplOptions::sequential(), b"K003", 0, 0).await?;
    let seq = RplOptions::sequential();
    expect_eq(
        "string 0 starts at the beginning",
        data(&next(&ds, 0, seq).await?),
        vec![records[0].clone()],
    )?;
    expect_eq(
        "string 1 starts at its POINT",
        data(&next(&ds, 1, seq).await?),
        vec![records[2].clone()],
    )?;
    expect_eq(
        "string 0 goes on",
        data(&next(&ds, 0, seq).await?),
        vec![records[1].clone()],
    )?;
    expect_eq(
        "string 1 goes on",
        data(&next(&ds, 1, seq).await?),
        vec![records[3].clone()],
    )?;
    Ok(())
}

async fn reopen(env: Env) -> Step {
    let name = env.ksds("RO").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    let records = load(&ds, &[b"K003", b"K001", b"K002"]).await?;
    ds.close().await?;
    let ds = env.open(&name, OpenIntent::Input).await?;
    let mut sorted = records;
    sorted.sort();
    expect_eq(
        "records after reopen",
        read_all(&ds, 0, RplOptions::sequential()).await?,
        sorted,
    )?;
    Ok(())
}

async fn reset(env: Env) -> Step {
    use vsam_protocol::{access, open_error};
    let name = env.ksds("RS").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    load(&ds, &[b"K001", b"K002"]).await?;
    let reset = |conn, intent| {
        let name = name.clone();
        async move { Dataset::open_with_access(conn, &name, intent, access::RESET, 1).await }
    };
    expect_fdbk(
        "RST while another connection has it open",
        reset(&env.second, OpenIntent::Output).await.map(|_| ()),
        open_error::NOT_AVAILABLE,
    )?;
    ds.close().await?;
    expect_fdbk(
        "RST with intent input",
        reset(&env.second, OpenIntent::Input).await.map(|_| ()),
        open_error::INVALID_OPTIONS,
    )?;
    let loader = reset(&env.second, OpenIntent::Output).await?;
    put(&loader, record(b"K009", b"-NEW")).await?;
    loader.close().await?;
    let ds = env.open(&name, OpenIntent::Input).await?;
    expect_eq(
        "only the record written after the reset",
        read_all(&ds, 0, RplOptions::sequential()).await?,
        vec![record(b"K009", b"-NEW")],
    )?;
    Ok(())
}

async fn large_records(env: Env) -> Step {
    let name = env.define("BIG", Organization::Ksds, 8, 32_760).await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    let big: Vec<u8> = (0..32_760u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut rec = big.clone();
    rec[..8].copy_from_slice(b"BIGREC01");
    put(&ds, rec.clone()).await?;
    expect_eq(
        "a 32,760-byte record",
        data(&get(&ds, b"BIGREC01").await?),
        vec![rec],
    )?;
    // 600 such records are more than one 16 MiB answer holds: a batched GET
    // returns what fits, and the browse goes on from there.
    for i in 2..=600u32 {
        let mut rec = vec![b'A' + (i % 26) as u8; 32_760];
        rec[..8].copy_from_slice(format!("BIG{i:05}").as_bytes());
        put(&ds, rec).await?;
    }
    let mut batches = Vec::new();
    ds.point(
        0,
        RplOptions::sequential().greater_or_equal(),
        &[0; 8],
        0,
        0,
    )
    .await?;
    loop {
        match ds.browse(1000).await {
            Ok(batch) => batches.push(batch.len()),
            Err(e) if e.is_end_of_data() => break,
            Err(e) => return Err(e.into()),
        }
    }
    expect_eq("every record once", batches.iter().sum::<usize>(), 600)?;
    if batches.len() < 2 {
        return fail(format!(
            "one answer held {} records of 32,760 bytes: more than a frame",
            batches[0]
        ));
    }
    Ok(())
}

fn chained(records: &[Vec<u8>]) -> Vec<ChainedRecord> {
    records
        .iter()
        .map(|record| ChainedRecord {
            address: 0,
            record: record.clone(),
        })
        .collect()
}

/// The RBAs or RRNs a chain wrote, in order.
fn addresses(outcome: &ChainOutcome) -> Vec<u64> {
    outcome.written.iter().map(|r| r.address).collect()
}

/// Expects a chain to have written `written` records, then stopped with
/// R15=8 and `code` (or run to the end when `code` is None).
fn expect_chain(what: &str, outcome: &ChainOutcome, written: usize, code: Option<Fdbk>) -> Step {
    expect_eq(
        &format!("{what}: records written"),
        outcome.written.len(),
        written,
    )?;
    let got = outcome
        .failure
        .as_ref()
        .map(|f| (f.status.r15, f.status.feedback()));
    expect_eq(
        &format!("{what}: how the chain ended"),
        got,
        code.map(|code| (8, code)),
    )
}

async fn put_chain(env: Env) -> Step {
    let name = env.ksds("CHAIN").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    put(&ds, record(b"K050", b"-OLD")).await?;
    let first: Vec<Vec<u8>> = (0..100u32)
        .map(|i| record(format!("K{:03}", i * 2).as_bytes(), b"-NEW"))
        .collect();
    // K050 is already stored: records K000..K048 are written, then the
    // chain stops; nothing after it is written.
    let outcome = ds
        .put_chain(0, RplOptions::direct(), chained(&first))
        .await?;
    expect_chain(
        "chain over a stored key",
        &outcome,
        25,
        Some(fdbk::DUPLICATE_KEY),
    )?;
    expect_eq(
        "written keys, in order",
        outcome
            .written
            .iter()
            .map(|r| r.key.clone())
            .collect::<Vec<_>>(),
        first[..25]
            .iter()
            .map(|r| r[..4].to_vec())
            .collect::<Vec<_>>(),
    )?;
    expect_fdbk(
        "the record after the failure",
        get(&ds, b"K052").await,
        fdbk::NOT_FOUND,
    )?;
    expect_eq(
        "the stored record is unchanged",
        data(&get(&ds, b"K050").await?),
        vec![record(b"K050", b"-OLD")],
    )?;
    // Sequential chain: ascending keys, then one below its predecessor.
    let seq = RplOptions::sequential();
    let rising = vec![
        record(b"K101", b""),
        record(b"K103", b""),
        record(b"K102", b""),
        record(b"K104", b""),
    ];
    let outcome = ds.put_chain(1, seq, chained(&rising)).await?;
    expect_chain(
        "sequential chain out of order",
        &outcome,
        2,
        Some(fdbk::SEQUENCE_ERROR),
    )?;
    let outcome = ds
        .put_chain(1, seq, chained(&[record(b"K103", b"x")]))
        .await?;
    expect_chain(
        "sequential chain repeating the position's key",
        &outcome,
        0,
        Some(fdbk::DUPLICATE_KEY),
    )?;
    let lengths = vec![record(b"K110", b""), vec![b'K'; 101]];
    let outcome = ds
        .put_chain(0, RplOptions::direct(), chained(&lengths))
        .await?;
    expect_chain("a record too long", &outcome, 1, Some(fdbk::INVALID_LENGTH))?;
    // A chain longer than the server takes is refused whole.
    let target = vsam_protocol::StringRef {
        handle: ds.handle(),
        string: 0,
    };
    let welcome = env.first.welcome().clone();
    let too_long = vec![record(b"K999", b""); welcome.max_batch as usize + 1];
    let too_long = env
        .first
        .call(vsam_protocol::Request::PutChain(vsam_protocol::PutChain {
            target,
            options: RplOptions::direct().to_bits(),
            records: chained(&too_long),
        }))
        .await?;
    expect_result_fdbk("a chain beyond max_batch", too_long, fdbk::INVALID_OPTIONS)?;
    ds.close().await?;
    let reader = env.open(&name, OpenIntent::Input).await?;
    let outcome = reader
        .put_chain(0, RplOptions::direct(), chained(&[record(b"K998", b"")]))
        .await?;
    expect_chain(
        "a chain on a dataset open for input",
        &outcome,
        0,
        Some(fdbk::NOT_ALLOWED_BY_OPEN),
    )?;
    expect_eq(
        "every written record is stored, and nothing else",
        read_all(&reader, 0, seq).await?.len(),
        1 + 25 + 2 + 1,
    )?;
    Ok(())
}

async fn put_chain_esds_rrds(env: Env) -> Step {
    let name = env.define("CHAINES", Organization::Esds, 0, 20).await?;
    let ds = env.open(&name, OpenIntent::Output).await?;
    let adr = RplOptions::addressed(Processing::Sequential);
    ds.put(0, adr, 0, b"0123456789".to_vec()).await?;
    let records = vec![b"abc".to_vec(), b"defgh".to_vec(), b"ij".to_vec()];
    let outcome = ds.put_chain(0, adr, chained(&records)).await?;
    expect_chain("ESDS chain", &outcome, 3, None)?;
    expect_eq(
        "RBAs follow each other",
        addresses(&outcome),
        vec![10, 13, 18],
    )?;
    ds.close().await?;

    let name = env.define("CHAINRR", Organization::Rrds, 0, 4).await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    let key = RplOptions::direct();
    ds.put(0, key, 4, b"SL04".to_vec()).await?;
    let slots = |rrns: &[u64]| {
        rrns.iter()
            .map(|rrn| ChainedRecord {
                address: *rrn,
                record: format!("S{rrn:03}").into_bytes(),
            })
            .collect::<Vec<_>>()
    };
    let outcome = ds.put_chain(0, key, slots(&[1, 2, 4, 5])).await?;
    expect_chain(
        "direct RRDS chain into a full slot",
        &outcome,
        2,
        Some(fdbk::DUPLICATE_KEY),
    )?;
    // Sequential: each record goes to the slot after the one before.
    let seq = RplOptions::sequential();
    ds.point(0, seq, &[], 0, 4).await?;
    next(&ds, 0, seq).await?;
    let outcome = ds.put_chain(0, seq, slots(&[0, 0, 0])).await?;
    expect_chain("sequential RRDS chain", &outcome, 3, None)?;
    expect_eq(
        "slots after the position",
        addresses(&outcome),
        vec![5, 6, 7],
    )?;
    ds.point(0, seq, &[], 0, 1).await?;
    expect_eq(
        "every slot written",
        read_all(&ds, 0, seq).await?.len(),
        1 + 2 + 3,
    )?;
    Ok(())
}

/// PUT CHAIN with UPD (1.4): each record replaces the one under its key
/// (a KSDS key field, an RRDS slot, an ESDS RBA) as GET UPD and PUT UPD
/// would, in order, until the first that fails; the records after it keep
/// what they held.
async fn put_chain_update(env: Env) -> Step {
    let name = env.ksds("UPCHAIN").await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    load(&ds, &[b"K001", b"K002", b"K003", b"K005", b"K006"]).await?;
    let upd = RplOptions::direct().update();
    let changes = vec![
        record(b"K003", b"-NEW"),
        record(b"K001", b"-NEW"),
        record(b"K004", b"-NEW"),
        record(b"K005", b"-NEW"),
    ];
    let outcome = ds.put_chain(0, upd, chained(&changes)).await?;
    expect_chain(
        "an update chain over a key not stored",
        &outcome,
        2,
        Some(fdbk::NOT_FOUND),
    )?;
    let message = &outcome.failure.as_ref().expect("a failure").status.message;
    if !message.contains("record 3 of 4") {
        return fail(format!(
            "the failure does not say which record of the chain: {message}"
        ));
    }
    expect_eq(
        "updated keys, in the chain's order",
        outcome
            .written
            .iter()
            .map(|r| r.key.clone())
            .collect::<Vec<_>>(),
        vec![b"K003".to_vec(), b"K001".to_vec()],
    )?;
    expect_eq(
        "records before the failure are updated",
        [
            data(&get(&ds, b"K001").await?),
            data(&get(&ds, b"K003").await?),
        ]
        .concat(),
        vec![record(b"K001", b"-NEW"), record(b"K003", b"-NEW")],
    )?;
    expect_eq(
        "the record after the failure keeps its record",
        data(&get(&ds, b"K005").await?),
        vec![record(b"K005", b"-DATA")],
    )?;
    expect_fdbk(
        "an update chain inserts nothing",
        get(&ds, b"K004").await,
        fdbk::NOT_FOUND,
    )?;
    // A record another connection holds for update stops the chain.
    let theirs = Dataset::open(&env.second, &name, OpenIntent::Update, 1).await?;
    theirs.read_for_update(b"K006").await?;
    let held = vec![record(b"K005", b"-TWO"), record(b"K006", b"-TWO")];
    let outcome = ds.put_chain(0, upd, chained(&held)).await?;
    expect_chain(
        "an update chain over a held record",
        &outcome,
        1,
        Some(fdbk::EXCLUSIVE_CONTROL),
    )?;
    theirs.close().await?;
    let lengths = vec![record(b"K002", b"-LONG"), vec![b'K'; 101]];
    let outcome = ds.put_chain(0, upd, chained(&lengths)).await?;
    expect_chain("a record too long", &outcome, 1, Some(fdbk::INVALID_LENGTH))?;
    let seq = RplOptions::sequential();
    ds.point(0, seq.greater_or_equal(), b"K000", 0, 0).await?;
    expect_eq(
        "every record as the chains left it",
        read_all(&ds, 0, seq).await?,
        vec![
            record(b"K001", b"-NEW"),
            record(b"K002", b"-LONG"),
            record(b"K003", b"-NEW"),
            record(b"K005", b"-TWO"),
            record(b"K006", b"-DATA"),
        ],
    )?;
    ds.close().await?;
    let reader = env.open(&name, OpenIntent::Input).await?;
    let outcome = reader
        .put_chain(0, upd, chained(&[record(b"K001", b"-RO")]))
        .await?;
    expect_chain(
        "an update chain on a dataset open for input",
        &outcome,
        0,
        Some(fdbk::NOT_ALLOWED_BY_OPEN),
    )?;
    reader.close().await?;

    // An RRDS by slot, an ESDS by RBA (keeping each record's length).
    let name = env.define("UPCHRR", Organization::Rrds, 0, 4).await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    for rrn in [1, 2] {
        ds.put(
            0,
            RplOptions::direct(),
            rrn,
            format!("S{rrn:03}").into_bytes(),
        )
        .await?;
    }
    let slots = vec![
        ChainedRecord {
            address: 2,
            record: b"U002".to_vec(),
        },
        ChainedRecord {
            address: 3,
            record: b"U003".to_vec(),
        },
    ];
    let outcome = ds.put_chain(0, upd, slots).await?;
    expect_chain(
        "an RRDS update chain into an empty slot",
        &outcome,
        1,
        Some(fdbk::NOT_FOUND),
    )?;
    expect_eq("RRDS slots updated", addresses(&outcome), vec![2])?;
    ds.close().await?;
    let name = env.define("UPCHES", Organization::Esds, 0, 20).await?;
    let ds = env.open(&name, OpenIntent::Update).await?;
    let adr = RplOptions::addressed(Processing::Sequential);
    ds.put(0, adr, 0, b"0123456789".to_vec()).await?;
    ds.put(0, adr, 0, b"abc".to_vec()).await?;
    let upd_adr = RplOptions::addressed(Processing::Direct).update();
    let records = vec![
        ChainedRecord {
            address: 10,
            record: b"xyz".to_vec(),
        },
        ChainedRecord {
            address: 0,
            record: b"short".to_vec(),
        },
    ];
    let outcome = ds.put_chain(0, upd_adr, records).await?;
    expect_chain(
        "an ESDS update chain changing a length",
        &outcome,
        1,
        Some(fdbk::LENGTH_CHANGED),
    )?;
    expect_eq("ESDS RBAs updated", addresses(&outcome), vec![10])?;
    ds.point(0, adr, &[], 0, 0).await?;
    expect_eq(
        "ESDS records",
        read_all(&ds, 0, adr).await?,
        vec![b"0123456789".to_vec(), b"xyz".to_vec()],
    )?;
    Ok(())
}

/// Names that a store lowering every character outside `[A-Z0-9]` to one
/// separator would put in one table or file: each must keep its own
/// records, and a DELETE of one must leave the others whole.
async fn storage_names(env: Env) -> Step {
    let suffixes = [
        "COL.CUST",
        "COL-CUST",
        "COL.$CUST",
        "COL#.CUST",
        "COL@.CUST",
        "COL.CUST-",
    ];
    let mut names = Vec::new();
    for suffix in suffixes {
        let name = env.ksds(suffix).await?;
        let ds = env.open(&name, OpenIntent::Update).await?;
        put(&ds, record(b"K001", name.as_bytes())).await?;
        ds.close().await?;
        names.push(name);
    }
    let read_own = |name: String| {
        let env = &env;
        async move {
            let ds = env.open(&name, OpenIntent::Input).await?;
            let records = read_all(&ds, 0, RplOptions::sequential()).await?;
            ds.close().await?;
            expect_eq(
                &format!("the records of {name}"),
                records,
                vec![record(b"K001", name.as_bytes())],
            )
        }
    };
    for name in &names {
        read_own(name.clone()).await?;
    }
    vsam_client::delete(&env.first, &names[1]).await?;
    for (i, name) in names.iter().enumerate() {
        if i != 1 {
            read_own(name.clone()).await?;
        }
    }
    env.ksds(suffixes[1]).await?;
    let ds = env.open(&names[1], OpenIntent::Input).await?;
    expect_fdbk(
        "the dataset deleted and defined again starts empty",
        next(&ds, 0, RplOptions::sequential()).await,
        fdbk::END_OF_DATA,
    )?;
    ds.close().await?;
    read_own(names[0].clone()).await?;
    Ok(())
}
