//! Catalog requests and ping.

use crate::connection::Connection;
use crate::error::{ClientError, VsamError};
use std::time::{Duration, Instant};
use vsam_protocol::{AixSpec, Answer, CatalogEntry, DatasetSpec, PathSpec, Request};

pub(crate) fn expect_ok(
    answer: Answer,
    dataset: &str,
    request: &'static str,
) -> Result<Answer, ClientError> {
    match answer {
        Answer::Result { status, .. } if !status.is_ok() => Err(VsamError {
            dataset: dataset.to_string(),
            request,
            status,
        }
        .into()),
        Answer::ProtocolError { code, message, .. } => Err(ClientError::Protocol { code, message }),
        other => Ok(other),
    }
}

fn catalog_entries(
    answer: Answer,
    dataset: &str,
    request: &'static str,
) -> Result<Vec<DatasetSpec>, ClientError> {
    match expect_ok(answer, dataset, request)? {
        Answer::Catalog { datasets } => Ok(datasets),
        other => Err(ClientError::Unexpected {
            request,
            detail: format!("{other:?}"),
        }),
    }
}

/// Round trip of a PING.
pub async fn ping(conn: &Connection) -> Result<Duration, ClientError> {
    let started = Instant::now();
    expect_ok(conn.call(Request::Ping).await?, "-", "PING")?;
    Ok(started.elapsed())
}

/// DEFINE a dataset; returns the catalog entry (with its backend).
pub async fn define(conn: &Connection, spec: DatasetSpec) -> Result<DatasetSpec, ClientError> {
    let name = spec.name.clone();
    let mut entries = catalog_entries(conn.call(Request::Define(spec)).await?, &name, "DEFINE")?;
    entries.pop().ok_or(ClientError::Unexpected {
        request: "DEFINE",
        detail: "no catalog entry".into(),
    })
}

/// DELETE a dataset and its records.
pub async fn delete(conn: &Connection, name: &str) -> Result<(), ClientError> {
    expect_ok(
        conn.call(Request::Delete {
            name: name.to_string(),
        })
        .await?,
        name,
        "DELETE",
    )
    .map(drop)
}

/// INFO: one dataset's catalog entry.
pub async fn info(conn: &Connection, name: &str) -> Result<DatasetSpec, ClientError> {
    let mut entries = catalog_entries(
        conn.call(Request::Info {
            name: name.to_string(),
        })
        .await?,
        name,
        "INFO",
    )?;
    entries.pop().ok_or(ClientError::Unexpected {
        request: "INFO",
        detail: "no catalog entry".into(),
    })
}

/// LIST datasets matching a pattern (`*` within a qualifier, `**` across),
/// in name order: a page at a time from a server of protocol 1.7, so that
/// a catalog larger than one answer frame is listed whole.
pub async fn list(conn: &Connection, pattern: &str) -> Result<Vec<DatasetSpec>, ClientError> {
    let listing = Listing {
        request: "LIST",
        pattern,
        ask: |pattern, after| Request::List { pattern, after },
        take: |answer| match answer {
            Answer::Catalog { datasets } => Ok(datasets),
            other => Err(other),
        },
        name: |spec: &DatasetSpec| &spec.name,
    };
    listing.all(conn).await
}

/// The protocol minor version that answers LIST and LISTCAT a page at a
/// time.
const PAGES_MINOR: u16 = 7;

/// A LIST or LISTCAT: how to ask for a page and read one.
struct Listing<'a, T> {
    request: &'static str,
    pattern: &'a str,
    ask: fn(String, Option<String>) -> Request,
    take: fn(Answer) -> Result<Vec<T>, Answer>,
    name: fn(&T) -> &str,
}

impl<T> Listing<'_, T> {
    /// Every entry: in one answer from a server below 1.7, else page after
    /// page (each asking for the names after the last one), until a page
    /// is empty.
    async fn all(&self, conn: &Connection) -> Result<Vec<T>, ClientError> {
        let paging = conn.welcome().minor >= PAGES_MINOR;
        let mut entries: Vec<T> = Vec::new();
        loop {
            let after = entries
                .last()
                .map_or("", |entry| (self.name)(entry))
                .to_string();
            let request = (self.ask)(self.pattern.to_string(), paging.then(|| after.clone()));
            let answer = expect_ok(conn.call(request).await?, self.pattern, self.request)?;
            let page = (self.take)(answer).map_err(|other| ClientError::Unexpected {
                request: self.request,
                detail: format!("{other:?}"),
            })?;
            if !paging {
                return Ok(page);
            }
            let Some(first) = page.first() else {
                return Ok(entries);
            };
            if (self.name)(first) <= after.as_str() {
                // A page must move on, or the listing would never end.
                return Err(ClientError::Unexpected {
                    request: self.request,
                    detail: format!(
                        "the page after {after:?} starts at {:?}, not after it",
                        (self.name)(first)
                    ),
                });
            }
            entries.extend(page);
        }
    }
}

/// The protocol minor version that has LISTCAT and RENAME.
const LISTCAT_MINOR: u16 = 6;

/// Refuses, before anything is sent, a request a server below protocol
/// 1.6 does not know.
fn check_catalog_minor(conn: &Connection, request: &'static str) -> Result<(), ClientError> {
    let welcome = conn.welcome();
    if welcome.minor >= LISTCAT_MINOR {
        return Ok(());
    }
    Err(ClientError::Unexpected {
        request,
        detail: format!(
            "server {} speaks protocol {}.{}, and {request} needs 1.{LISTCAT_MINOR}: upgrade vsamrd",
            welcome.server, welcome.major, welcome.minor
        ),
    })
}

/// ALTER NEWNAME (protocol 1.6): gives an entry a new name, its records
/// going with it (the server moves them while the entry is closed to
/// every OPEN); returns the server's summary.
pub async fn rename(conn: &Connection, name: &str, new_name: &str) -> Result<String, ClientError> {
    check_catalog_minor(conn, "ALTER")?;
    let request = Request::Rename {
        name: name.to_string(),
        new_name: new_name.to_string(),
    };
    match expect_ok(conn.call(request).await?, name, "ALTER")? {
        Answer::Result { status, .. } => Ok(status.message),
        other => Err(ClientError::Unexpected {
            request: "ALTER",
            detail: format!("{other:?}"),
        }),
    }
}

/// LISTCAT: the entries matching a pattern, each with what it is (a
/// cluster, an alternate index and its base, a path and its index), in
/// name order, a page at a time as [`list`]. Needs a server of protocol
/// 1.6.
pub async fn listcat(conn: &Connection, pattern: &str) -> Result<Vec<CatalogEntry>, ClientError> {
    check_catalog_minor(conn, "LISTCAT")?;
    let listing = Listing {
        request: "LISTCAT",
        pattern,
        ask: |pattern, after| Request::Listcat { pattern, after },
        take: |answer| match answer {
            Answer::Entries { entries } => Ok(entries),
            other => Err(other),
        },
        name: |entry: &CatalogEntry| &entry.spec.name,
    };
    listing.all(conn).await
}

/// DEFINE ALTERNATEINDEX over a KSDS or ESDS (protocol 1.2); returns its
/// catalog entry. The index starts empty: [`bldindex`] fills it from the
/// base's records.
pub async fn define_aix(conn: &Connection, spec: AixSpec) -> Result<DatasetSpec, ClientError> {
    let name = spec.name.clone();
    let mut entries = catalog_entries(
        conn.call(Request::DefineAix(spec)).await?,
        &name,
        "DEFINE AIX",
    )?;
    entries.pop().ok_or(ClientError::Unexpected {
        request: "DEFINE AIX",
        detail: "no catalog entry".into(),
    })
}

/// DEFINE PATH over an alternate index (protocol 1.2): opening the path
/// opens the base by the alternate key. Returns the catalog entry.
pub async fn define_path(conn: &Connection, spec: PathSpec) -> Result<DatasetSpec, ClientError> {
    let name = spec.name.clone();
    let mut entries = catalog_entries(
        conn.call(Request::DefinePath(spec)).await?,
        &name,
        "DEFINE PATH",
    )?;
    entries.pop().ok_or(ClientError::Unexpected {
        request: "DEFINE PATH",
        detail: "no catalog entry".into(),
    })
}

/// BLDINDEX: rebuilds an alternate index from every record of its base
/// (protocol 1.2); returns the server's summary (records, keys).
pub async fn bldindex(conn: &Connection, aix: &str) -> Result<String, ClientError> {
    let request = Request::BldIndex {
        aix: aix.to_string(),
    };
    match expect_ok(conn.call(request).await?, aix, "BLDINDEX")? {
        Answer::Result { status, .. } => Ok(status.message),
        other => Err(ClientError::Unexpected {
            request: "BLDINDEX",
            detail: format!("{other:?}"),
        }),
    }
}
