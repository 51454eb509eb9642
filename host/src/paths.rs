//! Where a path from the configuration points: absolute paths as written,
//! relative ones under the data dir, never out of it.

use std::path::{Component, Path, PathBuf};

/// Makes `path` and its missing parents readable by vsamrd's user alone
/// (0700): each holds records, a log of them or a secret. Directories
/// that exist are left as they are (the start names one others may read:
/// `Config::exposed_to_all`).
pub fn make_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// `path` resolved against `data_dir`, without `.` and `..` (so that two
/// spellings of one place compare equal). An absolute path is taken as it
/// is (an operator chose it); a relative one must stay inside the data dir:
/// `../../etc/x` would otherwise create and write directories anywhere the
/// server may write.
pub fn under_data_dir(data_dir: &Path, path: &Path) -> Result<PathBuf, String> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let mut inside = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => inside.push(part),
            Component::CurDir => {}
            Component::ParentDir if inside.pop() => {}
            _ => {
                return Err(format!(
                    "{} leads out of the data dir {} through `..`: give a path inside it, or an absolute path",
                    path.display(),
                    data_dir.display()
                ));
            }
        }
    }
    Ok(data_dir.join(inside))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_in_the_data_dir() {
        let data = Path::new("/srv/vsam");
        assert_eq!(
            under_data_dir(data, Path::new("csv")).unwrap(),
            Path::new("/srv/vsam/csv")
        );
        assert_eq!(
            under_data_dir(data, Path::new("a/./../b")).unwrap(),
            Path::new("/srv/vsam/b")
        );
        assert_eq!(
            under_data_dir(data, Path::new("/mnt/csv")).unwrap(),
            Path::new("/mnt/csv")
        );
        for escape in ["..", "../x", "../../../etc/vsamtest", "a/../../b", "./.."] {
            let error = under_data_dir(data, Path::new(escape)).unwrap_err();
            assert!(error.contains("leads out of the data dir"), "{error}");
        }
    }
}
