//! Units of work (protocol 1.4): on a backend whose plugin keeps the
//! writes between two syncs whole, the changes of a dataset opened in
//! `commit` durability are seen by others only after COMMIT, are undone by
//! ROLLBACK and by a dropped connection, hold their records against other
//! connections, and a large unit commits whole. A plugin that does not
//! keep units whole must be refused `commit` durability with open error
//! X'A8' naming why, and keep serving `sync` durability.

use crate::check::{Step, data, expect_eq, expect_fdbk, fail};
use crate::env::Env;
use vsam_client::{ClientError, Connection, Dataset, OpenIntent, RplOptions};
use vsam_protocol::{access, fdbk, open_error};

fn record(key: &[u8], body: &[u8]) -> Vec<u8> {
    [key, body].concat()
}

/// Opens `name` on `conn` in `commit` durability; `None` if the backend's
/// plugin does not keep units whole, after checking that the refusal is
/// the documented one and that `sync` durability still serves.
async fn open_in_unit(env: &Env, conn: &Connection, name: &str) -> Step<Option<Dataset>> {
    match Dataset::open_with_access(conn, name, OpenIntent::Update, access::COMMIT, 2).await {
        Ok(ds) => Ok(Some(ds)),
        Err(ClientError::Vsam(refused))
            if refused.status.fdbk == u8::from(open_error::NOT_AVAILABLE) =>
        {
            if !refused.status.message.contains("units.whole") {
                return fail(format!(
                    "OPEN with COMMIT refused without saying why: {}",
                    refused.status.message
                ));
            }
            let plain = env.open(name, OpenIntent::Update).await?;
            let rec = record(b"S001", b"-SYNC");
            plain.put(0, RplOptions::direct(), 0, rec.clone()).await?;
            expect_eq(
                "sync durability still serves",
                data(
                    &plain
                        .reading(RplOptions::direct())
                        .key(b"S001")
                        .records()
                        .await?,
                ),
                vec![rec],
            )?;
            Ok(None)
        }
        Err(other) => Err(other.into()),
    }
}

async fn read(ds: &Dataset, key: &[u8]) -> Result<Vec<u8>, ClientError> {
    ds.read(key).await.map(|record| record.data)
}

async fn update(ds: &Dataset, rec: Vec<u8>, key_length: usize) -> Result<(), ClientError> {
    ds.read_for_update(&rec[..key_length]).await?;
    ds.put(0, RplOptions::direct().update(), 0, rec)
        .await
        .map(drop)
}

/// Commit, rollback and held records.
pub(crate) async fn commit_and_rollback(env: Env) -> Step {
    let name = env.ksds("UOW").await?;
    let plain = env.open(&name, OpenIntent::Update).await?;
    for key in [b"K001", b"K002", b"K003"] {
        plain
            .put(0, RplOptions::direct(), 0, record(key, b"-OLD"))
            .await?;
    }
    let Some(mine) = open_in_unit(&env, &env.first, &name).await? else {
        return Ok(());
    };
    let theirs = Dataset::open(&env.second, &name, OpenIntent::Update, 1).await?;
    mine.put(0, RplOptions::direct(), 0, record(b"K005", b"-NEW"))
        .await?;
    update(&mine, record(b"K001", b"-NEW"), 4).await?;
    mine.read_for_update(b"K002").await?;
    mine.erase(0).await?;
    expect_eq(
        "the unit sees its update",
        read(&mine, b"K001").await?,
        record(b"K001", b"-NEW"),
    )?;
    expect_eq(
        "the unit sees its insert",
        read(&mine, b"K005").await?,
        record(b"K005", b"-NEW"),
    )?;
    expect_fdbk(
        "the unit's erase",
        mine.read(b"K002").await,
        fdbk::NOT_FOUND,
    )?;
    expect_eq(
        "another connection sees what is committed",
        read(&theirs, b"K001").await?,
        record(b"K001", b"-OLD"),
    )?;
    expect_fdbk(
        "another connection does not see an insert not committed",
        theirs.read(b"K005").await,
        fdbk::NOT_FOUND,
    )?;
    expect_fdbk(
        "a record the unit changed is held against another connection",
        theirs.read_for_update(b"K001").await,
        fdbk::EXCLUSIVE_CONTROL,
    )?;
    expect_fdbk(
        "a key the unit inserted is held against another connection",
        theirs
            .put(0, RplOptions::direct(), 0, record(b"K005", b"-THEIRS"))
            .await,
        fdbk::EXCLUSIVE_CONTROL,
    )?;
    vsam_client::commit(&env.first).await?;
    expect_eq(
        "committed: seen by the other connection",
        (read(&theirs, b"K001").await?, read(&theirs, b"K005").await?),
        (record(b"K001", b"-NEW"), record(b"K005", b"-NEW")),
    )?;
    expect_fdbk(
        "committed erase",
        theirs.read(b"K002").await,
        fdbk::NOT_FOUND,
    )?;
    update(&theirs, record(b"K001", b"-THEIRS"), 4).await?;

    mine.put(0, RplOptions::direct(), 0, record(b"K006", b"-GONE"))
        .await?;
    update(&mine, record(b"K003", b"-GONE"), 4).await?;
    mine.read_for_update(b"K005").await?;
    mine.erase(0).await?;
    vsam_client::rollback(&env.first).await?;
    for (ds, who) in [
        (&mine, "its own connection"),
        (&theirs, "another connection"),
    ] {
        expect_fdbk(
            &format!("rolled back insert, for {who}"),
            ds.read(b"K006").await,
            fdbk::NOT_FOUND,
        )?;
        expect_eq(
            &format!("rolled back update and erase, for {who}"),
            (read(ds, b"K003").await?, read(ds, b"K005").await?),
            (record(b"K003", b"-OLD"), record(b"K005", b"-NEW")),
        )?;
    }
    update(&theirs, record(b"K003", b"-FREE"), 4).await?;
    vsam_client::commit(&env.first).await?;
    vsam_client::rollback(&env.first).await?;

    // PUT CHAIN with UPD: the records join the unit, held until it ends.
    let upd = RplOptions::direct().update();
    let chain = |body: &[u8]| {
        [b"K001", b"K003"]
            .iter()
            .map(|key| vsam_client::ChainedRecord {
                address: 0,
                record: record(*key, body),
            })
            .collect::<Vec<_>>()
    };
    let outcome = mine.put_chain(0, upd, chain(b"-CHAIN")).await?;
    if let Some(failure) = outcome.failure {
        return fail(format!("an update chain in a unit failed: {failure}"));
    }
    expect_eq(
        "the unit sees its chain; another connection what is committed",
        (read(&mine, b"K003").await?, read(&theirs, b"K003").await?),
        (record(b"K003", b"-CHAIN"), record(b"K003", b"-FREE")),
    )?;
    expect_fdbk(
        "a record the chain updated is held against another connection",
        theirs.read_for_update(b"K001").await,
        fdbk::EXCLUSIVE_CONTROL,
    )?;
    vsam_client::rollback(&env.first).await?;
    expect_eq(
        "a rolled back chain",
        read(&theirs, b"K001").await?,
        record(b"K001", b"-THEIRS"),
    )?;
    mine.put_chain(0, upd, chain(b"-KEPT")).await?;
    vsam_client::commit(&env.first).await?;
    expect_eq(
        "a committed chain",
        (read(&theirs, b"K001").await?, read(&theirs, b"K003").await?),
        (record(b"K001", b"-KEPT"), record(b"K003", b"-KEPT")),
    )?;
    mine.close().await?;
    Ok(())
}

/// A connection dropped mid-unit leaves nothing; a unit of many records
/// commits whole.
pub(crate) async fn dropped_and_large(env: Env) -> Step {
    let name = env.ksds("UOWBIG").await?;
    let gone = Connection::connect(&env.address).await?;
    let Some(ds) = open_in_unit(&env, &gone, &name).await? else {
        return Ok(());
    };
    ds.put(0, RplOptions::direct(), 0, record(b"G001", b"-NEVER"))
        .await?;
    drop(ds);
    drop(gone);
    let reader = env.open(&name, OpenIntent::Input).await?;
    expect_fdbk(
        "the unit of a dropped connection",
        reader.read(b"G001").await,
        fdbk::NOT_FOUND,
    )?;

    const RECORDS: u32 = 5_000;
    let Some(mine) = open_in_unit(&env, &env.second, &name).await? else {
        return fail("OPEN with COMMIT was refused only the second time");
    };
    let body = [b'x'; 90];
    for n in 0..RECORDS {
        let key = format!("{n:04}");
        mine.put(0, RplOptions::direct(), 0, record(key.as_bytes(), &body))
            .await?;
    }
    expect_fdbk(
        "nothing of the large unit before its commit",
        reader.read(b"0000").await,
        fdbk::NOT_FOUND,
    )?;
    mine.close().await?;
    // The reads above left the string without a position.
    reader
        .point(
            0,
            RplOptions::sequential().greater_or_equal(),
            b"0000",
            0,
            0,
        )
        .await?;
    let mut count = 0u32;
    loop {
        match reader.browse(1000).await {
            Ok(records) => {
                for found in records {
                    let key = format!("{count:04}");
                    if found.data != record(key.as_bytes(), &body) {
                        return fail(format!(
                            "record {count} of the large unit came back as {:?}",
                            String::from_utf8_lossy(&found.data)
                        ));
                    }
                    count += 1;
                }
            }
            Err(e) if e.is_end_of_data() => break,
            Err(e) => return Err(e.into()),
        }
    }
    expect_eq("records of the large unit after CLOSE", count, RECORDS)
}
