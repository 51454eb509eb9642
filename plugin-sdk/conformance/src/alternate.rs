//! Scenarios for alternate indexes and paths: the upgrade set kept in step
//! with inserts, updates and erases; duplicates in insertion order with
//! FDBK X'08'; unique keys refused; BLDINDEX; entries left stale (by a
//! NOUPGRADE index, as a crash between a base and an index write would
//! leave them) never shown; DELETE taking indexes and paths along.

use crate::check::{Step, expect_eq, expect_fdbk, expect_status, fail};
use crate::env::Env;
use vsam_client::{AixSpec, ClientError, Dataset, OpenIntent, PathSpec, RplOptions};
use vsam_protocol::{fdbk, open_error};

/// Key, name (the non-unique alternate key), id (the unique one).
fn customer(key: &str, name: &str, id: &str) -> Vec<u8> {
    format!("{key}{name:<5}{id:<4}-DATA").into_bytes()
}

fn aix(name: String, base: &str, offset: u32, length: u16, unique: bool, upgrade: bool) -> AixSpec {
    AixSpec {
        name,
        base: base.to_string(),
        key_offset: offset,
        key_length: length,
        unique,
        upgrade,
    }
}

/// Every record through a path from the start, each with the FDBK of its
/// GET.
async fn through(path: &Dataset) -> Step<Vec<(String, u8)>> {
    path.point(
        0,
        RplOptions::direct().greater_or_equal(),
        &[0u8; 5][..path.spec().key_length as usize],
        0,
        0,
    )
    .await?;
    let mut seen = Vec::new();
    loop {
        match path.reading(RplOptions::sequential()).with_status().await {
            Ok((records, status)) => {
                for record in records {
                    seen.push((
                        String::from_utf8_lossy(&record.data[..4]).to_string(),
                        status.fdbk,
                    ));
                }
            }
            Err(e) if e.is_end_of_data() => return Ok(seen),
            Err(e) => return Err(e.into()),
        }
        if seen.len() > 100 {
            return fail("a browse through the path never ended");
        }
    }
}

fn keys(list: &[(&str, u8)]) -> Vec<(String, u8)> {
    list.iter().map(|(k, f)| (k.to_string(), *f)).collect()
}

pub(crate) async fn alternate_index(env: Env) -> Step {
    let base = env
        .define("AIXB", vsam_client::Organization::Ksds, 4, 100)
        .await?;
    let ds = env.open(&base, OpenIntent::Update).await?;
    let put = RplOptions::direct();
    for (key, name, id) in [
        ("K001", "SMITH", "A1"),
        ("K002", "JONES", "A2"),
        ("K003", "SMITH", "A3"),
        ("K004", "BROWN", "A4"),
    ] {
        ds.put(0, put, 0, customer(key, name, id)).await?;
    }
    let by_name = env.name("AIXB.NAME");
    let by_id = env.name("AIXB.ID");
    let names = env.name("AIXB.NAMES");
    let ids = env.name("AIXB.IDS");
    expect_fdbk(
        "DEFINE AIX while the base is open",
        vsam_client::define_aix(&env.first, aix(by_name.clone(), &base, 4, 5, false, true)).await,
        fdbk::EXCLUSIVE_CONTROL,
    )?;
    ds.close().await?;
    vsam_client::define_aix(&env.first, aix(by_name.clone(), &base, 4, 5, false, true)).await?;
    vsam_client::define_aix(&env.first, aix(by_id.clone(), &base, 9, 4, true, true)).await?;
    vsam_client::define_path(
        &env.first,
        PathSpec {
            name: names.clone(),
            aix: by_name.clone(),
        },
    )
    .await?;
    vsam_client::define_path(
        &env.first,
        PathSpec {
            name: ids.clone(),
            aix: by_id.clone(),
        },
    )
    .await?;
    let built = vsam_client::bldindex(&env.first, &by_name).await?;
    if !built.contains("4 records indexed, 3 alternate keys") {
        return fail(format!("BLDINDEX said {built:?}"));
    }
    vsam_client::bldindex(&env.first, &by_id).await?;
    expect_fdbk(
        "OPEN of an alternate index itself",
        Dataset::open(&env.first, &by_name, OpenIntent::Input, 1)
            .await
            .map(drop),
        open_error::INVALID_OPTIONS,
    )?;

    let path = Dataset::open(&env.second, &names, OpenIntent::Input, 1).await?;
    expect_eq(
        "alternate-key order, duplicates in the order stored, FDBK 08 while one follows",
        through(&path).await?,
        keys(&[("K004", 0), ("K002", 0), ("K001", 8), ("K003", 0)]),
    )?;
    let (found, status) = path
        .reading(RplOptions::direct())
        .key(b"SMITH")
        .with_status()
        .await?;
    expect_eq(
        "GET KEQ through the path",
        (found[0].data.clone(), status.fdbk),
        (customer("K001", "SMITH", "A1"), 8),
    )?;
    // A position, which the GET that finds nothing loses.
    path.point(0, RplOptions::direct(), b"JONES", 0, 0).await?;
    expect_fdbk(
        "GET of an alternate key nobody has",
        path.reading(RplOptions::direct())
            .key(b"ZORRO")
            .records()
            .await,
        fdbk::NOT_FOUND,
    )?;
    expect_fdbk(
        "sequential GET through the path after a GET that found nothing",
        path.reading(RplOptions::sequential()).records().await,
        fdbk::NO_POSITION,
    )?;
    let fresh = Dataset::open(&env.second, &names, OpenIntent::Input, 1).await?;
    expect_fdbk(
        "backward sequential GET through a path right after OPEN",
        fresh
            .reading(RplOptions::sequential().backward())
            .records()
            .await,
        fdbk::NO_POSITION,
    )?;
    expect_eq(
        "forward sequential GET through a path right after OPEN",
        fresh.reading(RplOptions::sequential()).records().await?[0]
            .data
            .clone(),
        customer("K004", "BROWN", "A4"),
    )?;
    fresh.close().await?;
    let found = path
        .reading(RplOptions::direct().generic())
        .key(b"JO")
        .generic(2)
        .records()
        .await?;
    expect_eq(
        "generic alternate key",
        found[0].data.clone(),
        customer("K002", "JONES", "A2"),
    )?;

    // Base writes keep both indexes in step.
    let ds = env.open(&base, OpenIntent::Update).await?;
    let (_, status) = ds
        .put_with_status(0, put, 0, customer("K000", "SMITH", "A0"))
        .await?;
    expect_eq(
        "an insert that duplicates an alternate key: R15=0 FDBK 08",
        (status.r15, status.fdbk),
        (0, 8),
    )?;
    expect_status(
        "an insert that duplicates a unique alternate key",
        ds.put(0, put, 0, customer("K009", "OTHER", "A2")).await,
        8,
        fdbk::DUPLICATE_KEY,
    )?;
    expect_fdbk(
        "the refused record is not stored",
        ds.get(0, put, b"K009", 0, 0, 1).await,
        fdbk::NOT_FOUND,
    )?;
    ds.get(1, put.update(), b"K001", 0, 0, 1).await?;
    ds.put(1, put.update(), 0, customer("K001", "ADAMS", "A1"))
        .await?;
    ds.get(1, put.update(), b"K003", 0, 0, 1).await?;
    ds.erase(1).await?;
    expect_eq(
        "after an insert, an update of the key and an erase",
        through(&path).await?,
        keys(&[("K001", 0), ("K004", 0), ("K002", 0), ("K000", 0)]),
    )?;
    let by_ids = Dataset::open(&env.second, &ids, OpenIntent::Input, 1).await?;
    let found = by_ids
        .reading(RplOptions::direct())
        .key(b"A0  ")
        .records()
        .await?;
    expect_eq(
        "the unique index has the insert",
        found[0].data.clone(),
        customer("K000", "SMITH", "A0"),
    )?;
    expect_fdbk(
        "and not the erased record",
        by_ids
            .reading(RplOptions::direct())
            .key(b"A3  ")
            .records()
            .await,
        fdbk::NOT_FOUND,
    )?;
    by_ids.close().await?;
    path.close().await?;
    ds.close().await?;

    // A NOUPGRADE index is left behind by base writes: its stale entries
    // (as a crash between a base and an index write would leave) are
    // never shown, and BLDINDEX brings it up to date.
    let frozen = env.name("AIXB.FROZEN");
    let frozen_path = env.name("AIXB.FROZENP");
    vsam_client::define_aix(&env.first, aix(frozen.clone(), &base, 4, 5, false, false)).await?;
    vsam_client::define_path(
        &env.first,
        PathSpec {
            name: frozen_path.clone(),
            aix: frozen.clone(),
        },
    )
    .await?;
    vsam_client::bldindex(&env.first, &frozen).await?;
    let ds = env.open(&base, OpenIntent::Update).await?;
    ds.get(1, put.update(), b"K002", 0, 0, 1).await?;
    ds.put(1, put.update(), 0, customer("K002", "YOUNG", "A2"))
        .await?;
    ds.close().await?;
    let stale = Dataset::open(&env.second, &frozen_path, OpenIntent::Input, 1).await?;
    expect_eq(
        "a stale entry is skipped, a missing one absent until BLDINDEX",
        through(&stale).await?,
        keys(&[("K001", 0), ("K004", 0), ("K000", 0)]),
    )?;
    stale.close().await?;
    vsam_client::bldindex(&env.first, &frozen).await?;
    let stale = Dataset::open(&env.second, &frozen_path, OpenIntent::Input, 1).await?;
    expect_eq(
        "after BLDINDEX",
        through(&stale).await?,
        keys(&[("K001", 0), ("K004", 0), ("K000", 0), ("K002", 0)]),
    )?;
    stale.close().await?;

    // Over an ESDS the entries point with RBAs.
    let log = env
        .define("AIXE", vsam_client::Organization::Esds, 0, 30)
        .await?;
    let by_kind = env.name("AIXE.KIND");
    let kinds = env.name("AIXE.KINDS");
    vsam_client::define_aix(&env.first, aix(by_kind.clone(), &log, 0, 4, false, true)).await?;
    vsam_client::define_path(
        &env.first,
        PathSpec {
            name: kinds.clone(),
            aix: by_kind,
        },
    )
    .await?;
    let esds = env.open(&log, OpenIntent::Output).await?;
    let append = RplOptions::addressed(vsam_protocol::Processing::Sequential);
    let mut rbas = Vec::new();
    for record in ["DEBT0001", "CRED0002", "DEBT0003"] {
        rbas.push(
            esds.put(0, append, 0, record.as_bytes().to_vec())
                .await?
                .address,
        );
    }
    esds.close().await?;
    expect_eq("RBAs of the appends", rbas, vec![0, 8, 16])?;
    let by_kinds = Dataset::open(&env.second, &kinds, OpenIntent::Input, 1).await?;
    let keep_position = RplOptions {
        intent: vsam_protocol::Intent::NoUpdateKeepPosition,
        ..RplOptions::direct().greater_or_equal()
    };
    let (found, status) = by_kinds
        .get_with_status(0, keep_position, b"DEBT", 0, 0, 1)
        .await?;
    expect_eq(
        "the first DEBT record, its RBA, a duplicate follows",
        (found[0].address, status.fdbk),
        (0, 8),
    )?;
    let (found, status) = by_kinds
        .reading(RplOptions::sequential())
        .with_status()
        .await?;
    expect_eq(
        "the second DEBT record",
        (found[0].address, found[0].data.clone(), status.fdbk),
        (16, b"DEBT0003".to_vec(), 0),
    )?;
    by_kinds.close().await?;

    vsam_client::delete(&env.first, &base).await?;
    for gone in [&by_name, &by_id, &names, &ids, &frozen, &frozen_path] {
        let info: Result<_, ClientError> = vsam_client::info(&env.first, gone).await;
        expect_fdbk(
            &format!("{gone} after DELETE of its base"),
            info.map(drop),
            fdbk::NOT_FOUND,
        )?;
    }
    Ok(())
}
