//! The kit on a store compiled natively: an author's `cargo test` runs the
//! VSAM scenarios and the durability checks against their `Backend` type
//! through an in-process vsamrd, with no WebAssembly build, so that an
//! edit-test loop takes seconds.
//!
//! ```no_run
//! // tests/conformance.rs of a plugin crate, with vsam-conformance as a
//! // dev-dependency:
//! # struct MyStore;
//! # impl vsam_plugin_sdk::Backend for MyStore {
//! #     fn init(_: &[(String, String)]) -> Result<Self, String> { Ok(MyStore) }
//! #     fn create(&mut self, _: &vsam_plugin_sdk::Dataset, _: Option<&str>) -> vsam_plugin_sdk::StoreResult<()> { Ok(()) }
//! #     fn destroy(&mut self, _: &vsam_plugin_sdk::Dataset) -> vsam_plugin_sdk::StoreResult<()> { Ok(()) }
//! #     fn get(&mut self, _: &vsam_plugin_sdk::Dataset, _: &[u8]) -> vsam_plugin_sdk::StoreResult<Option<Vec<u8>>> { Ok(None) }
//! #     fn scan(&mut self, _: &vsam_plugin_sdk::Dataset, _: vsam_plugin_sdk::Start, _: vsam_plugin_sdk::Direction, _: u32) -> vsam_plugin_sdk::StoreResult<Vec<vsam_plugin_sdk::Entry>> { Ok(vec![]) }
//! #     fn insert(&mut self, _: &vsam_plugin_sdk::Dataset, _: Vec<u8>, _: Vec<u8>) -> vsam_plugin_sdk::StoreResult<()> { Ok(()) }
//! #     fn replace(&mut self, _: &vsam_plugin_sdk::Dataset, _: Vec<u8>, _: Vec<u8>) -> vsam_plugin_sdk::StoreResult<()> { Ok(()) }
//! #     fn delete(&mut self, _: &vsam_plugin_sdk::Dataset, _: &[u8]) -> vsam_plugin_sdk::StoreResult<()> { Ok(()) }
//! #     fn append(&mut self, _: &vsam_plugin_sdk::Dataset, _: Vec<u8>) -> vsam_plugin_sdk::StoreResult<Vec<u8>> { Ok(vec![]) }
//! # }
//! #[test]
//! fn my_store_conforms() {
//!     vsam_conformance::native::assert_conforms::<MyStore>(&[]);
//! }
//! ```
//!
//! Each instance gets the directory [`vsam_plugin_sdk::storage::data_dir`]
//! answers during its `init` (a fresh one per check), so a store must take
//! its directory from there, not hard-code `/data`. The storage fault
//! checks need the WebAssembly build (the faults are injected below the
//! component): natively they say so. A panic in the store fails the call
//! and replaces the instance, as a trap does.

use crate::kit::{KitOptions, Profile, Selection, Status, run_kit};
use crate::subject::Grants;
use crate::subject::{Native, Subject};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vsam_host::runtime::call::{Call, CallError, CallResult, RecordStore, call_native};
use vsam_plugin_sdk::{Backend, storage};

/// Instances of `B` one after another in one directory, as vsamrd makes
/// instances of a component: created at the first call, dropped after a
/// panic (a trap) or a failed sync.
struct NativeInstance<B> {
    instance: Option<B>,
    directory: PathBuf,
    params: Vec<(String, String)>,
}

impl<B: Backend + Send> RecordStore for NativeInstance<B> {
    fn call(&mut self, call: Call) -> CallResult {
        if self.instance.is_none() {
            let made = catch_unwind(AssertUnwindSafe(|| {
                storage::with_data_dir(&self.directory, || B::init(&self.params))
            }));
            self.instance = Some(match made {
                Ok(Ok(instance)) => instance,
                Ok(Err(message)) => {
                    return Err(CallError::Fault(format!("init refused: {message}")));
                }
                Err(panic) => return Err(CallError::Fault(panicked(panic.as_ref()))),
            });
        }
        let instance = self.instance.as_mut().expect("made above");
        match catch_unwind(AssertUnwindSafe(|| call_native(instance, call))) {
            Ok(result) => result,
            Err(panic) => {
                self.instance = None;
                Err(CallError::Fault(panicked(panic.as_ref())))
            }
        }
    }

    fn reset(&mut self) {
        self.instance = None;
    }
}

fn panicked(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    format!("panicked: {message}; the instance was replaced")
}

impl Subject {
    /// The store type `B` compiled natively, with `params` for its `init`.
    pub fn native<B: Backend + Send + 'static>(params: &[(&str, &str)]) -> Self {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let kept = params.clone();
        let make = move |directory: &Path| -> Box<dyn RecordStore> {
            Box::new(NativeInstance::<B> {
                instance: None,
                directory: directory.to_path_buf(),
                params: kept.clone(),
            })
        };
        Self {
            plugin: PathBuf::from(format!("native {}", std::any::type_name::<B>())),
            params: params.into_iter().collect::<BTreeMap<_, _>>(),
            grants: Grants::default(),
            native: Some(Native(Arc::new(make))),
            compiled: None,
        }
    }
}

/// Runs every check of the kit on `B` (profile `durable`) and panics
/// with the failed ones: the one call a plugin's `cargo test` needs.
pub fn assert_conforms<B: Backend + Send + 'static>(params: &[(&str, &str)]) {
    assert_conforms_with::<B>(
        params,
        &KitOptions {
            profile: Profile::Durable,
            selection: Selection::all(),
            mapped: false,
        },
    );
}

/// [`assert_conforms`] with a profile and a selection of checks.
pub fn assert_conforms_with<B: Backend + Send + 'static>(
    params: &[(&str, &str)],
    options: &KitOptions,
) {
    let subject = Subject::native::<B>(params);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the kit");
    let results = runtime
        .block_on(run_kit(&subject, options))
        .unwrap_or_else(|error| {
            panic!(
                "cannot run the kit on {}: {error:#}",
                subject.plugin.display()
            )
        });
    crate::report(&results);
    let failed: Vec<String> = results
        .iter()
        .filter(|result| result.status() == Status::Fail)
        .map(|result| match &result.outcome {
            Err(failure) => format!("{}: {failure}", result.id),
            Ok(()) => result.id.to_string(),
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed {} check(s):\n{}",
        subject.plugin.display(),
        failed.len(),
        failed.join("\n")
    );
}
