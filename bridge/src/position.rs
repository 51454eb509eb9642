//! Positioning the browse string: where a START puts the position, and how
//! the position is put back after the bridge's read-ahead ran past it.
//!
//! VSAM positions a string at the first record at or after a key (POINT
//! KGE) or at one key (KEQ, GEN for a partial key). COBOL's START also
//! asks for the last record at or before a key (<, <=, LAST); the bridge
//! composes that from VSAM requests: POINT KGE, a GET forward and one
//! backward, then POINT KEQ to the record found.

use vsam_client::{ClientError, Dataset, Record};
use vsam_protocol::{RplOptions, fdbk};

/// The string that keeps the position (READ NEXT, START); REWRITE and
/// DELETE use another, so that they do not lose it.
pub(crate) const BROWSE: u16 = 0;

/// A START condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// KEY =
    Equal,
    /// KEY >
    Greater,
    /// KEY >=
    GreaterOrEqual,
    /// KEY <
    Less,
    /// KEY <=
    LessOrEqual,
    /// FIRST
    First,
    /// LAST
    Last,
}

/// Where a START puts the position: at the first record at or after a key,
/// or at the last record at or before one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bound {
    /// The first record whose key starts with the prefix (KEY =).
    Equal(Search),
    /// The first record at or after the argument.
    AtOrAfter(Search),
    /// The last record at or before the argument (a full key or RRN).
    AtOrBefore(Search),
}

/// A full or partial key, or an RRN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Search {
    Key { bytes: Vec<u8>, full: usize },
    Number(u64),
}

impl Bound {
    /// The bound of a START on a key of `full` bytes with `argument` (the
    /// first `argument.len()` bytes compared); `None` if no key can match.
    pub(crate) fn for_key(condition: Condition, argument: Vec<u8>, full: usize) -> Option<Bound> {
        let key = |bytes: Vec<u8>| Search::Key { bytes, full };
        let padded = |mut bytes: Vec<u8>, fill: u8| {
            bytes.resize(full, fill);
            key(bytes)
        };
        Some(match condition {
            Condition::Equal => Bound::Equal(key(argument)),
            Condition::GreaterOrEqual => Bound::AtOrAfter(key(argument)),
            Condition::Greater => Bound::AtOrAfter(key(increment(argument)?)),
            Condition::First => Bound::AtOrAfter(padded(Vec::new(), 0)),
            Condition::LessOrEqual => Bound::AtOrBefore(padded(argument, 0xFF)),
            Condition::Less => Bound::AtOrBefore(key(decrement(pad(argument, full, 0))?)),
            Condition::Last => Bound::AtOrBefore(padded(Vec::new(), 0xFF)),
        })
    }

    /// The bound of a START on RELATIVE KEY `rrn`.
    pub(crate) fn for_number(condition: Condition, rrn: u64) -> Option<Bound> {
        Some(match condition {
            Condition::Equal => Bound::Equal(Search::Number(rrn)),
            Condition::GreaterOrEqual => Bound::AtOrAfter(Search::Number(rrn.max(1))),
            Condition::Greater => Bound::AtOrAfter(Search::Number(rrn + 1)),
            Condition::First => Bound::AtOrAfter(Search::Number(1)),
            Condition::LessOrEqual => {
                Bound::AtOrBefore(Search::Number(rrn.min(u64::from(u32::MAX))))
            }
            Condition::Less => Bound::AtOrBefore(Search::Number(
                rrn.checked_sub(1)
                    .filter(|n| *n > 0)?
                    .min(u64::from(u32::MAX)),
            )),
            Condition::Last => Bound::AtOrBefore(Search::Number(u64::from(u32::MAX))),
        })
    }

    /// Positions string 0: true if a record satisfies the bound.
    pub(crate) async fn position(self, dataset: Dataset) -> Result<bool, vsam_client::ClientError> {
        let point = |options: RplOptions, search: &Search| {
            let dataset = dataset.clone();
            let search = search.clone();
            async move {
                let (key, generic, address) = match &search {
                    Search::Key { bytes, full } => (bytes.clone(), bytes.len() < *full, 0),
                    Search::Number(n) => (Vec::new(), false, *n),
                };
                let (options, length) = if generic {
                    (options.generic(), key.len() as u16)
                } else {
                    (options, 0)
                };
                absent(dataset.point(BROWSE, options, &key, length, address).await)
            }
        };
        match self {
            Bound::Equal(search) => point(RplOptions::direct(), &search).await,
            Bound::AtOrAfter(search) => {
                point(RplOptions::direct().greater_or_equal(), &search).await
            }
            Bound::AtOrBefore(search) => {
                // The first record at or after the bound, then the one
                // before it unless it is the bound itself.
                let found = if point(RplOptions::direct().greater_or_equal(), &search).await? {
                    let next = dataset
                        .get(BROWSE, RplOptions::sequential(), &[], 0, 0, 1)
                        .await?;
                    let next = next.into_iter().next().unwrap_or_default();
                    let exact = match &search {
                        Search::Key { bytes, .. } => next.key == *bytes,
                        Search::Number(n) => next.address == *n,
                    };
                    if exact {
                        Some(next)
                    } else {
                        absent_record(
                            dataset
                                .get(BROWSE, RplOptions::sequential().backward(), &[], 0, 0, 1)
                                .await,
                        )?
                    }
                } else {
                    // Nothing at or after: the last record.
                    let last = RplOptions::direct().last_record();
                    absent_record(dataset.get(BROWSE, last, &[], 0, 0, 1).await)?
                };
                let Some(found) = found else {
                    return Ok(false);
                };
                let at = match &search {
                    Search::Key { .. } => Search::Key {
                        full: found.key.len(),
                        bytes: found.key,
                    },
                    Search::Number(_) => Search::Number(found.address),
                };
                point(RplOptions::direct(), &at).await
            }
        }
    }
}

impl Search {
    fn point_arguments(&self) -> (Vec<u8>, u64) {
        match self {
            Search::Key { bytes, .. } => (bytes.clone(), 0),
            Search::Number(n) => (Vec::new(), *n),
        }
    }

    fn matches(&self, record: &Record) -> bool {
        match self {
            Search::Key { bytes, .. } => record.key == *bytes,
            Search::Number(n) => record.address == *n,
        }
    }

    /// Puts string 0 just after the record under this key (or where it
    /// was, if it is gone); returns the record that follows if positioning
    /// had to read it.
    pub(crate) async fn after(self, dataset: Dataset) -> Result<Option<Record>, ClientError> {
        let (key, address) = self.point_arguments();
        let kge = RplOptions::direct().greater_or_equal();
        if !absent(dataset.point(BROWSE, kge, &key, 0, address).await)? {
            return Ok(None);
        }
        let next = dataset
            .get(BROWSE, RplOptions::sequential(), &[], 0, 0, 1)
            .await;
        Ok(absent_record(next)?.filter(|record| !self.matches(record)))
    }

    /// Puts string 0 so that a backward GET returns the record before this
    /// key.
    pub(crate) async fn before(self, dataset: Dataset) -> Result<(), ClientError> {
        let (key, address) = self.point_arguments();
        let kge = RplOptions::direct().greater_or_equal();
        if absent(dataset.point(BROWSE, kge, &key, 0, address).await)? {
            // Step back over the record at or after the key.
            let back = RplOptions::sequential().backward();
            absent_record(dataset.get(BROWSE, back, &[], 0, 0, 1).await)?;
        } else {
            absent(
                dataset
                    .point(BROWSE, RplOptions::direct().last_record(), &[], 0, 0)
                    .await,
            )?;
        }
        Ok(())
    }
}

/// `Ok(false)` for "no such record" and end of data.
fn absent(result: Result<(), ClientError>) -> Result<bool, ClientError> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if not_there(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

fn absent_record(
    result: Result<Vec<Record>, vsam_client::ClientError>,
) -> Result<Option<Record>, vsam_client::ClientError> {
    match result {
        Ok(records) => Ok(records.into_iter().next()),
        Err(e) if not_there(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn not_there(error: &vsam_client::ClientError) -> bool {
    error.vsam().is_some_and(|e| {
        e.status.r15 == 8
            && matches!(
                e.status.feedback(),
                fdbk::NOT_FOUND | fdbk::END_OF_DATA | fdbk::INVALID_RRN
            )
    })
}

fn pad(mut bytes: Vec<u8>, length: usize, fill: u8) -> Vec<u8> {
    bytes.resize(length, fill);
    bytes
}

/// The smallest byte string of the same length above `bytes` (`up`) or
/// the largest below it; None past the end (all X'FF' or all zero).
fn neighbour(mut bytes: Vec<u8>, up: bool) -> Option<Vec<u8>> {
    let (edge, wrap) = if up { (0xFF, 0x00) } else { (0x00, 0xFF) };
    for byte in bytes.iter_mut().rev() {
        if *byte == edge {
            *byte = wrap;
        } else {
            *byte = if up { *byte + 1 } else { *byte - 1 };
            return Some(bytes);
        }
    }
    None
}

fn increment(bytes: Vec<u8>) -> Option<Vec<u8>> {
    neighbour(bytes, true)
}

fn decrement(bytes: Vec<u8>) -> Option<Vec<u8>> {
    neighbour(bytes, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_keys_carry_and_stop_at_the_ends() {
        assert_eq!(increment(vec![1, 0xFF]), Some(vec![2, 0]));
        assert_eq!(increment(vec![0xFF, 0xFF]), None);
        assert_eq!(decrement(vec![1, 0]), Some(vec![0, 0xFF]));
        assert_eq!(decrement(vec![0, 0]), None);
    }

    #[test]
    fn start_conditions_become_bounds_on_full_keys() {
        let key = |bytes: &[u8]| Search::Key {
            bytes: bytes.to_vec(),
            full: 3,
        };
        assert_eq!(
            Bound::for_key(Condition::Equal, b"AB".to_vec(), 3),
            Some(Bound::Equal(key(b"AB")))
        );
        assert_eq!(
            Bound::for_key(Condition::Greater, b"AB".to_vec(), 3),
            Some(Bound::AtOrAfter(key(b"AC")))
        );
        assert_eq!(
            Bound::for_key(Condition::LessOrEqual, b"AB".to_vec(), 3),
            Some(Bound::AtOrBefore(key(b"AB\xFF")))
        );
        assert_eq!(
            Bound::for_key(Condition::Less, b"AB".to_vec(), 3),
            Some(Bound::AtOrBefore(key(b"AA\xFF")))
        );
        assert_eq!(Bound::for_key(Condition::Less, vec![0, 0], 3), None);
        assert_eq!(Bound::for_number(Condition::Less, 1), None);
        assert_eq!(
            Bound::for_number(Condition::Greater, 4),
            Some(Bound::AtOrAfter(Search::Number(5)))
        );
    }
}
