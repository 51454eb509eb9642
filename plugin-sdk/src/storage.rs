//! Files in the directory vsamrd grants a backend, written so that every
//! failure reads as what it is.
//!
//! Under WASI a file written through `std::io::Write` goes through a
//! stream, and a stream that fails once (a full disk) stays closed: every
//! later write fails too, and the error reads as a generic I/O error, not
//! as "no space". A positional write (`pwrite`) reports `ENOSPC` as such
//! and leaves the file usable once space is freed. These helpers write
//! that way and turn errors into the [`StoreError`] a program should see:
//! `no-space` (FDBK X'1C') for a full disk, `io` otherwise, naming the file.
//!
//! The conformance kit's durability checks (`vsam-conformance --only
//! durable`) fill the disk, fail syncs and cut writes short below a
//! plugin; a store built on [`AppendFile`] and [`replace_file`] passes them
//! if it also skips a torn last record when it reads its file back (see
//! [`whole_lines`]).

use crate::{StoreError, StoreResult};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The directory vsamrd grants the backend: `/data` inside vsamrd. In a
/// native build (a plugin's own `cargo test`) it is the directory the
/// test harness chose for the instance being created, read in `init`.
pub fn data_dir() -> PathBuf {
    #[cfg(not(target_family = "wasm"))]
    if let Some(dir) = native::current() {
        return dir;
    }
    PathBuf::from("/data")
}

/// The error a program should see for `error`, met while doing `action`
/// (`"appending to"`, `"syncing"`) to `path`: `no-space` for a full disk
/// or quota, `io` otherwise.
pub fn store_error(path: &Path, action: &str, error: io::Error) -> StoreError {
    // The "(os error N)" std appends counts in WASI's numbering, which
    // matches no host errno: leave it out.
    let text = error.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let message = format!("{action} {}: {text}", path.display());
    match error.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StoreError::NoSpace(message),
        _ => StoreError::Io(message),
    }
}

/// Writes all of `bytes` at `offset` of `file` by positional writes, so
/// that a full disk is reported as [`io::ErrorKind::StorageFull`] and the
/// file stays usable (see the module's documentation).
pub fn write_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    while !bytes.is_empty() {
        // SAFETY: an open descriptor, and a buffer valid for its length.
        let written = unsafe {
            libc::pwrite(
                file.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                offset as libc::off_t,
            )
        };
        match written {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n if n < 0 => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            n => {
                bytes = &bytes[n as usize..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// A file that grows only at its end: a journal, a log of records. An
/// append that fails (a full disk) is cut off again, so the file holds
/// only whole appends; [`AppendFile::sync`] makes them durable.
#[derive(Debug)]
pub struct AppendFile {
    file: File,
    path: PathBuf,
    len: u64,
}

impl AppendFile {
    /// Opens `path`, creating it empty if it does not exist.
    pub fn open(path: impl Into<PathBuf>) -> StoreResult<Self> {
        let path = path.into();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| store_error(&path, "opening", e))?;
        let len = file
            .metadata()
            .map_err(|e| store_error(&path, "reading the length of", e))?
            .len();
        Ok(Self { file, path, len })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its length: the end of its last whole append.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its whole content.
    pub fn read_all(&self) -> StoreResult<Vec<u8>> {
        let mut bytes = Vec::with_capacity(self.len as usize);
        File::open(&self.path)
            .and_then(|mut file| file.read_to_end(&mut bytes))
            .map_err(|e| store_error(&self.path, "reading", e))?;
        Ok(bytes)
    }

    /// Writes `bytes` at the end; returns where they start. If the write
    /// fails the file is cut back to its length before it, so that no part
    /// of the append stays (a full disk answers `no-space`).
    pub fn append(&mut self, bytes: &[u8]) -> StoreResult<u64> {
        let start = self.len;
        if let Err(error) = write_at(&self.file, bytes, start) {
            // Best effort: if even this fails, the next open reads a torn
            // tail, which readers skip (see `whole_lines`).
            let _ = self.file.set_len(start);
            return Err(store_error(&self.path, "appending to", error));
        }
        self.len += bytes.len() as u64;
        Ok(start)
    }

    /// Cuts the file to `len` bytes (a rollback of appends not synced, a
    /// torn tail found at open).
    pub fn truncate(&mut self, len: u64) -> StoreResult<()> {
        self.file
            .set_len(len)
            .map_err(|e| store_error(&self.path, "truncating", e))?;
        self.len = len;
        Ok(())
    }

    /// Makes every append durable: what vsamrd's `sync` call must do before
    /// the writes are acknowledged. A failure must reach the program.
    pub fn sync(&self) -> StoreResult<()> {
        self.file
            .sync_data()
            .map_err(|e| store_error(&self.path, "syncing", e))
    }
}

/// Replaces the file at `path` with `bytes` so that a crash leaves either
/// the old content or the new: written to a temporary file beside it,
/// synced, renamed over it, and the directory synced. On failure the
/// temporary file is removed (a half-written copy must not hold the space
/// a full disk has left).
pub fn replace_file(path: &Path, bytes: &[u8]) -> StoreResult<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let written = File::create(&temporary)
        .and_then(|file| write_at(&file, bytes, 0).and_then(|()| file.sync_all()))
        .map_err(|e| store_error(&temporary, "writing", e))
        .and_then(|()| fs::rename(&temporary, path).map_err(|e| store_error(path, "replacing", e)));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written?;
    sync_directory(path.parent().unwrap_or(Path::new(".")))
}

/// Makes the names in `dir` durable (a file created, renamed or removed).
pub fn sync_directory(dir: &Path) -> StoreResult<()> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|e| store_error(dir, "syncing the directory", e))
}

/// Splits `bytes` into the whole lines (up to and with the last `\n`) and
/// what follows: the torn tail a crash in the middle of an append leaves,
/// never acknowledged, to be skipped (or cut off with
/// [`AppendFile::truncate`]).
pub fn whole_lines(bytes: &[u8]) -> (&[u8], &[u8]) {
    let end = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |last| last + 1);
    bytes.split_at(end)
}

/// Runs `init` (a backend's `init`) with [`data_dir`] answering `dir`: how
/// a native test harness gives each instance a directory of its own. One
/// such `init` runs at a time in the process.
#[cfg(not(target_family = "wasm"))]
pub fn with_data_dir<T>(dir: &Path, init: impl FnOnce() -> T) -> T {
    native::init_in(dir, init)
}

/// The directory of the instance a native test harness is creating.
#[cfg(not(target_family = "wasm"))]
mod native {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    static CREATING: Mutex<Option<PathBuf>> = Mutex::new(None);
    /// One instance is created at a time: the directory is a process-wide
    /// setting while its `init` runs.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    pub(crate) fn current() -> Option<PathBuf> {
        CREATING.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn init_in<T>(dir: &Path, init: impl FnOnce() -> T) -> T {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        *CREATING.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.to_path_buf());
        let made = init();
        *CREATING.lock().unwrap_or_else(|e| e.into_inner()) = None;
        made
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_tail_is_split_off() {
        assert_eq!(whole_lines(b"a\nb\nc"), (&b"a\nb\n"[..], &b"c"[..]));
        assert_eq!(whole_lines(b"a\nb\n"), (&b"a\nb\n"[..], &b""[..]));
        assert_eq!(whole_lines(b"torn"), (&b""[..], &b"torn"[..]));
    }

    #[test]
    fn appends_are_whole_and_truncate_rolls_back() {
        let dir = std::env::temp_dir().join(format!("vsam-sdk-storage-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let _ = fs::remove_file(&path);
        let mut log = AppendFile::open(&path).unwrap();
        assert_eq!(log.append(b"one\n").unwrap(), 0);
        assert_eq!(log.append(b"two\n").unwrap(), 4);
        log.sync().unwrap();
        log.truncate(4).unwrap();
        assert_eq!(log.read_all().unwrap(), b"one\n");
        let reopened = AppendFile::open(&path).unwrap();
        assert_eq!(reopened.len(), 4);
        replace_file(&dir.join("whole"), b"new content").unwrap();
        assert_eq!(fs::read(dir.join("whole")).unwrap(), b"new content");
        assert!(!dir.join("whole.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_disk_is_no_space() {
        let full = io::Error::from(io::ErrorKind::StorageFull);
        let error = store_error(Path::new("/data/A.log"), "appending to", full);
        assert!(
            matches!(&error, StoreError::NoSpace(m) if m.starts_with("appending to /data/A.log"))
        );
        let other = io::Error::from_raw_os_error(libc::EIO);
        let error = store_error(Path::new("/data/A.log"), "syncing", other);
        assert!(
            matches!(&error, StoreError::Io(m) if !m.contains("os error")),
            "{error:?}"
        );
    }

    #[test]
    fn the_native_data_dir_is_the_harness_choice_during_init() {
        let chosen = with_data_dir(Path::new("/tmp/chosen"), data_dir);
        assert_eq!(chosen, PathBuf::from("/tmp/chosen"));
        assert_eq!(data_dir(), PathBuf::from("/data"));
    }
}
