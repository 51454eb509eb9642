//! `vsamr define-aix`, `vsamr define-path` and `vsamr bldindex`: IDCAMS's
//! DEFINE ALTERNATEINDEX, DEFINE PATH and BLDINDEX. Browsing or reading a
//! path is `vsamr browse PATH` or `vsamr get PATH KEY`.

use super::Output;
use super::commands::print_entries;
use anyhow::Result;
use clap::Args;
use vsam_client::{AixSpec, Connection, PathSpec};

/// `vsamr define-aix`.
#[derive(Args)]
pub struct DefineAixArgs {
    /// The alternate index's name, e.g. PROD.CUST.BYNAME.
    name: String,
    /// The base cluster (RELATE): a KSDS or an ESDS.
    #[arg(long)]
    relate: String,
    /// Offset of the alternate key in the base's records.
    #[arg(long)]
    key_offset: u32,
    /// Length of the alternate key.
    #[arg(long)]
    key_length: u16,
    /// NONUNIQUEKEY: several records may share an alternate key (returned
    /// in the order they were stored). Default: UNIQUEKEY.
    #[arg(long)]
    nonunique: bool,
    /// NOUPGRADE: base writes leave the index alone (BLDINDEX refreshes it).
    #[arg(long)]
    noupgrade: bool,
}

pub async fn define_aix(conn: &Connection, args: DefineAixArgs, output: Output) -> Result<()> {
    let spec = AixSpec {
        name: args.name.to_ascii_uppercase(),
        base: args.relate.to_ascii_uppercase(),
        key_offset: args.key_offset,
        key_length: args.key_length,
        unique: !args.nonunique,
        upgrade: !args.noupgrade,
    };
    let entry = vsam_client::define_aix(conn, spec).await?;
    print_entries(&[entry], output);
    Ok(())
}

pub async fn define_path(conn: &Connection, name: &str, aix: &str, output: Output) -> Result<()> {
    let spec = PathSpec {
        name: name.to_ascii_uppercase(),
        aix: aix.to_ascii_uppercase(),
    };
    let entry = vsam_client::define_path(conn, spec).await?;
    print_entries(&[entry], output);
    Ok(())
}

pub async fn bldindex(conn: &Connection, aix: &str) -> Result<()> {
    outln!(
        "{}",
        vsam_client::bldindex(conn, &aix.to_ascii_uppercase()).await?
    );
    Ok(())
}
