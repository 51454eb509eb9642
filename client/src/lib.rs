//! # vsam-client
//!
//! Async Rust client for `vsamrd`, the VSAM redirector server, and the
//! `vsamr` command-line tool built on it. A [`Connection`] pipelines: clone
//! it into many tasks and their requests share one socket. Given several
//! servers of a fleet (`a:2387,b:2387`) it fails over to the next when its
//! socket is lost, and its open [`Dataset`]s go on there where they were
//! (what cannot, a held record or a unit of work, fails with
//! [`ClientError::ServerLost`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), vsam_client::ClientError> {
//! use vsam_client::{Connection, OpenIntent, RplOptions};
//! let conn = Connection::connect("127.0.0.1:2387").await?;
//! let ds = vsam_client::Dataset::open(&conn, "PROD.CUST", OpenIntent::Update, 2).await?;
//! ds.put(0, RplOptions::direct(), 0, b"00000001SMITH".to_vec()).await?;
//! let record = ds.read(b"00000001").await?;
//! let following = ds.browse(100).await?; // the next 100 records
//! // Any GET, its parts named: on string 1, the first record whose key
//! // starts with 0000.
//! let first = ds
//!     .reading(RplOptions::direct().generic())
//!     .on(1)
//!     .key(b"0000")
//!     .generic(4)
//!     .record()
//!     .await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod admin;
mod catalog;
mod connection;
mod dataset;
mod error;
mod link;
mod transport;
mod unit;

pub use catalog::{
    bldindex, define, define_aix, define_path, delete, info, list, listcat, ping, rename,
};
pub use connection::Connection;
pub use dataset::{ChainOutcome, Dataset, Read};
pub use error::{ClientError, VsamError};
pub use transport::{ConnectOptions, DEFAULT_CONNECT_TIMEOUT, TlsOptions};
pub use unit::{commit, rollback};
pub use vsam_protocol::{
    AixSpec, CatalogEntry, ChainedRecord, DatasetSpec, EntryType, OpenIntent, Organization,
    PathSpec, Record, RplOptions, Status,
};

/// Default server address: 127.0.0.1 on the VSAM Redirector port 2387.
pub const DEFAULT_SERVER: &str = "127.0.0.1:2387";
