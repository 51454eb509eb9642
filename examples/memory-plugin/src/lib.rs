//! An in-memory backend: the smallest complete plugin, meant to be copied.
//!
//! Records live in one `BTreeMap` per dataset inside the plugin instance, so
//! they are gone when vsamrd restarts or the instance is replaced. Use it to
//! learn the contract, for tests, and as the sandbox-cost baseline.
#![warn(missing_docs)]

mod store;

pub use store::MemoryStore;

vsam_plugin_sdk::export_backend!(MemoryStore);
