//! Self-checking records: each carries its key, the version a client wrote
//! and a checksum over everything before it, so a record read back is
//! either exactly one a client wrote or detectably corrupted.
//!
//! Layout (`length` bytes, at least [`MIN_LENGTH`]):
//! `KKKKKKKK|vNNNNNNNN|fill...|CCCCCCCC`, the key at offset 0, the
//! version in decimal, a fill derived from key and version, and the
//! FNV-1a checksum of the preceding bytes in hex.

/// Key length of every dataset the program defines.
pub const KEY_LENGTH: usize = 8;
/// The shortest record the layout fits in.
pub const MIN_LENGTH: usize = KEY_LENGTH + 10 + 1 + 9;

/// The key of writer `writer`'s `n`th key: two digits of writer, six of
/// number, so writers never share a key.
pub fn key(writer: usize, n: u64) -> Vec<u8> {
    format!("{:02}{:06}", writer % 100, n % 1_000_000).into_bytes()
}

/// The writer a key belongs to, if it is one of [`key`]'s.
pub fn writer_of(key: &[u8]) -> Option<usize> {
    std::str::from_utf8(key.get(..2)?).ok()?.parse().ok()
}

fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Version `version` of the record with key `key`, `length` bytes long.
pub fn record(key: &[u8], version: u32, length: usize) -> Vec<u8> {
    assert!(key.len() == KEY_LENGTH && length >= MIN_LENGTH);
    let mut record = Vec::with_capacity(length);
    record.extend_from_slice(key);
    record.extend_from_slice(format!("|v{version:08}|").as_bytes());
    let seed = checksum(&record);
    let fill = length - 9 - record.len();
    record.extend((0..fill).map(|i| b'A' + ((seed as usize + i * 7) % 26) as u8));
    let sum = checksum(&record);
    record.extend_from_slice(format!("|{sum:08x}").as_bytes());
    record
}

/// The version a record read back holds, or `None` if it is not exactly
/// a record [`record`] made for `key` (a torn, mixed or foreign record).
pub fn version_of(key: &[u8], record: &[u8]) -> Option<u32> {
    if record.len() < MIN_LENGTH || record.get(..KEY_LENGTH)? != key {
        return None;
    }
    let version: u32 = std::str::from_utf8(record.get(KEY_LENGTH + 2..KEY_LENGTH + 10)?)
        .ok()?
        .parse()
        .ok()?;
    (record == self::record(key, version, record.len()).as_slice()).then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_its_version() {
        let key = key(3, 42);
        assert_eq!(key, b"03000042");
        let record = record(&key, 7, 64);
        assert_eq!(record.len(), 64);
        assert_eq!(version_of(&key, &record), Some(7));
        assert_eq!(writer_of(&key), Some(3));
    }

    #[test]
    fn any_damage_is_detected() {
        let key = key(1, 1);
        let record = record(&key, 9, 100);
        for i in 0..record.len() {
            let mut damaged = record.clone();
            damaged[i] ^= 0x20;
            assert_eq!(version_of(&key, &damaged), None, "byte {i}");
        }
        assert_eq!(version_of(&key, &record[..99]), None, "truncated");
        assert_eq!(version_of(b"01000002", &record), None, "another key's");
    }
}
