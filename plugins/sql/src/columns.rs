//! Column names derived from COBOL field names, so that people querying the
//! tables recognise them: field `CUST-ID` is column `cust_id`, the second
//! occurrence of `ITEM` column `item_2`. (Table names come from
//! `vsam_plugin_sdk::naming::sql_table`.)

use std::collections::HashSet;

/// Lower-case letters, digits and `_`; anything else becomes `_`, and a name
/// starting with a digit gets a leading `_`.
pub fn sql_name(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while name.contains("__") {
        name = name.replace("__", "_");
    }
    let name = name.trim_matches('_').to_string();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

/// Column names the plugin keeps for itself.
pub const RESERVED: [&str; 5] = [
    "vsam_key",
    "vsam_record",
    "vsam_residue",
    "vsam_raw",
    "vsam_length",
];

/// Unique column names for COBOL field names (with subscripts), in order:
/// a name used twice (the same field under two groups) gets `_2`, `_3`...
pub fn column_names<'a>(fields: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut used: HashSet<String> = RESERVED.iter().map(|s| s.to_string()).collect();
    fields
        .into_iter()
        .map(|field| {
            let base = sql_name(field);
            let mut name = base.clone();
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}_{n}");
                n += 1;
            }
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_plain_sql_identifiers() {
        assert_eq!(sql_name("1ST-FIELD"), "_1st_field");
        assert_eq!(
            column_names(["CUST-ID", "ITEM(2,1)", "CUST-ID", "VSAM-KEY"]),
            ["cust_id", "item_2_1", "cust_id_2", "vsam_key_2"]
        );
    }
}
