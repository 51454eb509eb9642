//! Keys of entry-sequenced and relative datasets.
//!
//! An ESDS record's key is its RBA and an RRDS record's key is its relative
//! record number, both as 8 bytes big-endian so that byte order is numeric
//! order. Plugins and the host use these helpers so they agree exactly.

/// Length in bytes of an RBA or RRN key.
pub const NUMBER_KEY_LENGTH: usize = 8;

/// Encodes an RBA or RRN as a store key.
pub fn number_key(number: u64) -> Vec<u8> {
    number.to_be_bytes().to_vec()
}

/// Decodes a store key made by [`number_key`]; `None` if it is not 8 bytes.
pub fn key_number(key: &[u8]) -> Option<u64> {
    <[u8; NUMBER_KEY_LENGTH]>::try_from(key)
        .ok()
        .map(u64::from_be_bytes)
}

/// The RBA of the record after one stored at `rba` with `length` bytes.
pub fn next_rba(rba: u64, length: usize) -> u64 {
    rba + length as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_keys_sort_numerically() {
        let mut keys: Vec<Vec<u8>> = [300u64, 2, 70_000, 1].map(number_key).to_vec();
        keys.sort();
        let numbers: Vec<u64> = keys.iter().map(|k| key_number(k).unwrap()).collect();
        assert_eq!(numbers, vec![1, 2, 300, 70_000]);
        assert_eq!(key_number(b"short"), None);
        assert_eq!(next_rba(100, 80), 180);
    }
}
