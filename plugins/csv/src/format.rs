//! How keys and records are written in the CSV columns.

use vsam_plugin_sdk::codepage::CodePage;
use vsam_plugin_sdk::keys::{key_number, number_key};
use vsam_plugin_sdk::text::{escape, unescape};
use vsam_plugin_sdk::{Dataset, Organization, StoreError};

/// The code page of a dataset's text (ASCII when the name is unknown).
pub fn codepage(ds: &Dataset) -> CodePage {
    ds.codepage.parse().unwrap_or(CodePage::Ascii)
}

/// The header row of a dataset's CSV.
pub fn header(ds: &Dataset) -> [&'static str; 2] {
    match ds.organization {
        Organization::Ksds => ["key", "record"],
        Organization::Esds => ["rba", "record"],
        Organization::Rrds => ["rrn", "record"],
    }
}

/// The key column: text for KSDS keys, a decimal number for RBAs and RRNs.
pub fn key_to_text(ds: &Dataset, key: &[u8]) -> String {
    match (ds.organization, key_number(key)) {
        (Organization::Ksds, _) | (_, None) => escape(key, codepage(ds)),
        (_, Some(number)) => number.to_string(),
    }
}

/// Parses the key column back into key bytes.
pub fn key_from_text(ds: &Dataset, text: &str, line: u64) -> Result<Vec<u8>, StoreError> {
    match ds.organization {
        Organization::Ksds => {
            unescape(text, codepage(ds)).map_err(|e| bad(ds, line, "key", &e.to_string()))
        }
        _ => text
            .trim()
            .parse::<u64>()
            .map(number_key)
            .map_err(|_| bad(ds, line, header(ds)[0], "not a whole number")),
    }
}

/// The record column.
pub fn record_to_text(ds: &Dataset, record: &[u8]) -> String {
    escape(record, codepage(ds))
}

/// Parses the record column back into record bytes.
pub fn record_from_text(ds: &Dataset, text: &str, line: u64) -> Result<Vec<u8>, StoreError> {
    unescape(text, codepage(ds)).map_err(|e| bad(ds, line, "record", &e.to_string()))
}

/// An error naming the file, line and column that could not be read.
pub fn bad(ds: &Dataset, line: u64, column: &str, problem: &str) -> StoreError {
    StoreError::Io(format!(
        "{}.csv line {line}, column {column}: {problem}",
        ds.name
    ))
}
