//! Units of work kept whole in a bucket. A sync that writes more than one
//! object first stores an undo record, the intent: for every object it is
//! about to write, the body it has now (or that it does not exist yet).
//! The sync then writes the objects and, last, deletes the intent: that
//! deletion is the commit point. A sync that fails half way puts back what
//! it wrote and deletes the intent; one cut short by a crash leaves the
//! intent behind, and the next instance to start on the bucket puts every
//! object it names back before serving anything. So after a crash a sync's
//! writes are all there or none are, which `units.whole` promises.
//!
//! The intent is one object, `{prefix}_vsam/unit-intent` (no dataset name
//! has a `_`), written only if absent: two syncs of several objects never
//! run at once on one bucket prefix. It names the start of vsamrd that
//! wrote it (`VSAMRD_BOOT`) and the backend (`VSAMRD_BACKEND`: two backends
//! of one server may share a prefix): an instance starting puts back only
//! the intents of earlier starts, whose writers are gone (one of this
//! start may be a sync under way in the instance it replaces, a swap's);
//! before its first sync, an instance puts back one of this start and its
//! own backend, since a backend's syncs run one at a time, so its writer
//! failed (its objects written, the intent not deleted: the store went
//! away), and nothing may be written on top of them before. One of this
//! start and another backend is that backend's sync under way. Its layout: `VSAMUNDO1\n`,
//! a u32 length and the boot, a u32 length and the backend, a u32 count
//! of objects, then per object a
//! u32 name length, the name, a kind byte (0: delete it, 1: put the body
//! back), a u32 body length and the body; numbers big-endian.

use vsam_plugin_sdk::objects::{self, ObjectError};

const MAGIC: &[u8] = b"VSAMUNDO1\n";

/// How to put one object back as it was before a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// The object did not exist: delete it.
    Delete,
    /// The object held this body: write it again.
    Restore(Vec<u8>),
}

/// The undo record of one sync: who wrote it, object names and how to
/// put each back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intent {
    /// The start of vsamrd whose instance wrote it.
    pub boot: String,
    /// The backend whose instance wrote it.
    pub backend: String,
    /// Each object the sync writes or deletes, and how to put it back.
    pub objects: Vec<(String, Undo)>,
}

/// This start of vsamrd, as the host tells every instance (empty where it
/// does not: then every intent found is taken for an earlier start's).
pub fn boot() -> String {
    std::env::var("VSAMRD_BOOT").unwrap_or_default()
}

/// The backend this instance serves, as the host tells it (empty where
/// it does not).
pub fn backend() -> String {
    std::env::var("VSAMRD_BACKEND").unwrap_or_default()
}

/// Which intents `recover` puts back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// One written by an earlier start of vsamrd (an instance starting).
    EarlierStart,
    /// One written by this start for this backend (its writer failed,
    /// since a backend's syncs run one at a time).
    ThisStart,
}

/// The intent's object name under the backend's prefix.
pub fn name(prefix: &str) -> String {
    format!("{prefix}_vsam/unit-intent")
}

impl Intent {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend((self.boot.len() as u32).to_be_bytes());
        out.extend(self.boot.as_bytes());
        out.extend((self.backend.len() as u32).to_be_bytes());
        out.extend(self.backend.as_bytes());
        out.extend((self.objects.len() as u32).to_be_bytes());
        for (name, undo) in &self.objects {
            out.extend((name.len() as u32).to_be_bytes());
            out.extend(name.as_bytes());
            match undo {
                Undo::Delete => {
                    out.push(0);
                    out.extend(0u32.to_be_bytes());
                }
                Undo::Restore(body) => {
                    out.push(1);
                    out.extend((body.len() as u32).to_be_bytes());
                    out.extend(body);
                }
            }
        }
        out
    }

    /// Reads a stored intent; `Err` says what is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut rest = bytes
            .strip_prefix(MAGIC)
            .ok_or("it does not start with VSAMUNDO1")?;
        let boot =
            String::from_utf8(take(&mut rest)?.to_vec()).map_err(|_| "the boot is not UTF-8")?;
        let backend =
            String::from_utf8(take(&mut rest)?.to_vec()).map_err(|_| "the backend is not UTF-8")?;
        let (count, after) = rest
            .split_first_chunk::<4>()
            .ok_or("it ends before the count of objects")?;
        rest = after;
        let count = u32::from_be_bytes(*count);
        let mut objects = Vec::new();
        for _ in 0..count {
            let name = take(&mut rest)?;
            let name = String::from_utf8(name.to_vec()).map_err(|_| "a name is not UTF-8")?;
            let (&kind, after) = rest.split_first().ok_or("it ends after a name")?;
            rest = after;
            let body = take(&mut rest)?;
            let undo = match kind {
                0 => Undo::Delete,
                1 => Undo::Restore(body.to_vec()),
                other => return Err(format!("unknown kind {other} for {name}")),
            };
            objects.push((name, undo));
        }
        if !rest.is_empty() {
            return Err("bytes follow the last object".into());
        }
        Ok(Self {
            boot,
            backend,
            objects,
        })
    }

    /// Puts every object back as the intent says, whatever it holds now.
    pub fn undo(&self) -> Result<(), ObjectError> {
        for (name, undo) in &self.objects {
            match undo {
                Undo::Delete => objects::delete(name)?,
                Undo::Restore(body) => drop(objects::put(name, body)?),
            }
        }
        Ok(())
    }
}

/// A u32 length and that many bytes from the front of `rest`.
fn take<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let (length, after) = rest
        .split_first_chunk::<4>()
        .ok_or("it ends inside a length")?;
    let length = u32::from_be_bytes(*length) as usize;
    if after.len() < length {
        return Err("it ends inside a name or body".into());
    }
    let (taken, after) = after.split_at(length);
    *rest = after;
    Ok(taken)
}

/// Puts back what an interrupted sync left (`whose` says which): the
/// intent's objects are restored and the intent deleted. Returns how many
/// objects were put back (0: there was no such intent).
pub fn recover(prefix: &str, whose: Whose) -> Result<usize, String> {
    let name = name(prefix);
    let stored = objects::get(&name).map_err(|e| format!("reading {name}: {e:?}"))?;
    let Some(stored) = stored else {
        return Ok(0);
    };
    let intent = Intent::decode(&stored.body)
        .map_err(|why| format!("{name} is not an undo record ({why}); remove it by hand"))?;
    let current = boot();
    let this_start = !current.is_empty() && intent.boot == current;
    let wanted = match whose {
        Whose::EarlierStart => !this_start,
        Whose::ThisStart => this_start && intent.backend == backend(),
    };
    if !wanted {
        return Ok(0);
    }
    intent
        .undo()
        .map_err(|e| format!("putting back the objects {name} names: {e:?}"))?;
    objects::delete(&name).map_err(|e| format!("deleting {name}: {e:?}"))?;
    Ok(intent.objects.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intent_reads_back_as_written() {
        let intent = Intent {
            boot: "1234-abc".into(),
            backend: "objects".into(),
            objects: vec![
                ("P.DS/ci/0001".into(), Undo::Restore(b"old body".to_vec())),
                ("P.DS/ci/0002".into(), Undo::Delete),
                ("P.DS/ci/0003".into(), Undo::Restore(Vec::new())),
            ],
        };
        let bytes = intent.encode();
        assert_eq!(Intent::decode(&bytes), Ok(intent));
        let empty = Intent::default().encode();
        assert_eq!(Intent::decode(&empty), Ok(Intent::default()));
    }

    #[test]
    fn a_damaged_intent_is_refused_not_half_read() {
        let intent = Intent {
            boot: "b".into(),
            backend: "o".into(),
            objects: vec![("P.DS/ci/0001".into(), Undo::Restore(b"old".to_vec()))],
        };
        let bytes = intent.encode();
        for cut in MAGIC.len() + 1..bytes.len() {
            assert!(Intent::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Intent::decode(b"something else").is_err());
        let mut kind = bytes.clone();
        kind[MAGIC.len() + 4 + 1 + 4 + 1 + 4 + 4 + 12] = 7;
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            Intent::decode(&longer).is_err(),
            "bytes after the last object"
        );
        assert!(Intent::decode(&kind).unwrap_err().contains("unknown kind"));
    }
}
