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
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let written = std::fs::File::create(&tmp)
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
}
