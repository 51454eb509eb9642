//! The cache of compiled plugin versions: `DATA_DIR/plugin-cache/KEY.cwasm`,
//! so that a restart or a swap back to a version compiled before takes
//! milliseconds instead of the half second of compiling it.
//!
//! A cached file is native code the server maps and runs as it is: the
//! sandbox holds only as long as the file is the one this server wrote.
//! So the directory is made for the server's user alone, and a file is
//! loaded only if that user owns it and no one else may write it (as ssh
//! treats its keys); any other file is compiled again and written over.

use anyhow::Result;
use sha2::{Digest, Sha256};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled plugin versions in one directory.
pub(super) struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// The cache in `dir`, made (for this user alone) if absent.
    pub(super) fn open(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        // Made by an earlier version, open to others: theirs no longer. A
        // directory this user may not change (another's) is used as it is:
        // each file is still checked before it is run.
        let mode = std::fs::metadata(&dir)?.permissions().mode();
        if mode & 0o077 != 0
            && let Err(error) =
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        {
            tracing::warn!(
                "plugin cache {}: cannot make it this user's alone ({error}); compiled plugins in it are run only if they are this user's and no one else may write them",
                dir.display()
            );
        }
        Ok(Self { dir })
    }

    /// Component `bytes` (of SHA-256 `content_hash`) compiled by `engine`:
    /// from the cache when it holds a file it may trust, else compiled now
    /// and cached.
    pub(super) fn compile(
        &self,
        engine: &Engine,
        content_hash: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<Component> {
        let path = self.path(engine, content_hash);
        match read_trusted(&path) {
            // SAFETY: the bytes are those of a file written by
            // `precompile_component` of an engine with the same
            // compatibility hash (part of the name), which no one but this
            // server's user can have changed since (`read_trusted`, on the
            // file it read).
            Ok(Some(compiled)) => match unsafe { Component::deserialize(engine, &compiled) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!("ignoring unusable cached plugin {}: {e:#}", path.display())
                }
            },
            Ok(None) => {}
            Err(why) => tracing::warn!(
                "not loading cached plugin {}: {why}; compiling it again",
                path.display()
            ),
        }
        let compiled = engine.precompile_component(bytes)?;
        crate::durable::replace_private_file(&path, &compiled).unwrap_or_else(|e| {
            tracing::warn!("cannot cache compiled plugin at {}: {e:#}", path.display())
        });
        // SAFETY: the bytes were produced just now by this engine.
        unsafe { Component::deserialize(engine, &compiled) }
    }

    /// Where the version of `content_hash` compiled by `engine` is kept.
    fn path(&self, engine: &Engine, content_hash: &str) -> PathBuf {
        let mut key = Sha256::new();
        key.update(content_hash.as_bytes());
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        key.update(std::hash::Hasher::finish(&hasher).to_be_bytes());
        self.dir
            .join(format!("{}.cwasm", hex::encode(key.finalize())))
    }
}

/// The bytes of the cached file at `path` (`None` if there is none), if
/// they may be run: read from the file whose owner and mode were checked
/// (opened once, without following a link), so that no file put in its
/// place between the check and the read is run.
fn read_trusted(path: &Path) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            anyhow::bail!("it is not a regular file (a link)")
        }
        Err(error) => return Err(error.into()),
    };
    trusted(&file.metadata()?)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Whether a cached file of metadata `meta` may be run: a regular file of
/// this process's user that neither its group nor others may write.
fn trusted(meta: &std::fs::Metadata) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let user = unsafe { libc::geteuid() };
    if !meta.file_type().is_file() {
        anyhow::bail!("it is not a regular file");
    }
    if meta.uid() != user {
        anyhow::bail!(
            "it belongs to user {}, not to this server's ({user})",
            meta.uid()
        );
    }
    if meta.mode() & 0o022 != 0 {
        anyhow::bail!(
            "its group or others may write it (mode {:o})",
            meta.mode() & 0o777
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty component: the preamble of the component layer alone.
    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn compiled_once(cache: &CompileCache, engine: &Engine) -> PathBuf {
        cache.compile(engine, "hash", COMPONENT).unwrap();
        cache.path(engine, "hash")
    }

    #[test]
    fn the_cache_is_its_users_alone_and_a_file_others_may_write_is_compiled_again() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        // Left open to others by an earlier version.
        std::fs::create_dir(dir.path().join("plugin-cache")).unwrap();
        std::fs::set_permissions(
            dir.path().join("plugin-cache"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let cache = CompileCache::open(dir.path().join("plugin-cache")).unwrap();
        let mode = std::fs::metadata(dir.path().join("plugin-cache"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let path = compiled_once(&cache, &engine);
        read_trusted(&path).unwrap().expect("cached");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "whatever the umask");

        // Writable by others: refused, then written over by the server
        // and trusted again.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let why = read_trusted(&path).unwrap_err().to_string();
        assert!(why.contains("others may write it (mode 666)"), "{why}");
        compiled_once(&cache, &engine);
        read_trusted(&path).unwrap().expect("cached");

        // A link to a file elsewhere is not the file the server wrote.
        let elsewhere = dir.path().join("elsewhere.cwasm");
        std::fs::rename(&path, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        let why = read_trusted(&path).unwrap_err().to_string();
        assert!(why.contains("not a regular file"), "{why}");
        compiled_once(&cache, &engine);
        read_trusted(&path).unwrap().expect("cached");
    }
}
