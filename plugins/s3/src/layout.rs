//! Object names: where each dataset and each control interval lives in the
//! bucket, chosen so that a listing in name order is a walk in key order
//! and `aws s3 ls` shows what is what.
//!
//! ```text
//! {prefix}{DATASET}/dataset.json                 the definition (JSON)
//! {prefix}{DATASET}/ci/{bound}                   one control interval
//! ```
//! `{bound}` is the interval's lower bound: for a KSDS the key in hex
//! (fixed width, so name order is key order) followed by `-` and the key's
//! letters and digits in the dataset's code page (`c3e4e2e3f0f0f0f1-CUST0001`);
//! for an ESDS the RBA, for an RRDS the relative record number, in 20
//! decimal digits.

use vsam_plugin_sdk::codepage::CodePage;
use vsam_plugin_sdk::keys::{key_number, number_key};
use vsam_plugin_sdk::{Dataset, Organization, naming};

/// Longest readable suffix of a KSDS interval name.
const MAX_READABLE: usize = 40;

/// The names of one dataset's objects.
#[derive(Clone, Debug)]
pub struct Names {
    /// `{prefix}{DATASET}/`.
    root: String,
    organization: Organization,
    codepage: Option<CodePage>,
}

impl Names {
    /// The names of `ds` under the backend's `prefix`.
    pub fn new(prefix: &str, ds: &Dataset) -> Self {
        Self {
            root: naming::object_root(prefix, &ds.name),
            organization: ds.organization,
            codepage: ds.codepage.parse().ok(),
        }
    }

    /// Every object of the dataset starts with this.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The definition object.
    pub fn definition(&self) -> String {
        format!("{}dataset.json", self.root)
    }

    /// Every control interval's name starts with this.
    pub fn intervals(&self) -> String {
        format!("{}ci/", self.root)
    }

    /// The name of the interval whose lower bound is `bound`.
    pub fn interval(&self, bound: &[u8]) -> String {
        let mut name = self.intervals();
        match self.organization {
            Organization::Ksds => {
                for byte in bound {
                    name.push_str(&format!("{byte:02x}"));
                }
                let readable = self.readable(bound);
                if !readable.is_empty() {
                    name.push('-');
                    name.push_str(&readable);
                }
            }
            Organization::Esds | Organization::Rrds => {
                name.push_str(&format!("{:020}", key_number(bound).unwrap_or(0)));
            }
        }
        name
    }

    /// The lower bound an interval name stands for (`None`: not one of
    /// ours, such as a file someone copied in).
    pub fn bound_of(&self, name: &str) -> Option<Vec<u8>> {
        let bound = name.strip_prefix(&self.root)?.strip_prefix("ci/")?;
        match self.organization {
            Organization::Ksds => {
                let hex = bound.split('-').next()?;
                if hex.len() % 2 != 0 {
                    return None;
                }
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                    .collect()
            }
            Organization::Esds | Organization::Rrds => (bound.len() == 20
                && bound.bytes().all(|b| b.is_ascii_digit()))
            .then(|| bound.parse().ok().map(number_key))?,
        }
    }

    /// The key's letters and digits, other runs shown as one `_`.
    fn readable(&self, key: &[u8]) -> String {
        let Some(codepage) = self.codepage else {
            return String::new();
        };
        let mut text = String::new();
        for c in codepage.decode_lossy(key).chars() {
            if c.is_ascii_alphanumeric() {
                text.push(c);
            } else if !text.is_empty() && !text.ends_with('_') {
                text.push('_');
            }
            if text.len() >= MAX_READABLE {
                break;
            }
        }
        text.trim_end_matches('_').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(organization: Organization, codepage: &str) -> Dataset {
        Dataset {
            name: "PROD.CUST".into(),
            organization,
            key_offset: 0,
            key_length: 8,
            max_record_length: 80,
            min_record_length: 1,
            codepage: codepage.into(),
        }
    }

    #[test]
    fn ksds_names_are_hex_then_readable() {
        let names = Names::new("vsam/", &dataset(Organization::Ksds, "cp037"));
        let key = CodePage::Cp037.encode("CUST 001").unwrap();
        let name = names.interval(&key);
        assert_eq!(name, "vsam/PROD.CUST/ci/c3e4e2e340f0f0f1-CUST_001");
        assert_eq!(names.bound_of(&name), Some(key));
        assert_eq!(
            names.interval(&[0; 8]),
            "vsam/PROD.CUST/ci/0000000000000000"
        );
        assert_eq!(names.bound_of("vsam/PROD.CUST/ci/zz"), None);
        assert_eq!(names.bound_of("vsam/OTHER/ci/00"), None);
    }

    #[test]
    fn name_order_is_key_order() {
        let names = Names::new("", &dataset(Organization::Ksds, "cp037"));
        // EBCDIC letters sort before digits: so must the names.
        let mut keys: Vec<Vec<u8>> = ["A0000001", "Z9999999", "00000001", "9", "a", " "]
            .iter()
            .map(|k| CodePage::Cp037.encode(&format!("{k:8}")).unwrap())
            .collect();
        keys.sort();
        let interval_names: Vec<String> = keys.iter().map(|k| names.interval(k)).collect();
        let mut sorted = interval_names.clone();
        sorted.sort();
        assert_eq!(interval_names, sorted);
    }

    #[test]
    fn esds_and_rrds_names_are_decimal() {
        let names = Names::new("", &dataset(Organization::Esds, "cp037"));
        assert_eq!(
            names.interval(&number_key(4096)),
            "PROD.CUST/ci/00000000000000004096"
        );
        assert_eq!(
            names.bound_of("PROD.CUST/ci/00000000000000004096"),
            Some(number_key(4096))
        );
        assert_eq!(names.bound_of("PROD.CUST/ci/4096"), None);
    }
}
