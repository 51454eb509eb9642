//! Storage faults injected below a plugin, in the directory it is granted:
//! a sync that fails, a disk that fills up, a write cut short by a crash;
//! and in the bucket it is granted: a write the store took whose answer
//! was lost, and a store that goes away in the middle of a sync.
//!
//! The tutorial tells plugin authors that a `sync` makes writes durable and
//! that the truth lives in storage; the conformance kit holds a plugin to
//! it by arming these faults and checking what the plugin answers and what
//! a new instance finds. A backend has them only when a program sets
//! [`BackendSettings::storage_faults`](super::BackendSettings) (the
//! configuration file cannot), so a server never injects a fault.
//!
//! They sit where a plugin's file I/O reaches the host: the WASI functions
//! `descriptor.write` (a positional write), `descriptor.sync` and
//! `sync-data` are replaced by ones that consult the faults first, and a
//! stream a plugin writes a file through (`write-via-stream`,
//! `append-via-stream`) is wrapped in one that does. An instance without
//! faults takes the original path: one `Option` test per call. The
//! bucket's fault sits in the `objects` host functions
//! ([`crate::runtime::objects::host`]).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::{WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    Descriptor, ErrorCode, Host as _, HostDescriptor,
};
use wasmtime_wasi::p2::{
    DynOutputStream, FsResult, OutputStream, Pollable, StreamError, StreamResult,
};

/// The faults armed on one backend's granted directory, shared by all its
/// instances. Every fault is off until armed.
#[derive(Debug, Default)]
pub struct StorageFaults {
    fail_syncs: AtomicBool,
    /// Bytes the directory may still take before writes fail for lack of
    /// space (`None`: no limit).
    room: Mutex<Option<u64>>,
    tear_next_write: AtomicBool,
    /// Object writes to go before the one whose answer is lost (0: none).
    lose_answer_in: AtomicU64,
    /// Object writes to go before the one after which the store is gone
    /// (0: none).
    gone_after_in: AtomicU64,
    /// The store is gone: every object call fails, and makes nothing.
    gone: AtomicBool,
    counts: Counts,
}

#[derive(Debug, Default)]
struct Counts {
    syncs_failed: AtomicU64,
    writes_refused: AtomicU64,
    writes_torn: AtomicU64,
    bytes_written: AtomicU64,
    object_writes: AtomicU64,
    answers_lost: AtomicU64,
}

/// Faults are compared by identity: two backends meet the same faults only
/// if they share them (what a reload compares).
impl PartialEq for StorageFaults {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// How often each fault struck, and how much the plugin wrote: a check
/// tells a plugin that handled a fault from one that never met it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Syncs answered with an I/O error.
    pub syncs_failed: u64,
    /// Writes refused (wholly or in part) for lack of space.
    pub writes_refused: u64,
    /// Writes cut short, their instance stopped.
    pub writes_torn: u64,
    /// Bytes written to files in the directory.
    pub bytes_written: u64,
    /// Writes to objects in the bucket (puts and deletes).
    pub object_writes: u64,
    /// Object writes made whose answer was lost.
    pub answers_lost: u64,
}

/// What one write of a plugin does.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// It is written whole.
    Whole,
    /// Its first bytes fit (perhaps none), the rest fails: the disk is full.
    NoSpace(usize),
    /// Its first half is written, then the instance stops as if vsamrd died.
    Torn(usize),
}

impl StorageFaults {
    /// Every sync of a file fails with an I/O error while `on`.
    pub fn fail_syncs(&self, on: bool) {
        self.fail_syncs.store(on, Ordering::SeqCst);
    }

    /// The disk fills up after `bytes` more bytes are written; `None`
    /// gives the room back.
    pub fn fill_disk_after(&self, bytes: Option<u64>) {
        *self.room.lock().unwrap_or_else(|e| e.into_inner()) = bytes;
    }

    /// The next write stores only its first half, then its instance stops
    /// (a trap), as if vsamrd were killed in the middle of the write.
    pub fn tear_next_write(&self) {
        self.tear_next_write.store(true, Ordering::SeqCst);
    }

    /// The `n`th object write from now (a put of any kind, one write of a
    /// `put-many`, a delete; counted from 1) is made, then answered
    /// `unavailable`, as when the connection to the store breaks after the
    /// store took the write; `0` disarms it.
    pub fn lose_answer_of_object_write(&self, n: u64) {
        self.lose_answer_in.store(n, Ordering::SeqCst);
    }

    /// The `n`th object write from now is made and its answer lost, and
    /// from then on the store is gone: every object call, reads too, fails
    /// `unavailable` and makes nothing, as when the store stops in the
    /// middle of a sync (and of whatever the plugin does about it), until
    /// `lose_store_after_object_write(0)` brings it back.
    pub fn lose_store_after_object_write(&self, n: u64) {
        self.gone_after_in.store(n, Ordering::SeqCst);
        self.gone.store(false, Ordering::SeqCst);
    }

    /// Whether the store is gone (see
    /// [`StorageFaults::lose_store_after_object_write`]).
    pub(crate) fn object_store_gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst)
    }

    /// How often each fault struck so far.
    pub fn counts(&self) -> FaultCounts {
        let load = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
        FaultCounts {
            syncs_failed: load(&self.counts.syncs_failed),
            writes_refused: load(&self.counts.writes_refused),
            writes_torn: load(&self.counts.writes_torn),
            bytes_written: load(&self.counts.bytes_written),
            object_writes: load(&self.counts.object_writes),
            answers_lost: load(&self.counts.answers_lost),
        }
    }

    /// Counts an object write that was made; whether its answer is lost.
    pub(crate) fn object_answer_lost(&self) -> bool {
        self.counts.object_writes.fetch_add(1, Ordering::SeqCst);
        let strikes = |countdown: &AtomicU64| {
            countdown.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            }) == Ok(1)
        };
        if strikes(&self.gone_after_in) {
            self.gone.store(true, Ordering::SeqCst);
        }
        // One made while the store went (the rest of a `put-many`) is not
        // answered either.
        let lost = strikes(&self.lose_answer_in) || self.object_store_gone();
        if lost {
            self.counts.answers_lost.fetch_add(1, Ordering::SeqCst);
        }
        lost
    }

    fn sync_fails(&self) -> bool {
        let fails = self.fail_syncs.load(Ordering::SeqCst);
        if fails {
            self.counts.syncs_failed.fetch_add(1, Ordering::SeqCst);
        }
        fails
    }

    /// Decides the fate of a write of `len` bytes and counts what it
    /// writes.
    fn fate(&self, len: usize) -> Fate {
        let (fate, written) = if self.tear_next_write.swap(false, Ordering::SeqCst) {
            self.counts.writes_torn.fetch_add(1, Ordering::SeqCst);
            (Fate::Torn(len / 2), len / 2)
        } else {
            let mut room = self.room.lock().unwrap_or_else(|e| e.into_inner());
            match room.as_mut() {
                Some(left) if (len as u64) > *left => {
                    let fits = *left as usize;
                    *left = 0;
                    self.counts.writes_refused.fetch_add(1, Ordering::SeqCst);
                    (Fate::NoSpace(fits), fits)
                }
                Some(left) => {
                    *left -= len as u64;
                    (Fate::Whole, len)
                }
                None => (Fate::Whole, len),
            }
        };
        self.counts
            .bytes_written
            .fetch_add(written as u64, Ordering::SeqCst);
        fate
    }
}

fn no_space() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::ENOSPC)
}

const TORN: &str = "storage fault: the write was cut short and the instance stopped, as if vsamrd had been killed in the middle of it (injected by the conformance kit)";

/// A filesystem call's answer to the plugin: its value or its error code
/// (a trap only if the descriptor is not one).
fn answer<T>(
    view: &mut WasiFilesystemCtxView<'_>,
    result: FsResult<T>,
) -> wasmtime::Result<Result<T, ErrorCode>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(error) => Ok(Err(view.convert_error_code(error)?)),
    }
}

/// A plugin instance's state that may carry faults.
pub(crate) trait MeetsFaults: WasiView + Send + 'static {
    /// The faults its file I/O meets, if any.
    fn storage_faults(&self) -> Option<Arc<StorageFaults>>;
}

fn faults_of<T: MeetsFaults>(store: &StoreContextMut<'_, T>) -> Option<Arc<StorageFaults>> {
    store.data().storage_faults()
}

/// Replaces the WASI functions through which a plugin writes and syncs
/// files with ones that consult the instance's faults first.
pub(crate) fn add_to_linker<T: MeetsFaults>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance("wasi:filesystem/types@0.2.12")?;
    for name in ["[method]descriptor.sync", "[method]descriptor.sync-data"] {
        let data_only = name.ends_with("sync-data");
        types.func_wrap_async(
            name,
            move |mut store: StoreContextMut<'_, T>, (fd,): (Resource<Descriptor>,)| {
                Box::new(async move {
                    if faults_of(&store).is_some_and(|faults| faults.sync_fails()) {
                        return Ok((Err(ErrorCode::Io),));
                    }
                    let mut view = store.data_mut().filesystem();
                    let result = if data_only {
                        HostDescriptor::sync_data(&mut view, fd).await
                    } else {
                        HostDescriptor::sync(&mut view, fd).await
                    };
                    Ok((answer(&mut view, result)?,))
                })
            },
        )?;
    }
    types.func_wrap_async(
        "[method]descriptor.write",
        |mut store: StoreContextMut<'_, T>,
         (fd, mut buffer, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
            Box::new(async move {
                let fate =
                    faults_of(&store).map_or(Fate::Whole, |faults| faults.fate(buffer.len()));
                let stop_after = match fate {
                    Fate::Whole => None,
                    Fate::NoSpace(fits) | Fate::Torn(fits) => {
                        buffer.truncate(fits);
                        Some(fate)
                    }
                };
                let mut view = store.data_mut().filesystem();
                let written = if buffer.is_empty() && stop_after.is_some() {
                    Ok(0)
                } else {
                    HostDescriptor::write(&mut view, fd, buffer, offset).await
                };
                match stop_after {
                    Some(Fate::Torn(_)) => Err(wasmtime::format_err!(TORN)),
                    // A short write, as a full disk answers: the next one
                    // fails with no space.
                    Some(Fate::NoSpace(_)) => match written {
                        Ok(0) => Ok((Err(ErrorCode::InsufficientSpace),)),
                        other => Ok((answer(&mut view, other)?,)),
                    },
                    _ => Ok((answer(&mut view, written)?,)),
                }
            })
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store: StoreContextMut<'_, T>, (fd, offset): (Resource<Descriptor>, u64)| {
            let faults = faults_of(&store);
            let mut view = store.data_mut().filesystem();
            let opened = HostDescriptor::write_via_stream(&mut view, fd, offset);
            let stream = match answer(&mut view, opened)? {
                Ok(stream) => stream,
                Err(code) => return Ok((Err(code),)),
            };
            Ok((Ok(wrap(store.data_mut(), stream, faults)?),))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: StoreContextMut<'_, T>, (fd,): (Resource<Descriptor>,)| {
            let faults = faults_of(&store);
            let mut view = store.data_mut().filesystem();
            let opened = HostDescriptor::append_via_stream(&mut view, fd);
            let stream = match answer(&mut view, opened)? {
                Ok(stream) => stream,
                Err(code) => return Ok((Err(code),)),
            };
            Ok((Ok(wrap(store.data_mut(), stream, faults)?),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The stream `stream` of a file, wrapped in one that meets `faults` (if
/// the instance has any).
fn wrap<T: MeetsFaults>(
    state: &mut T,
    stream: Resource<DynOutputStream>,
    faults: Option<Arc<StorageFaults>>,
) -> wasmtime::Result<Resource<DynOutputStream>> {
    let Some(faults) = faults else {
        return Ok(stream);
    };
    let table = state.ctx().table;
    let inner: DynOutputStream = table.delete(stream)?;
    let wrapped: DynOutputStream = Box::new(FaultyStream {
        inner,
        faults,
        pending: None,
    });
    Ok(table.push(wrapped)?)
}

/// A file's output stream that meets the faults: a write's fate is
/// decided when it is made, and its failure reported when the plugin next
/// asks whether it may write (after the bytes that fit reached the file).
struct FaultyStream {
    inner: DynOutputStream,
    faults: Arc<StorageFaults>,
    pending: Option<Fate>,
}

impl FaultyStream {
    fn raise_pending(&mut self) -> StreamResult<()> {
        match self.pending {
            None | Some(Fate::Whole) => Ok(()),
            Some(Fate::NoSpace(_)) => Err(StreamError::LastOperationFailed(no_space().into())),
            Some(Fate::Torn(_)) => Err(StreamError::Trap(wasmtime::format_err!(TORN))),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for FaultyStream {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for FaultyStream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.raise_pending()?;
        match self.faults.fate(bytes.len()) {
            Fate::Whole => self.inner.write(bytes),
            fate @ (Fate::NoSpace(fits) | Fate::Torn(fits)) => {
                if fits > 0 {
                    self.inner.write(bytes.slice(..fits))?;
                }
                self.pending = Some(fate);
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.raise_pending()?;
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_takes_what_fits_then_refuses() {
        let faults = StorageFaults::default();
        assert_eq!(faults.fate(100), Fate::Whole);
        faults.fill_disk_after(Some(150));
        assert_eq!(faults.fate(100), Fate::Whole);
        assert_eq!(faults.fate(100), Fate::NoSpace(50));
        assert_eq!(faults.fate(10), Fate::NoSpace(0));
        faults.fill_disk_after(None);
        assert_eq!(faults.fate(10), Fate::Whole);
        let counts = faults.counts();
        assert_eq!((counts.writes_refused, counts.bytes_written), (2, 260));
    }

    #[test]
    fn a_torn_write_is_one_write() {
        let faults = StorageFaults::default();
        faults.tear_next_write();
        assert_eq!(faults.fate(101), Fate::Torn(50));
        assert_eq!(faults.fate(101), Fate::Whole);
        assert_eq!(faults.counts().writes_torn, 1);
        assert!(!faults.sync_fails());
        faults.fail_syncs(true);
        assert!(faults.sync_fails());
        assert_eq!(faults.counts().syncs_failed, 1);
    }

    #[test]
    fn a_lost_answer_strikes_once_and_a_gone_store_stays_gone_until_back() {
        let faults = StorageFaults::default();
        faults.lose_answer_of_object_write(2);
        let answers: Vec<bool> = (0..3).map(|_| faults.object_answer_lost()).collect();
        assert_eq!(answers, [false, true, false]);
        faults.lose_store_after_object_write(2);
        assert!(!faults.object_answer_lost() && !faults.object_store_gone());
        assert!(faults.object_answer_lost() && faults.object_store_gone());
        // Made while it went (the rest of a put-many): not answered.
        assert!(faults.object_answer_lost());
        faults.lose_store_after_object_write(0);
        assert!(!faults.object_store_gone() && !faults.object_answer_lost());
        let counts = faults.counts();
        assert_eq!((counts.object_writes, counts.answers_lost), (7, 3));
    }
}
