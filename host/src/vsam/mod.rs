//! VSAM semantics: everything a program can observe, kept in the host.
//!
//! Plugins only store records by byte key. Positions (one per string),
//! exclusive control, key matching, browsing in both directions, ESDS RBAs,
//! RRDS slots and every return and feedback code are decided here, the same
//! way for every backend.

pub(crate) mod alternate;
pub(crate) mod dataset;
pub(crate) mod deadlock;
pub mod placement;
pub(crate) mod rpl;
pub(crate) mod session;
pub mod sessions;
pub(crate) mod shared;

mod catalog_requests;
mod erase;
pub(crate) mod get;
mod point;
mod put;
mod rename;
pub(crate) mod request;
mod search;
pub(crate) mod shared_catalog;
pub(crate) mod subject;
pub mod unit;
pub mod unit_memory;
mod update_chain;
mod writes;
mod written;

pub use dataset::{DatasetState, Owner};
pub use session::{Client, Session};
pub use shared::{Limits, Routing, Shared};
pub use unit::UnitSnapshot;
