//! Files holding a secret, and directories holding records, that every
//! user of the machine may read: the admin token, the TLS private key, a
//! configuration with a database password or an object store's secret
//! key, the data dir. vsamrd writes its own secrets 0600 and makes its
//! data dir 0700; one an operator made with the usual umask (0644, 0755)
//! lets any local account administer the server, reach its stores or read
//! the records, so vsamrd says so at start and at each reload, naming the
//! file and the cure.
//!
//! A warning, not a refusal: a secret mounted by a container platform is
//! often 0644 and owned by root, on a machine where no one else logs in.

use std::path::Path;

/// The warning for `path`, which holds `secret`, when users other than
/// its owner and group may read it (or, a directory, pass into it);
/// `None` when they may not (or it cannot be read at all: the caller's own
/// error says so).
pub fn warning(path: &Path, secret: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).ok()?;
    let mode = metadata.permissions().mode();
    // Into a directory others may pass (x) without listing it, files of
    // names known beforehand (`main.db`) are read as well.
    let others = if metadata.is_dir() { 0o005 } else { 0o004 };
    (mode & others != 0).then(|| {
        format!(
            "{} holds {secret}, and every user of this machine may read it (mode {:04o}): chmod o-rwx {}",
            path.display(),
            mode & 0o7777,
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::warning;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_secret_or_records_others_may_read_are_named_with_the_mode_and_cure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        std::fs::write(&path, "secret").unwrap();
        for (mode, warned) in [(0o600, false), (0o640, false), (0o644, true), (0o604, true)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                warning(&path, "the admin token").is_some(),
                warned,
                "mode {mode:o}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            warning(&path, "the admin token").unwrap(),
            format!(
                "{} holds the admin token, and every user of this machine may read it (mode 0644): chmod o-rwx {}",
                path.display(),
                path.display()
            )
        );
        assert_eq!(warning(&dir.path().join("missing"), "a key"), None);
        let data = dir.path().join("data");
        for (mode, warned) in [(0o700, false), (0o750, false), (0o711, true), (0o755, true)] {
            std::fs::create_dir_all(&data).unwrap();
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                warning(&data, "records").is_some(),
                warned,
                "directory mode {mode:o}"
            );
        }
    }
}
