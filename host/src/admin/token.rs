//! The admin token: a random secret in a file only its owner can read.
//! Whoever can read the file may administer the server, like a database's
//! socket permissions or a password file.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Reads the token from `path`, creating the file with a fresh random
/// token (mode 0600) if it does not exist.
pub fn load_or_create(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_string();
            if token.len() < 16 {
                anyhow::bail!(
                    "admin token file {} holds fewer than 16 characters: put a longer secret in it, or delete it and vsamrd writes a random one",
                    path.display()
                );
            }
            Ok(token)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(error) => {
            Err(error).with_context(|| format!("cannot read admin token file {}", path.display()))
        }
    }
}

fn create(path: &Path) -> Result<String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| anyhow::anyhow!("no random numbers for the admin token: {e}"))?;
    let token = hex::encode(secret);
    if let Some(parent) = path.parent() {
        crate::paths::make_private_dir(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create admin token file {}", path.display()))?;
    writeln!(file, "{token}")?;
    file.sync_all()?;
    Ok(token)
}

/// Compares a presented token with the real one in time that does not
/// depend on where they differ.
pub fn matches(presented: &str, token: &str) -> bool {
    let (a, b) = (presented.as_bytes(), token.as_bytes());
    let mut differ = a.len() ^ b.len();
    for (i, byte) in b.iter().enumerate() {
        differ |= usize::from(a.get(i).copied().unwrap_or(0) ^ byte);
    }
    differ == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_created_once_private_and_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/admin.token");
        let token = load_or_create(&path).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(load_or_create(&path).unwrap(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = load_or_create(&dir.path().join("other.token")).unwrap();
        assert_ne!(other, token, "each server its own secret");
        std::fs::write(&path, "short\n").unwrap();
        assert!(
            load_or_create(&path)
                .unwrap_err()
                .to_string()
                .contains("fewer than 16")
        );
    }

    #[test]
    fn tokens_match_only_exactly() {
        assert!(matches("abcdef", "abcdef"));
        assert!(!matches("abcdeg", "abcdef"));
        assert!(!matches("abcde", "abcdef"));
        assert!(!matches("abcdefg", "abcdef"));
        assert!(!matches("", "abcdef"));
    }
}
