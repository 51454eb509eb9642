//! A small tmpfs that the disk-full parts mount and fill, so that a store
//! or vsamrd's own files run out of space on purpose (needs root, or a
//! user and mount namespace).

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A tmpfs mounted for the run, unmounted when dropped.
pub(crate) struct Tmpfs(pub(crate) PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB at `path`.
    pub(crate) fn mount_sized(path: &Path, mib: u64) -> Result<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!(
                "disk-full mounts a {mib} MiB tmpfs and needs root (or run it in a user and mount namespace: unshare -rm)"
            );
        }
        std::fs::create_dir_all(path)?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(path)
            .status()
            .context("running mount")?;
        if !status.success() {
            bail!("mount -t tmpfs on {} failed: {status}", path.display());
        }
        Ok(Self(path.to_path_buf()))
    }

    /// Bytes still free.
    fn available(&self) -> Result<u64> {
        let path = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes())?;
        let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid C string and a struct to fill.
        if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(stats.f_bavail as u64 * stats.f_frsize as u64)
    }

    /// Fills the file system with a file until `room` bytes are left.
    pub(crate) fn fill(&self, room: u64) -> Result<PathBuf> {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path)?;
        let chunk = vec![0x55u8; 64 << 10];
        while self.available()? > room + chunk.len() as u64 {
            file.write_all(&chunk)?;
        }
        Ok(path)
    }

    /// Fills the file system to its last page, as an operator's disk ends
    /// up; the files that fill it, to remove.
    pub(crate) fn fill_up(&self) -> Result<[PathBuf; 2]> {
        let filler = self.fill(0)?;
        let last = self.0.join("filler-last");
        let mut rest = std::fs::File::create(&last)?;
        while rest
            .write_all(&[0u8; 4096])
            .and_then(|()| rest.sync_data())
            .is_ok()
        {}
        Ok([filler, last])
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}
