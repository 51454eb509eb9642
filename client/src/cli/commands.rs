//! The one-shot commands: ping, catalog requests and single-record requests.

use super::Output;
use super::records::Codec;
use anyhow::{Result, bail};
use clap::Args;
use vsam_client::{Connection, Dataset, DatasetSpec, OpenIntent, Organization, Record, RplOptions};
use vsam_protocol::Processing;

/// `vsamr define`.
#[derive(Args)]
pub struct DefineArgs {
    /// Dataset name, e.g. PROD.CUST.MASTER.
    name: String,
    /// Organization.
    /// (vrrds: a relative dataset whose records vary in length.)
    #[arg(long, value_parser = ["ksds", "esds", "rrds", "vrrds"])]
    org: String,
    /// Offset of the prime key (KSDS).
    #[arg(long, default_value_t = 0)]
    key_offset: u32,
    /// Length of the prime key (KSDS).
    #[arg(long, default_value_t = 0)]
    key_length: u16,
    /// Largest record (the slot size of an RRDS).
    #[arg(long)]
    record_size: u32,
    /// Smallest record (default 1; RRDS: the record size, its slots are
    /// fixed).
    #[arg(long)]
    min_record_size: Option<u32>,
    /// Code page of the record text.
    #[arg(long, default_value = "cp037", value_parser = ["cp037", "cp1047", "cp500", "cp273", "cp1140", "ascii"])]
    codepage: String,
    /// Backend (default: by the server's routing).
    #[arg(long)]
    backend: Option<String>,
    /// COBOL copybook describing the record (for --fields and mapped backends).
    #[arg(long)]
    layout: Option<std::path::PathBuf>,
}

/// `vsamr get`.
#[derive(Args)]
pub struct GetArgs {
    name: String,
    /// Key (KSDS).
    key: Option<String>,
    /// The key is a generic prefix.
    #[arg(long)]
    generic: bool,
    /// First record with a key greater or equal.
    #[arg(long)]
    ge: bool,
    /// RBA (ESDS).
    #[arg(long, conflicts_with_all = ["key", "rrn"])]
    rba: Option<u64>,
    /// Print the record as the named fields of its copybook layout.
    #[arg(long)]
    fields: bool,
    /// Relative record number (RRDS).
    #[arg(long, conflicts_with = "key")]
    rrn: Option<u64>,
}

pub async fn ping(conn: &Connection) -> Result<()> {
    let round_trip = vsam_client::ping(conn).await?;
    let welcome = conn.welcome();
    // The same line the server answers to a text probe of its port.
    outln!(
        "{}",
        vsam_protocol::identification(&welcome.server, welcome.major, welcome.minor)
    );
    outln!(
        "{}: round trip {} us",
        conn.server(),
        round_trip.as_micros()
    );
    Ok(())
}

pub async fn define(conn: &Connection, args: DefineArgs, output: Output) -> Result<()> {
    let organization: Organization = args.org.parse().map_err(anyhow::Error::msg)?;
    let layout = match &args.layout {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read copybook {}: {e}", path.display()))?,
        None => String::new(),
    };
    let spec = DatasetSpec {
        name: args.name.to_ascii_uppercase(),
        organization,
        key_offset: args.key_offset,
        key_length: args.key_length,
        min_record: args.min_record_size.unwrap_or(0),
        max_record: args.record_size,
        codepage: args.codepage,
        backend: args.backend.unwrap_or_default(),
        layout,
    };
    let entry = vsam_client::define(conn, spec).await?;
    print_entries(&[entry], output);
    Ok(())
}

pub async fn delete(conn: &Connection, name: &str) -> Result<()> {
    vsam_client::delete(conn, &name.to_ascii_uppercase()).await?;
    outln!("deleted {}", name.to_ascii_uppercase());
    Ok(())
}

pub async fn list(conn: &Connection, pattern: &str, output: Output) -> Result<()> {
    print_entries(&vsam_client::list(conn, pattern).await?, output);
    Ok(())
}

pub async fn info(conn: &Connection, name: &str, output: Output) -> Result<()> {
    print_entries(
        &[vsam_client::info(conn, &name.to_ascii_uppercase()).await?],
        output,
    );
    Ok(())
}

pub(super) fn print_entries(entries: &[DatasetSpec], output: Output) {
    for e in entries {
        if output.json {
            outln!(
                "{}",
                serde_json::json!({
                    "name": e.name, "organization": e.organization.name(), "key_offset": e.key_offset,
                    "key_length": e.key_length, "min_record_size": e.min_record, "record_size": e.max_record,
                    "codepage": e.codepage, "backend": e.backend, "layout": e.layout,
                })
            );
        } else {
            let keys = match e.organization {
                Organization::Ksds => format!(" KEYS({} {})", e.key_length, e.key_offset),
                _ => String::new(),
            };
            let layout = match vsam_plugin_sdk::copybook::Copybook::parse(&e.layout) {
                Ok(copybook) if !e.layout.is_empty() => {
                    format!(" layout={} fields", copybook.fields().len())
                }
                _ => String::new(),
            };
            outln!(
                "{:<44} {}{keys} RECORDSIZE({} {}) {} backend={}{layout}",
                e.name,
                e.organization.name().to_uppercase(),
                e.min_record,
                e.max_record,
                e.codepage,
                e.backend
            );
        }
    }
}

async fn open(
    conn: &Connection,
    name: &str,
    intent: OpenIntent,
    output: Output,
) -> Result<(Dataset, Codec)> {
    let dataset = Dataset::open(conn, &name.to_ascii_uppercase(), intent, 1).await?;
    let codec = Codec::new(dataset.spec(), output)?;
    Ok((dataset, codec))
}

/// The RRN after the last occupied slot (1 for an empty RRDS).
pub async fn next_free_rrn(dataset: &Dataset) -> Result<u64> {
    match dataset
        .point(0, RplOptions::sequential().last_record(), &[], 0, 0)
        .await
    {
        Ok(()) => {}
        Err(e) if e.is_end_of_data() => return Ok(1),
        Err(e) => return Err(e.into()),
    }
    let last = dataset
        .get(0, RplOptions::sequential().backward(), &[], 0, 0, 1)
        .await?;
    Ok(last.first().map_or(1, |r| r.address + 1))
}

/// `vsamr put`, and a script's `put` line.
#[derive(Args, Debug)]
pub struct PutArgs {
    /// The dataset.
    pub name: String,
    /// The record, as text in the dataset's code page (`\xHH` for any byte).
    pub record: String,
    /// Slot of an RRDS record (default: after the last one).
    #[arg(long)]
    pub rrn: Option<u64>,
}

/// `vsamr update`, and a script's `update` line.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The dataset.
    pub name: String,
    /// The new record (a KSDS record names its key).
    pub record: String,
    /// The RBA of an ESDS record.
    #[arg(long, conflicts_with = "rrn")]
    pub rba: Option<u64>,
    /// The slot of an RRDS record.
    #[arg(long)]
    pub rrn: Option<u64>,
}

/// `vsamr erase`, and a script's `erase` line.
#[derive(Args, Debug)]
pub struct EraseArgs {
    /// The dataset.
    pub name: String,
    /// The key of a KSDS record.
    pub key: Option<String>,
    /// The slot of an RRDS record.
    #[arg(long)]
    pub rrn: Option<u64>,
}

pub async fn put(
    conn: &Connection,
    name: &str,
    record: &str,
    rrn: Option<u64>,
    output: Output,
) -> Result<()> {
    let (dataset, codec) = open(conn, name, OpenIntent::Update, output).await?;
    let written = insert_record(&dataset, &codec, record, rrn).await?;
    match codec.spec.organization {
        Organization::Ksds => outln!("inserted {}", describe(&codec, &written)),
        _ => outln!("{}", describe(&codec, &written)),
    }
    dataset.close().await?;
    Ok(())
}

/// Inserts a record given as text: KSDS by its key, ESDS at the end, RRDS
/// into slot `rrn` (default: after the last one). Returns what was written.
pub(super) async fn insert_record(
    dataset: &Dataset,
    codec: &Codec,
    record: &str,
    rrn: Option<u64>,
) -> Result<Record> {
    let record = codec.parse(record, "record")?;
    Ok(match dataset.spec().organization {
        Organization::Ksds => dataset.put(0, RplOptions::direct(), 0, record).await?,
        Organization::Esds => {
            dataset
                .put(0, RplOptions::addressed(Processing::Sequential), 0, record)
                .await?
        }
        Organization::Rrds | Organization::Vrrds => {
            let rrn = match rrn {
                Some(rrn) => rrn,
                None => next_free_rrn(dataset).await?,
            };
            dataset.put(0, RplOptions::direct(), rrn, record).await?
        }
    })
}

/// A written record as the commands report it: its key, RBA or RRN.
pub(super) fn describe(codec: &Codec, written: &Record) -> String {
    match codec.spec.organization {
        Organization::Ksds => format!("key {}", codec.show(&written.key)),
        Organization::Esds => format!("RBA {}", written.address),
        Organization::Rrds | Organization::Vrrds => format!("RRN {}", written.address),
    }
}

/// Whether VSAM answered "no record with this key" (FDBK X'10').
fn is_not_found(error: &vsam_client::ClientError) -> bool {
    error
        .vsam()
        .is_some_and(|vsam| vsam.status.fdbk == vsam_protocol::fdbk::NOT_FOUND.0)
}

/// Options and arguments of a direct GET by key, RBA or RRN.
fn direct_target(
    codec: &Codec,
    key: Option<&str>,
    generic: bool,
    ge: bool,
    address: Option<u64>,
) -> Result<(RplOptions, Vec<u8>, u16, u64)> {
    let spec = &codec.spec;
    match (spec.organization, key, address) {
        (Organization::Ksds, Some(key), None) => {
            let (key, generic_length) = codec.search_key(key, generic)?;
            let mut options = RplOptions::direct();
            if generic {
                options = options.generic();
            }
            if ge {
                options = options.greater_or_equal();
            }
            Ok((options, key, generic_length, 0))
        }
        (Organization::Esds, None, Some(rba)) => Ok((
            RplOptions::addressed(Processing::Direct),
            Vec::new(),
            0,
            rba,
        )),
        (Organization::Rrds | Organization::Vrrds, None, Some(rrn)) => {
            Ok((RplOptions::direct(), Vec::new(), 0, rrn))
        }
        (Organization::Ksds, _, _) => bail!("{} is a KSDS: give a key", spec.name),
        (Organization::Esds, _, _) => bail!("{} is an ESDS: give --rba N", spec.name),
        (Organization::Rrds | Organization::Vrrds, _, _) => {
            bail!("{} is a relative dataset: give --rrn N", spec.name)
        }
    }
}

pub async fn get(conn: &Connection, args: GetArgs, output: Output) -> Result<()> {
    let (dataset, codec) = open(conn, &args.name, OpenIntent::Input, output).await?;
    let codec = codec.with_fields(args.fields)?;
    let (options, key, generic_length, address) = direct_target(
        &codec,
        args.key.as_deref(),
        args.generic,
        args.ge,
        args.rba.or(args.rrn),
    )?;
    let records = match dataset
        .get(0, options, &key, generic_length, address, 1)
        .await
    {
        Err(error) if is_not_found(&error) => match args.key.as_deref() {
            Some(text) if !args.generic && codec.parse(text, "key")?.len() < key.len() => bail!(
                "{error}\n  (the key {text} was padded with spaces to the dataset's {} bytes; --generic reads the first record whose key begins with it)",
                key.len()
            ),
            _ => return Err(error.into()),
        },
        other => other?,
    };
    for record in &records {
        codec.print(record);
    }
    dataset.close().await?;
    Ok(())
}

pub async fn update(
    conn: &Connection,
    name: &str,
    record: &str,
    address: Option<u64>,
    output: Output,
) -> Result<()> {
    let (dataset, codec) = open(conn, name, OpenIntent::Update, output).await?;
    let written = update_record(&dataset, &codec, record, address).await?;
    outln!("updated {}", describe(&codec, &written));
    dataset.close().await?;
    Ok(())
}

/// Replaces a record given as text: GET UPD by its key (KSDS) or by
/// `address` (ESDS RBA, RRDS RRN), then PUT UPD. Returns what was written.
pub(super) async fn update_record(
    dataset: &Dataset,
    codec: &Codec,
    record: &str,
    address: Option<u64>,
) -> Result<Record> {
    let record = codec.parse(record, "record")?;
    let spec = dataset.spec().clone();
    let (options, key, address) = match spec.organization {
        Organization::Ksds => {
            let start = spec.key_offset as usize;
            let end = start + usize::from(spec.key_length);
            let Some(key) = record.get(start..end) else {
                bail!(
                    "{}: the record is {} bytes and does not reach the end of the key at byte {end}",
                    spec.name,
                    record.len()
                );
            };
            (RplOptions::direct(), key.to_vec(), 0)
        }
        Organization::Esds => (
            RplOptions::addressed(Processing::Direct),
            Vec::new(),
            address.ok_or_else(|| anyhow::anyhow!("{} is an ESDS: give --rba N", spec.name))?,
        ),
        Organization::Rrds | Organization::Vrrds => (
            RplOptions::direct(),
            Vec::new(),
            address.ok_or_else(|| {
                anyhow::anyhow!("{} is a relative dataset: give --rrn N", spec.name)
            })?,
        ),
    };
    dataset
        .get(0, options.update(), &key, 0, address, 1)
        .await?;
    Ok(dataset.put(0, options.update(), address, record).await?)
}

pub async fn erase(
    conn: &Connection,
    name: &str,
    key: Option<&str>,
    rrn: Option<u64>,
    output: Output,
) -> Result<()> {
    let (dataset, codec) = open(conn, name, OpenIntent::Update, output).await?;
    erase_record(&dataset, &codec, key, rrn).await?;
    outln!("erased");
    dataset.close().await?;
    Ok(())
}

/// Erases the record with `key` (KSDS) or in slot `rrn` (RRDS): GET UPD,
/// then ERASE.
pub(super) async fn erase_record(
    dataset: &Dataset,
    codec: &Codec,
    key: Option<&str>,
    rrn: Option<u64>,
) -> Result<()> {
    let (options, key, generic_length, address) = direct_target(codec, key, false, false, rrn)?;
    dataset
        .get(0, options.update(), &key, generic_length, address, 1)
        .await?;
    Ok(dataset.erase(0).await?)
}
