//! Datasets for a plugin's own tests: `Dataset::ksds("A.B", 8, 80)` rather
//! than every field spelled out. vsamrd builds the real ones from its
//! catalog; these carry the same defaults a DEFINE gets (code page cp037,
//! the key at offset 0, records of 1 byte or more).

use crate::{Dataset, Organization};

impl Dataset {
    /// A KSDS whose key is the first `key_length` bytes of records of up
    /// to `max_record_length` bytes.
    pub fn ksds(name: &str, key_length: u32, max_record_length: u32) -> Self {
        Self::of(name, Organization::Ksds, key_length, max_record_length)
    }

    /// An ESDS of records of up to `max_record_length` bytes. Its records
    /// are keyed by their RBA (8 bytes big-endian); its key length is 0, as
    /// vsamrd sends it.
    pub fn esds(name: &str, max_record_length: u32) -> Self {
        Self::of(name, Organization::Esds, 0, max_record_length)
    }

    /// An RRDS of slots of up to `max_record_length` bytes. Its records are
    /// keyed by their relative record number (8 bytes big-endian); its key
    /// length is 0, as vsamrd sends it.
    pub fn rrds(name: &str, max_record_length: u32) -> Self {
        Self::of(name, Organization::Rrds, 0, max_record_length)
    }

    /// The same dataset with its key at `offset` in the record.
    pub fn with_key_offset(mut self, offset: u32) -> Self {
        self.key_offset = offset;
        self
    }

    /// The same dataset in another code page (`ascii`, `cp037`, `cp1047`...).
    pub fn with_codepage(mut self, codepage: &str) -> Self {
        self.codepage = codepage.to_string();
        self
    }

    fn of(name: &str, organization: Organization, key_length: u32, max: u32) -> Self {
        Self {
            name: name.to_string(),
            organization,
            key_offset: 0,
            key_length,
            max_record_length: max,
            min_record_length: 1,
            codepage: "cp037".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_fill_what_a_define_would() {
        let ds = Dataset::ksds("A.B", 8, 80)
            .with_key_offset(2)
            .with_codepage("ascii");
        assert_eq!(
            (
                ds.name.as_str(),
                ds.organization,
                ds.key_offset,
                ds.key_length
            ),
            ("A.B", Organization::Ksds, 2, 8)
        );
        assert_eq!((ds.max_record_length, ds.min_record_length), (80, 1));
        assert_eq!(ds.codepage, "ascii");
        assert_eq!(Dataset::esds("L", 100).organization, Organization::Esds);
        assert_eq!(Dataset::rrds("R", 50).key_length, 0);
    }
}
