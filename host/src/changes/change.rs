//! One committed change to a dataset, as mirrors apply it and the change
//! stream writes it, and its binary form in the change log.
//!
//! A change carries everything needed to apply it anywhere: the dataset's
//! definition (so a mirror can run the call without a catalog of its own),
//! the operation, the key and the record after the change.

use vsam_plugin_sdk::{Dataset, Organization};

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// A new record under a key no record had (PUT, an ESDS append at the
    /// RBA it was given).
    Insert,
    /// A record replaced under its key (PUT for update).
    Replace,
    /// A record erased (ERASE).
    Erase,
    /// The dataset was defined, with its COBOL layout if it has one.
    Define(Option<String>),
    /// The dataset was deleted with every record.
    Delete,
}

impl Operation {
    /// The name the change stream gives it.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Replace => "replace",
            Operation::Erase => "erase",
            Operation::Define(_) => "define",
            Operation::Delete => "delete",
        }
    }
}

/// One change, in the order its unit was committed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its place in the server's commit order: dense, from 1, never reused.
    pub sequence: u64,
    /// When its group was prepared, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The dataset, as the plugin sees it.
    pub dataset: Dataset,
    /// What was done.
    pub operation: Operation,
    /// The record's key (an ESDS's RBA, an RRDS's slot number, as 8 bytes;
    /// empty for a define or delete).
    pub key: Vec<u8>,
    /// The record after the change (insert and replace).
    pub record: Option<Vec<u8>>,
}

/// Appends the binary form of `change` (without its sequence, which the
/// commit marker assigns) to `out`.
pub(super) fn encode(change: &Change, out: &mut Vec<u8>) {
    let (tag, layout) = match &change.operation {
        Operation::Insert => (1u8, None),
        Operation::Replace => (2, None),
        Operation::Erase => (3, None),
        Operation::Define(layout) => (4, Some(layout)),
        Operation::Delete => (5, None),
    };
    out.push(tag);
    out.extend_from_slice(&change.time_ms.to_le_bytes());
    let ds = &change.dataset;
    put_bytes(out, ds.name.as_bytes());
    out.push(match ds.organization {
        Organization::Ksds => 0,
        Organization::Esds => 1,
        Organization::Rrds => 2,
    });
    for number in [
        ds.key_offset,
        ds.key_length,
        ds.max_record_length,
        ds.min_record_length,
    ] {
        out.extend_from_slice(&number.to_le_bytes());
    }
    put_bytes(out, ds.codepage.as_bytes());
    put_bytes(out, &change.key);
    put_optional(out, change.record.as_deref());
    if let Some(layout) = layout {
        put_optional(out, layout.as_deref().map(str::as_bytes));
    }
}

/// Reads one change from `input` (sequence 0 until its commit is read).
pub(super) fn decode(input: &mut &[u8]) -> Option<Change> {
    let tag = take(input, 1)?[0];
    let time_ms = u64::from_le_bytes(take(input, 8)?.try_into().ok()?);
    let name = String::from_utf8(take_bytes(input)?.to_vec()).ok()?;
    let organization = match take(input, 1)?[0] {
        0 => Organization::Ksds,
        1 => Organization::Esds,
        2 => Organization::Rrds,
        _ => return None,
    };
    let mut numbers = [0u32; 4];
    for number in &mut numbers {
        *number = u32::from_le_bytes(take(input, 4)?.try_into().ok()?);
    }
    let codepage = String::from_utf8(take_bytes(input)?.to_vec()).ok()?;
    let key = take_bytes(input)?.to_vec();
    let record = take_optional(input)?.map(<[u8]>::to_vec);
    let operation = match tag {
        1 => Operation::Insert,
        2 => Operation::Replace,
        3 => Operation::Erase,
        4 => Operation::Define(match take_optional(input)? {
            Some(text) => Some(String::from_utf8(text.to_vec()).ok()?),
            None => None,
        }),
        5 => Operation::Delete,
        _ => return None,
    };
    Some(Change {
        sequence: 0,
        time_ms,
        dataset: Dataset {
            name,
            organization,
            key_offset: numbers[0],
            key_length: numbers[1],
            max_record_length: numbers[2],
            min_record_length: numbers[3],
            codepage,
        },
        operation,
        key,
        record,
    })
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_optional(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            out.push(1);
            put_bytes(out, bytes);
        }
        None => out.push(0),
    }
}

fn take<'a>(input: &mut &'a [u8], count: usize) -> Option<&'a [u8]> {
    if input.len() < count {
        return None;
    }
    let (head, tail) = input.split_at(count);
    *input = tail;
    Some(head)
}

fn take_bytes<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let length = u32::from_le_bytes(take(input, 4)?.try_into().ok()?) as usize;
    take(input, length)
}

fn take_optional<'a>(input: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    match take(input, 1)?[0] {
        0 => Some(None),
        1 => take_bytes(input).map(Some),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset() -> Dataset {
        Dataset {
            name: "PAY.MASTER".into(),
            organization: Organization::Ksds,
            key_offset: 0,
            key_length: 8,
            max_record_length: 80,
            min_record_length: 1,
            codepage: "cp037".into(),
        }
    }

    #[test]
    fn every_operation_reads_back_as_written() {
        let operations = [
            (Operation::Insert, Some(b"\x00\xffrecord".to_vec())),
            (Operation::Replace, Some(Vec::new())),
            (Operation::Erase, None),
            (Operation::Define(Some("01 R PIC X(8).".into())), None),
            (Operation::Define(None), None),
            (Operation::Delete, None),
        ];
        for (operation, record) in operations {
            let change = Change {
                sequence: 0,
                time_ms: 1_700_000_000_123,
                dataset: dataset(),
                operation,
                key: b"KEY00001".to_vec(),
                record,
            };
            let mut bytes = Vec::new();
            encode(&change, &mut bytes);
            let mut input = bytes.as_slice();
            assert_eq!(decode(&mut input), Some(change));
            assert!(input.is_empty(), "every byte read");
            // A truncated change is refused, never misread.
            for cut in 0..bytes.len() {
                let mut short = &bytes[..cut];
                assert_eq!(decode(&mut short), None, "cut at {cut}");
            }
        }
    }
}
