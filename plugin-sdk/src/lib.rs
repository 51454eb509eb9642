//! # vsam-plugin-sdk
//!
//! Everything needed to write a backend for the VSAM redirector `vsamrd` as a
//! WebAssembly component: implement [`Backend`] for your store, call
//! [`export_backend!`] once, and build with `cargo build --target wasm32-wasip2`.
//!
//! A backend is an ordered record store over byte keys. The host keeps every
//! VSAM rule (positions, record locks, return and feedback codes), so a plugin
//! keeps no session state and only has to store, find and list records.
//! See `plugin-sdk/README.md` for a tutorial.
//!
//! The crate also carries what tools around records need on every platform:
//! [`codepage`] (EBCDIC code pages), [`text`] (the reversible text form of
//! record bytes) and [`keys`] (ESDS/RRDS key encoding).
#![warn(missing_docs)]

pub mod cache;
pub mod codepage;
pub mod copybook;
mod dataset;
pub mod instance;
pub mod keys;
pub mod log;
pub mod naming;
pub mod numeric;
pub mod objects;
pub mod ordered;
pub mod sql;
pub mod storage;
pub mod text;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "backend",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_backend_world",
        default_bindings_module: "vsam_plugin_sdk::bindings",
        additional_derives: [PartialEq],
    });
}

pub use bindings::vsam::backend::types::{
    Dataset, Direction, Entry, Organization, Start, StoreError,
};

/// The WIT package version of the contract this SDK builds plugins for.
pub const CONTRACT_VERSION: &str = "1.0.0";

/// The result type of every store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// An ordered record store: the one trait a backend plugin implements.
///
/// Keys compare as unsigned bytes. A write that returns `Ok` must be durable
/// once the next [`Backend::sync`] returns `Ok`: the host acknowledges writes
/// to clients only after that (group commit). Calls come
/// one at a time (a plugin instance is never entered concurrently); the value
/// lives as long as the instance, so it may cache whatever it likes.
pub trait Backend: Sized + 'static {
    /// True if the writes between two [`Backend::sync`] calls become
    /// durable all together or not at all: `sync` commits them as one, a
    /// crash before it returns leaves none of them stored (also after the
    /// next [`Backend::init`]), and dropping the instance before it discards
    /// them. The host then runs units of work (COMMIT, `commit` durability)
    /// on the backend, and rolls one back by dropping the instance. A store
    /// that cannot promise it keeps the default, and its datasets are
    /// opened in `sync` durability only.
    const WHOLE_UNITS: bool = false;

    /// Builds the store from the backend's `params` in the host configuration.
    fn init(params: &[(String, String)]) -> Result<Self, String>;

    /// Makes empty storage for a new dataset (`already-exists` if present).
    /// `layout` is the dataset's COBOL copybook, if it was defined with one;
    /// it comes only with this call, so a store that uses it keeps it.
    fn create(&mut self, ds: &Dataset, layout: Option<&str>) -> StoreResult<()>;

    /// Removes a dataset's storage.
    fn destroy(&mut self, ds: &Dataset) -> StoreResult<()>;

    /// The record under exactly `key`.
    fn get(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<Option<Vec<u8>>>;

    /// The records under `keys`, one answer per key in order: GETs the host
    /// queued together. A store that can look many keys up at once (one
    /// database round trip) overrides it; the default asks [`Backend::get`]
    /// for each key.
    fn get_many(&mut self, ds: &Dataset, keys: &[Vec<u8>]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|key| self.get(ds, key)).collect()
    }

    /// Up to `limit` records in key order, starting at `from`, in `dir`.
    fn scan(
        &mut self,
        ds: &Dataset,
        from: Start,
        dir: Direction,
        limit: u32,
    ) -> StoreResult<Vec<Entry>>;

    /// Stores a record under a new key (`duplicate-key` if present).
    fn insert(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()>;

    /// Overwrites the record under an existing key (`not-found` if absent).
    fn replace(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()>;

    /// Removes the record under `key` (`not-found` if absent).
    fn delete(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<()>;

    /// Stores records under new keys, in order, as [`Backend::insert`]
    /// would each: how vsamrd sends the inserts of a unit of work (only to a
    /// store with [`Backend::WHOLE_UNITS`]), many at a time. On an error
    /// vsamrd drops the instance and the whole unit with it, so a store
    /// need not undo the ones before. A store that can write many rows at
    /// once (one SQL statement) overrides it; the default inserts each.
    fn insert_many(&mut self, ds: &Dataset, entries: Vec<Entry>) -> StoreResult<()> {
        entries
            .into_iter()
            .try_for_each(|entry| self.insert(ds, entry.key, entry.value))
    }

    /// Applies changes whatever the store holds now: each of `puts` is
    /// stored under its key (replacing a record there, or inserted), each
    /// of `erases` removed if stored. How vsamrd keeps a mirror in step: it
    /// sends the net effect of a batch of committed changes (no key twice),
    /// and the same batch again after a stop, so the result must not depend
    /// on what an earlier attempt left. A store that can write many rows at
    /// once (an upsert statement) overrides it; the default replaces,
    /// inserts and deletes one record at a time.
    fn apply(&mut self, ds: &Dataset, puts: Vec<Entry>, erases: Vec<Vec<u8>>) -> StoreResult<()> {
        for entry in puts {
            match self.replace(ds, entry.key.clone(), entry.value.clone()) {
                Err(StoreError::NotFound) => self.insert(ds, entry.key, entry.value)?,
                other => other?,
            }
        }
        for key in erases {
            match self.delete(ds, &key) {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Stores a record after the last one; returns its key (the ESDS RBA:
    /// previous RBA plus previous length, 8 bytes big-endian; 0 when empty).
    fn append(&mut self, ds: &Dataset, value: Vec<u8>) -> StoreResult<Vec<u8>>;

    /// Compacts or tidies storage; called when a dataset is last closed
    /// (an alternate index with its base), at shutdown, after the host's
    /// work on a dataset without an open (BLDINDEX, ALTER NEWNAME, a
    /// mirror's copy), and on a mirror's target seconds after its last
    /// change. What the instance keeps for the dataset is best let go
    /// here (or bounded in number, see [`cache::DatasetCache`]): an
    /// instance serves every dataset a backend is given, one after
    /// another, for as long as it lives.
    fn flush(&mut self, _ds: &Dataset) -> StoreResult<()> {
        Ok(())
    }

    /// Makes every write that returned `Ok` durable (one sync for a batch of
    /// writes). A store whose writes are durable at once keeps the default.
    fn sync(&mut self) -> StoreResult<()> {
        Ok(())
    }
}

/// Exports a [`Backend`] implementation as the plugin's `store` interface
/// (and its `lookup` interface, [`Backend::get_many`], `units`,
/// [`Backend::WHOLE_UNITS`], and `mirror`, [`Backend::apply`]).
///
/// ```text
/// struct MyStore { /* ... */ }
/// impl vsam_plugin_sdk::Backend for MyStore { /* ... */ }
/// vsam_plugin_sdk::export_backend!(MyStore);
/// ```
///
/// On targets other than WebAssembly the macro expands to nothing, so the
/// same crate can be used natively (for tests or an in-process baseline).
#[macro_export]
macro_rules! export_backend {
    ($backend:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings::exports::vsam::backend::store::Guest;
            use $crate::{Backend, Dataset, Direction, Entry, Start, StoreError};

            ::std::thread_local! {
                static STATE: ::std::cell::RefCell<Option<$backend>> =
                    const { ::std::cell::RefCell::new(None) };
            }

            fn with<R>(
                f: impl FnOnce(&mut $backend) -> Result<R, StoreError>,
            ) -> Result<R, StoreError> {
                STATE.with(|state| match state.borrow_mut().as_mut() {
                    Some(backend) => f(backend),
                    None => Err(StoreError::Invalid("plugin called before init".to_string())),
                })
            }

            struct Export;

            impl Guest for Export {
                fn init(params: Vec<(String, String)>) -> Result<(), String> {
                    $crate::log::report_panics();
                    let backend = <$backend as Backend>::init(&params)?;
                    STATE.with(|state| *state.borrow_mut() = Some(backend));
                    Ok(())
                }
                fn create(ds: Dataset, layout: Option<String>) -> Result<(), StoreError> {
                    with(|b| b.create(&ds, layout.as_deref()))
                }
                fn destroy(ds: Dataset) -> Result<(), StoreError> {
                    with(|b| b.destroy(&ds))
                }
                fn get(ds: Dataset, key: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError> {
                    with(|b| b.get(&ds, &key))
                }
                fn scan(
                    ds: Dataset,
                    from: Start,
                    dir: Direction,
                    limit: u32,
                ) -> Result<Vec<Entry>, StoreError> {
                    with(|b| b.scan(&ds, from, dir, limit))
                }
                fn insert(ds: Dataset, key: Vec<u8>, value: Vec<u8>) -> Result<(), StoreError> {
                    with(|b| b.insert(&ds, key, value))
                }
                fn replace(ds: Dataset, key: Vec<u8>, value: Vec<u8>) -> Result<(), StoreError> {
                    with(|b| b.replace(&ds, key, value))
                }
                fn delete(ds: Dataset, key: Vec<u8>) -> Result<(), StoreError> {
                    with(|b| b.delete(&ds, &key))
                }
                fn append(ds: Dataset, value: Vec<u8>) -> Result<Vec<u8>, StoreError> {
                    with(|b| b.append(&ds, value))
                }
                fn flush(ds: Dataset) -> Result<(), StoreError> {
                    with(|b| b.flush(&ds))
                }
                fn sync() -> Result<(), StoreError> {
                    with(|b| b.sync())
                }
            }

            impl $crate::bindings::exports::vsam::backend::units::Guest for Export {
                fn whole() -> bool {
                    <$backend as Backend>::WHOLE_UNITS
                }
                fn insert_many(ds: Dataset, entries: Vec<Entry>) -> Result<(), StoreError> {
                    with(|b| b.insert_many(&ds, entries))
                }
            }

            impl $crate::bindings::exports::vsam::backend::mirror::Guest for Export {
                fn apply(
                    ds: Dataset,
                    puts: Vec<Entry>,
                    erases: Vec<Vec<u8>>,
                ) -> Result<(), StoreError> {
                    with(|b| b.apply(&ds, puts, erases))
                }
            }

            impl $crate::bindings::exports::vsam::backend::lookup::Guest for Export {
                fn get_many(
                    ds: Dataset,
                    keys: Vec<Vec<u8>>,
                ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
                    with(|b| b.get_many(&ds, &keys))
                }
            }

    $crate::bindings::__export_backend_world!(Export with_types_in $crate::bindings);
        };
    };
}
