//! ALTERNATE RECORD KEY: each alternate key of a mapped INDEXED file is an
//! alternate index over the file's dataset, read through a path. Their
//! names follow the dataset's: key n (1 for the first ALTERNATE RECORD KEY)
//! is index `<DATASET>.AIX<n>` and path `<DATASET>.PATH<n>`. With
//! `define`, an OPEN that may create the file defines what is missing
//! (WITH DUPLICATES makes a NONUNIQUEKEY index, UPGRADE always) and builds
//! the index from the records already there.

use crate::fcd::KeyDef;
use crate::link::{Failure, Link};
use vsam_client::{AixSpec, ClientError, Connection, DatasetSpec, OpenIntent, PathSpec};
use vsam_protocol::fdbk;

/// The alternate index and the path of alternate key `n` (from 1).
pub fn names(dataset: &str, n: usize) -> (String, String) {
    (format!("{dataset}.AIX{n}"), format!("{dataset}.PATH{n}"))
}

fn missing(error: &ClientError) -> bool {
    error
        .vsam()
        .is_some_and(|e| e.status.r15 == 8 && e.status.fdbk == fdbk::NOT_FOUND)
}

/// Defines the dataset (from `spec`) if it is missing and `define_base`
/// (else a missing dataset is left for the OPEN to answer), then every
/// alternate index and path that is missing, each built from the records.
pub fn ensure(
    link: &mut Link,
    connection: &Connection,
    spec: DatasetSpec,
    alternates: &[KeyDef],
    define_base: bool,
) -> Result<(), Failure> {
    let connection = connection.clone();
    link.run(async move {
        let base = spec.name.clone();
        match vsam_client::info(&connection, &base).await {
            Err(e) if missing(&e) && !define_base => return Ok(()),
            Err(e) if missing(&e) => {
                vsam_client::define(&connection, spec).await?;
            }
            other => {
                other?;
            }
        }
        for (i, key) in alternates.iter().enumerate() {
            let (aix, path) = names(&base, i + 1);
            match vsam_client::info(&connection, &path).await {
                Err(e) if missing(&e) => {}
                other => {
                    other?;
                    continue;
                }
            }
            if let Err(e) = vsam_client::info(&connection, &aix).await {
                if !missing(&e) {
                    return Err(e);
                }
                let index = AixSpec {
                    name: aix.clone(),
                    base: base.clone(),
                    key_offset: key.offset as u32,
                    key_length: key.length as u16,
                    unique: !key.duplicates,
                    upgrade: true,
                };
                vsam_client::define_aix(&connection, index).await?;
            }
            let spec = PathSpec {
                name: path,
                aix: aix.clone(),
            };
            vsam_client::define_path(&connection, spec).await?;
            vsam_client::bldindex(&connection, &aix).await?;
        }
        Ok(())
    })
}

/// Opens the path of every alternate key for reading, checking each
/// against the program's key; `Err` names what is wrong.
pub fn open_paths(
    link: &mut Link,
    connection: &Connection,
    dataset: &str,
    alternates: &[KeyDef],
) -> Result<Vec<vsam_client::Dataset>, (Option<Failure>, String)> {
    let mut paths = Vec::with_capacity(alternates.len());
    for (i, key) in alternates.iter().enumerate() {
        let (aix, path) = names(dataset, i + 1);
        let opened = {
            let connection = connection.clone();
            let path = path.clone();
            link.run(async move {
                vsam_client::Dataset::open(&connection, &path, OpenIntent::Input, 1).await
            })
        };
        let opened = match opened {
            Ok(opened) => opened,
            Err(Failure::Vsam(e)) if e.status.fdbk == vsam_protocol::open_error::NOT_FOUND => {
                return Err((
                    None,
                    format!(
                        "ALTERNATE RECORD KEY {} reads through path {path} over alternate index {aix}, which are not in the catalog; define them (vsamr define-aix, define-path, bldindex) or set define = true",
                        i + 1
                    ),
                ));
            }
            Err(failure) => return Err((Some(failure), String::new())),
        };
        let spec = opened.spec();
        if (spec.key_offset, usize::from(spec.key_length)) != (key.offset as u32, key.length) {
            return Err((
                None,
                format!(
                    "path {path} is keyed on {} bytes at offset {}, the program's ALTERNATE RECORD KEY {} on {} bytes at {}",
                    spec.key_length,
                    spec.key_offset,
                    i + 1,
                    key.length,
                    key.offset
                ),
            ));
        }
        paths.push(opened);
    }
    Ok(paths)
}
