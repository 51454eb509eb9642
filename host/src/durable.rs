//! Replacing a small state file so that a crash leaves either the old
//! contents or the new, never a mix: the catalog, the migrations journal.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it
/// over `path` and syncs the directory: once it returns, a power cut
/// leaves the new contents (a rename is durable only with its directory;
/// without that sync a DEFINE acknowledged a moment before could come back
/// missing from the catalog). A failure leaves the old contents and no
/// temporary file (one left would hold space on a disk that is full).
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace(path, bytes, |tmp| std::fs::File::create(tmp))
}

/// [`replace_file`] for a file that only this process's user may read or
/// write, whatever the umask: the temporary is made anew (a file or link
/// left in its place is removed first, never written through) with mode
/// 0600, and renamed over `path`.
pub fn replace_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    replace(path, bytes, |tmp| {
        match std::fs::remove_file(tmp) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)
    })
}

fn replace(
    path: &Path,
    bytes: &[u8],
    create: impl FnOnce(&Path) -> std::io::Result<std::fs::File>,
) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let written = create(&tmp)
        .and_then(|mut out| {
            out.write_all(bytes)?;
            out.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(error);
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_directory(dir),
        _ => sync_directory(Path::new(".")),
    }
}

/// Syncs directory `dir`: the files created, renamed or removed in it
/// stay so after a power cut.
pub fn sync_directory(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        super::replace_file(&path, b"one").unwrap();
        super::replace_file(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn a_replacement_that_fails_leaves_the_old_contents_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in the file's place: the rename over it fails.
        let path = dir.path().join("state.json");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"old").unwrap();
        assert!(super::replace_file(&path, b"new").is_err());
        assert_eq!(std::fs::read(path.join("inside")).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"], "a temporary was left");
    }

    #[test]
    fn a_private_file_is_its_users_alone_and_never_written_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compiled");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, b"untouched").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("compiled.tmp")).unwrap();
        super::replace_private_file(&path, b"code").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"code");
        assert_eq!(std::fs::read(&elsewhere).unwrap(), b"untouched");
        let mode = std::fs::symlink_metadata(&path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
    }
}
