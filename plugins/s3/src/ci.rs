//! A control interval: the records of one key range, stored as one object.
//!
//! The object is a RECFM=VB sequential file: each record is preceded by a
//! record descriptor word (2 bytes big-endian length including the 4-byte
//! RDW, then 2 zero bytes), records in key order. Where the key is not in
//! the record it follows from the position:
//! - KSDS: the key is the record's key field;
//! - ESDS: the first record's RBA is the interval's lower bound, each next
//!   one the previous RBA plus the previous length;
//! - RRDS: record `i` is slot `bound + i`; an empty slot is a zero-length
//!   record (an RDW of `00 04 00 00`).

use std::collections::BTreeMap;
use vsam_plugin_sdk::keys::{key_number, number_key};
use vsam_plugin_sdk::{Dataset, Organization, StoreError, StoreResult};

/// Longest record a VB record descriptor word can describe.
pub const MAX_RECORD: usize = u16::MAX as usize - 4;

/// The records of one control interval, by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl Records {
    /// Bytes the interval takes as an object.
    pub fn encoded_len(&self, ds: &Dataset, bound: &[u8]) -> usize {
        match ds.organization {
            Organization::Rrds => {
                let last = self.0.keys().next_back().and_then(|k| key_number(k));
                let first = key_number(bound).unwrap_or(1);
                let slots = last.map_or(0, |last| (last - first + 1) as usize);
                slots * 4 + self.0.values().map(Vec::len).sum::<usize>()
            }
            _ => self.0.values().map(|v| v.len() + 4).sum(),
        }
    }

    /// The object's bytes.
    pub fn encode(&self, ds: &Dataset, bound: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len(ds, bound));
        let mut put = |record: &[u8]| {
            out.extend_from_slice(&((record.len() + 4) as u16).to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(record);
        };
        match ds.organization {
            Organization::Rrds => {
                let mut next = key_number(bound).unwrap_or(1);
                for (key, value) in &self.0 {
                    let rrn = key_number(key).unwrap_or(next);
                    while next < rrn {
                        put(&[]);
                        next += 1;
                    }
                    put(value);
                    next = rrn + 1;
                }
            }
            _ => self.0.values().for_each(|v| put(v)),
        }
        out
    }

    /// The record under `key` in an object's bytes, found without reading
    /// the interval into memory (a GET by key needs one record of many).
    pub fn find(
        ds: &Dataset,
        bound: &[u8],
        bytes: &[u8],
        key: &[u8],
        name: &str,
    ) -> StoreResult<Option<Vec<u8>>> {
        let mut found = None;
        walk(ds, bound, bytes, name, |record_key, record| {
            if record_key == key {
                found = Some(record.to_vec());
                return false;
            }
            true
        })?;
        Ok(found)
    }

    /// Reads an object's bytes; `name` is for the message of a damaged one.
    pub fn decode(ds: &Dataset, bound: &[u8], bytes: &[u8], name: &str) -> StoreResult<Self> {
        let mut records = BTreeMap::new();
        walk(ds, bound, bytes, name, |key, record| {
            records.insert(key.into_owned(), record.to_vec());
            true
        })?;
        Ok(Self(records))
    }
}

/// Calls `visit(key, record)` for each record of an interval's bytes in
/// order, until it returns false.
fn walk(
    ds: &Dataset,
    bound: &[u8],
    bytes: &[u8],
    name: &str,
    mut visit: impl FnMut(std::borrow::Cow<'_, [u8]>, &[u8]) -> bool,
) -> StoreResult<()> {
    use std::borrow::Cow;
    let damaged = |at: usize, why: &str| {
        StoreError::Io(format!(
            "{}: object {name} is not a control interval (byte {at}: {why})",
            ds.name
        ))
    };
    let mut at = 0;
    let mut number = key_number(bound).unwrap_or(0);
    while at < bytes.len() {
        let Some(rdw) = bytes.get(at..at + 4) else {
            return Err(damaged(at, "a record descriptor word is cut off"));
        };
        let length = u16::from_be_bytes([rdw[0], rdw[1]]) as usize;
        if length < 4 || rdw[2..] != [0, 0] {
            return Err(damaged(at, "a record descriptor word is invalid"));
        }
        let Some(record) = bytes.get(at + 4..at + length) else {
            return Err(damaged(at, "a record is cut off"));
        };
        let go_on = match ds.organization {
            Organization::Ksds => {
                let offset = ds.key_offset as usize;
                let Some(key) = record.get(offset..offset + ds.key_length as usize) else {
                    return Err(damaged(at, "a record is shorter than its key"));
                };
                visit(Cow::Borrowed(key), record)
            }
            Organization::Esds => {
                let key = number_key(number);
                number += record.len() as u64;
                visit(Cow::Owned(key), record)
            }
            Organization::Rrds => {
                let key = number_key(number);
                number += 1;
                record.is_empty() || visit(Cow::Owned(key), record)
            }
        };
        if !go_on {
            return Ok(());
        }
        at += length;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(organization: Organization) -> Dataset {
        Dataset {
            name: "T.CI".into(),
            organization,
            key_offset: 1,
            key_length: 2,
            max_record_length: 10,
            min_record_length: 1,
            codepage: "cp037".into(),
        }
    }

    fn records(pairs: &[(Vec<u8>, &[u8])]) -> Records {
        Records(pairs.iter().map(|(k, v)| (k.clone(), v.to_vec())).collect())
    }

    #[test]
    fn ksds_intervals_are_variable_blocked_records() {
        let ds = dataset(Organization::Ksds);
        let ci = records(&[(b"AB".to_vec(), b"xAB1"), (b"CD".to_vec(), b"yCD")]);
        let bytes = ci.encode(&ds, b"\0\0");
        assert_eq!(bytes, b"\x00\x08\x00\x00xAB1\x00\x07\x00\x00yCD");
        assert_eq!(bytes.len(), ci.encoded_len(&ds, b"\0\0"));
        assert_eq!(Records::decode(&ds, b"\0\0", &bytes, "x").unwrap(), ci);
        let find = |key: &[u8]| Records::find(&ds, b"\0\0", &bytes, key, "x").unwrap();
        assert_eq!(find(b"CD"), Some(b"yCD".to_vec()));
        assert_eq!(find(b"AC"), None);
    }

    #[test]
    fn esds_keys_are_rbas_from_the_bound() {
        let ds = dataset(Organization::Esds);
        let ci = records(&[(number_key(100), b"abc"), (number_key(103), b"de")]);
        let bytes = ci.encode(&ds, &number_key(100));
        assert_eq!(bytes, b"\x00\x07\x00\x00abc\x00\x06\x00\x00de");
        assert_eq!(
            Records::decode(&ds, &number_key(100), &bytes, "x").unwrap(),
            ci
        );
    }

    #[test]
    fn rrds_empty_slots_are_zero_length_records() {
        let ds = dataset(Organization::Rrds);
        let ci = records(&[(number_key(11), b"k"), (number_key(13), b"m")]);
        let bytes = ci.encode(&ds, &number_key(10));
        assert_eq!(
            bytes,
            b"\x00\x04\x00\x00\x00\x05\x00\x00k\x00\x04\x00\x00\x00\x05\x00\x00m"
        );
        assert_eq!(bytes.len(), ci.encoded_len(&ds, &number_key(10)));
        assert_eq!(
            Records::decode(&ds, &number_key(10), &bytes, "x").unwrap(),
            ci
        );
    }

    #[test]
    fn damaged_objects_are_reported_not_misread() {
        let ds = dataset(Organization::Ksds);
        for bad in [
            &b"\x00\x08\x00\x00xAB"[..],
            b"\x00\x02\x00\x00",
            b"\x00\x05\x01\x00xAB",
            b"\x00",
        ] {
            let error = Records::decode(&ds, b"\0\0", bad, "T.CI/ci/0000").unwrap_err();
            assert!(
                matches!(&error, StoreError::Io(m) if m.contains("T.CI/ci/0000")),
                "{error:?}"
            );
        }
    }
}
