//! Units of work kept whole in a bucket. A sync that writes more than one
//! object first stores an undo record, the intent: for every object it is
//! about to write, the body it has now (or that it does not exist yet),
//! and a digest of the body the sync writes. The sync then writes the
//! objects and, last, deletes the intent: that deletion is the commit
//! point. A sync that fails half way puts back what it wrote and deletes
//! the intent; one cut short by a crash leaves the intent behind, and the
//! next instance to start on the bucket puts every object it names back
//! before serving anything. So after a crash a sync's writes are all
//! there or none are, which `units.whole` promises.
//!
//! Putting back never overwrites a later write: an object is put back
//! only while it holds what the interrupted sync wrote (its body's digest
//! is the intent's), with a write conditional on the version read. One
//! that holds anything else was not written by the sync (the sync stopped
//! before it, or the write was refused) or was written again since, by a
//! sync that was acknowledged; it is kept, and only the others are put
//! back. Nothing should write an object an intent names before the
//! intent is carried out, but a store that answered a read wrongly, or a
//! write whose answer was lost, must not turn a failed sync's undo into
//! the loss of acknowledged writes. (A later write that left an object
//! byte for byte as the interrupted sync wrote it cannot be told from
//! that sync's, and is put back with it.)
//!
//! The intent is one object, `{prefix}_vsam/unit-intent` (no dataset name
//! has a `_`), written only if absent: two syncs of several objects never
//! run at once on one bucket prefix. It names the start of vsamrd that
//! wrote it (`VSAMRD_BOOT`) and the backend (`VSAMRD_BACKEND`: two backends
//! of one server may share a prefix): an instance starting puts back only
//! the intents of earlier starts, whose writers are gone (one of this
//! start may be a sync under way in the instance it replaces, a swap's);
//! the writer (`VSAMRD_ROLE=writer`) puts back one of this start and its
//! own backend before its first call of any kind, since a backend's syncs
//! run one at a time, so the writer before it failed (its objects written,
//! the intent not deleted: the store went away, the put-back too), and
//! nothing may be read or written on top of them before. Any other
//! instance (a reader, a health check, or one whose host does not say)
//! runs beside the writer, and puts back such an intent only before its
//! own first sync. One of this start and another backend is that
//! backend's sync under way.
//!
//! Its layout: `VSAMUNDO2\n`, a u32 length and the boot, a u32 length and
//! the backend, a u32 count of objects, then per object a u32 name length,
//! the name, a kind byte (0: delete it, 1: put the body back), a u32 body
//! length and the body, and the 32-byte SHA-256 of the body the sync
//! writes; numbers big-endian. An intent of the first layout
//! (`VSAMUNDO1\n`, without the digests), written by an older plugin, is
//! carried out as that plugin did: every object put back, whatever it
//! holds.

use sha2::{Digest, Sha256};
use vsam_plugin_sdk::instance;
use vsam_plugin_sdk::objects::{self, Condition, ObjectError, Write};

/// The layout written: with the digest of what the sync writes.
const MAGIC: &[u8] = b"VSAMUNDO2\n";

/// The first layout, without digests (read, never written).
const MAGIC_V1: &[u8] = b"VSAMUNDO1\n";

/// The SHA-256 of a body, which says whether an object still holds what
/// a sync wrote.
pub type BodyDigest = [u8; 32];

/// The digest an intent keeps of `body`.
pub fn digest(body: &[u8]) -> BodyDigest {
    Sha256::digest(body).into()
}

/// How to put one object back as it was before a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// The object did not exist: delete it.
    Delete,
    /// The object held this body: write it again.
    Restore(Vec<u8>),
}

/// One object a sync writes: how to put it back, and what the sync
/// writes into it, so that only that is put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The object's name.
    pub name: String,
    /// How to put it back.
    pub undo: Undo,
    /// The digest of the body the sync writes (`None` in an intent of the
    /// first layout: put back whatever the object holds).
    pub written: Option<BodyDigest>,
}

/// The undo record of one sync: who wrote it, and the objects it writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intent {
    /// The start of vsamrd whose instance wrote it.
    pub boot: String,
    /// The backend whose instance wrote it.
    pub backend: String,
    /// Each object the sync writes, and how to put it back.
    pub objects: Vec<Step>,
}

/// What carrying out an intent did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Undone {
    /// Objects put back (or deleted) as they were before the sync.
    pub restored: usize,
    /// Objects kept because they hold neither what the sync wrote nor
    /// what they held before it: written again since.
    pub kept: Vec<String>,
}

/// Most objects of an intent read and put back at once.
const CHUNK_OBJECTS: usize = 64;

/// Most bytes of bodies to put back in one chunk (at least one object):
/// what a chunk reads is about as much again, and both must fit the
/// plugin's memory beside the intent.
const CHUNK_BYTES: usize = 8 << 20;

/// The steps in chunks of at most [`CHUNK_OBJECTS`] objects and about
/// [`CHUNK_BYTES`] of bodies to put back, in order.
fn chunks(steps: &[Step]) -> Vec<&[Step]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, step) in steps.iter().enumerate() {
        let size = match &step.undo {
            Undo::Restore(body) => body.len(),
            Undo::Delete => 0,
        };
        if i > start && (i - start == CHUNK_OBJECTS || bytes + size > CHUNK_BYTES) {
            chunks.push(&steps[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < steps.len() {
        chunks.push(&steps[start..]);
    }
    chunks
}

/// Puts back the objects of one chunk (see [`Intent::undo`]): the bodies
/// first, then the deletions of objects the sync created, so that an
/// interval a split emptied holds its records again before the one the
/// split made goes.
fn undo_chunk(steps: &[Step], undone: &mut Undone) -> Result<(), ObjectError> {
    let (checked, unchecked): (Vec<&Step>, Vec<&Step>) =
        steps.iter().partition(|step| step.written.is_some());
    // The first layout: as its plugin did, whatever the objects hold.
    for step in unchecked {
        match &step.undo {
            Undo::Delete => objects::delete(&step.name)?,
            Undo::Restore(body) => drop(objects::put(&step.name, body)?),
        }
        undone.restored += 1;
    }
    if checked.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = checked.iter().map(|step| step.name.clone()).collect();
    let found = objects::get_many(&names)?;
    let mut restores = Vec::new();
    let mut deletions = Vec::new();
    for (step, now) in checked.into_iter().zip(found) {
        // Absent: the sync did not create it, or it was deleted since
        // (with its dataset): nothing to put back either way.
        let Some(now) = now else {
            continue;
        };
        if Some(digest(&now.body)) != step.written {
            if !matches!(&step.undo, Undo::Restore(before) if *before == now.body) {
                undone.kept.push(step.name.clone());
            }
            continue;
        }
        match &step.undo {
            Undo::Delete => deletions.push(&step.name),
            Undo::Restore(before) => restores.push(Write {
                name: step.name.clone(),
                body: before.clone(),
                condition: Condition::IfMatch(now.etag),
            }),
        }
    }
    for (write, answer) in restores.iter().zip(objects::put_many(&restores)) {
        match answer {
            Ok(_) => undone.restored += 1,
            // Written again between the read and the write.
            Err(ObjectError::PreconditionFailed) => undone.kept.push(write.name.clone()),
            Err(other) => return Err(other),
        }
    }
    for name in deletions {
        objects::delete(name)?;
        undone.restored += 1;
    }
    Ok(())
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
        for step in &self.objects {
            out.extend((step.name.len() as u32).to_be_bytes());
            out.extend(step.name.as_bytes());
            match &step.undo {
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
            // Every step this plugin plans has its digest.
            out.extend(step.written.unwrap_or_default());
        }
        out
    }

    /// Reads a stored intent; `Err` says what is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let (mut rest, digests) = match (bytes.strip_prefix(MAGIC), bytes.strip_prefix(MAGIC_V1)) {
            (Some(rest), _) => (rest, true),
            (None, Some(rest)) => (rest, false),
            (None, None) => return Err("it does not start with VSAMUNDO2 or VSAMUNDO1".into()),
        };
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
            let written = match digests {
                false => None,
                true => {
                    let (written, after) = rest
                        .split_first_chunk::<32>()
                        .ok_or("it ends inside a digest")?;
                    rest = after;
                    Some(*written)
                }
            };
            objects.push(Step {
                name,
                undo,
                written,
            });
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

    /// Puts back every object that holds what the sync wrote, as it was
    /// before the sync; keeps the others (see the module's comment).
    ///
    /// The objects are read, and put back, a chunk at a time with one
    /// `get-many` and one `put-many` each, which the host sends
    /// concurrently, as the sync wrote them: one at a time, the put-back
    /// of a unit over a thousand intervals took a round trip per read and
    /// per write, longer than the call limit, which stopped it half way
    /// in every instance that tried again.
    pub fn undo(&self) -> Result<Undone, ObjectError> {
        let mut undone = Undone::default();
        for chunk in chunks(&self.objects) {
            undo_chunk(chunk, &mut undone)?;
        }
        Ok(undone)
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
/// intent's objects are restored (those written again since are kept, and
/// named in the log) and the intent deleted. Says what was done (nothing:
/// there was no such intent).
pub fn recover(prefix: &str, whose: Whose) -> Result<Undone, String> {
    let name = name(prefix);
    let stored = objects::get(&name).map_err(|e| format!("reading {name}: {e:?}"))?;
    let Some(stored) = stored else {
        return Ok(Undone::default());
    };
    let intent = Intent::decode(&stored.body)
        .map_err(|why| format!("{name} is not an undo record ({why}); remove it by hand"))?;
    let current = instance::boot();
    let this_start = !current.is_empty() && intent.boot == current;
    let wanted = match whose {
        Whose::EarlierStart => !this_start,
        Whose::ThisStart => this_start && intent.backend == instance::backend(),
    };
    if !wanted {
        return Ok(Undone::default());
    }
    let undone = intent
        .undo()
        .map_err(|e| format!("putting back the objects {name} names: {e:?}"))?;
    objects::delete(&name).map_err(|e| format!("deleting {name}: {e:?}"))?;
    if !undone.kept.is_empty() {
        vsam_plugin_sdk::log::warn(&format!(
            "{name}: {} object(s) were written again after the sync it records failed, and are kept as they are rather than put back: {}",
            undone.kept.len(),
            undone.kept.join(", ")
        ));
    }
    Ok(undone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, undo: Undo, written: &[u8]) -> Step {
        Step {
            name: name.into(),
            undo,
            written: Some(digest(written)),
        }
    }

    #[test]
    fn an_undo_goes_in_chunks_of_bounded_objects_and_bytes_in_order() {
        let small: Vec<Step> = (0..130)
            .map(|i| step(&format!("ci/{i:04}"), Undo::Restore(vec![0; 100]), b"new"))
            .collect();
        let sizes: Vec<usize> = chunks(&small).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [64, 64, 2]);
        let flat: Vec<&Step> = chunks(&small).into_iter().flatten().collect();
        assert!(flat.iter().zip(&small).all(|(a, b)| std::ptr::eq(*a, b)));

        let mb = |n: usize| Undo::Restore(vec![0; n << 20]);
        let large = vec![
            step("a", mb(3), b""),
            step("b", mb(3), b""),
            step("c", mb(5), b""),
            step("d", mb(20), b""),
            step("e", Undo::Delete, b""),
        ];
        let names: Vec<Vec<&str>> = chunks(&large)
            .iter()
            .map(|c| c.iter().map(|s| s.name.as_str()).collect())
            .collect();
        // 8 MB at most, but one object larger goes alone.
        assert_eq!(names, [vec!["a", "b"], vec!["c"], vec!["d"], vec!["e"]]);
        assert!(chunks(&[]).is_empty());
    }

    #[test]
    fn an_intent_reads_back_as_written() {
        let intent = Intent {
            boot: "1234-abc".into(),
            backend: "objects".into(),
            objects: vec![
                step("P.DS/ci/0001", Undo::Restore(b"old body".to_vec()), b"new"),
                step("P.DS/ci/0002", Undo::Delete, b"created"),
                step("P.DS/ci/0003", Undo::Restore(Vec::new()), b""),
            ],
        };
        let bytes = intent.encode();
        assert_eq!(Intent::decode(&bytes), Ok(intent));
        let empty = Intent::default().encode();
        assert_eq!(Intent::decode(&empty), Ok(Intent::default()));
    }

    /// An intent an older plugin left (no digests) is still read, its
    /// steps without a digest: carried out whatever the objects hold.
    #[test]
    fn an_intent_of_the_first_layout_reads_without_digests() {
        let mut bytes = MAGIC_V1.to_vec();
        for text in [&b"boot"[..], b"b"] {
            bytes.extend((text.len() as u32).to_be_bytes());
            bytes.extend(text);
        }
        bytes.extend(1u32.to_be_bytes());
        bytes.extend(4u32.to_be_bytes());
        bytes.extend(b"P.DS");
        bytes.push(1);
        bytes.extend(3u32.to_be_bytes());
        bytes.extend(b"old");
        let intent = Intent::decode(&bytes).unwrap();
        assert_eq!(
            intent.objects,
            vec![Step {
                name: "P.DS".into(),
                undo: Undo::Restore(b"old".to_vec()),
                written: None,
            }]
        );
        // The same with a digest after the body is of the second layout.
        bytes.extend([0; 32]);
        assert!(
            Intent::decode(&bytes).is_err(),
            "bytes after the last object"
        );
    }

    #[test]
    fn a_damaged_intent_is_refused_not_half_read() {
        let intent = Intent {
            boot: "b".into(),
            backend: "o".into(),
            objects: vec![step("P.DS/ci/0001", Undo::Restore(b"old".to_vec()), b"new")],
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
