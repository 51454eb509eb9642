//! Where a store keeps a dataset: storage names derived from dataset names.
//!
//! Every backend keeps a dataset under a name made from the dataset's: a SQL
//! table, a file, an object prefix. Two rules keep that safe, and a plugin
//! that takes its names from here follows both:
//! - **Distinct datasets never share storage.** Each function here is
//!   injective over dataset names: `COL.CUST`, `COL-CUST`, `COL.$CUST` and
//!   `COL#.CUST` get four different tables. (A store that lowered every
//!   character outside `[a-z0-9]` to `_` would give all four one table, and a
//!   DELETE of one would drop the others' records.)
//! - **No dataset name reaches the store's own bookkeeping.** A plugin's
//!   internal tables and files take names from a namespace that no dataset
//!   name produces ([`SQL_INTERNAL_PREFIX`] for SQL).
//!
//! Names stay readable where the dataset name allows it: `PROD.CUST.MASTER`
//! is table `prod_cust_master` and file `PROD.CUST.MASTER.csv`. Characters a
//! SQL identifier cannot hold are escaped (see [`sql_table`]).

use sha2::{Digest, Sha256};

/// The longest SQL identifier every supported database keeps whole:
/// PostgreSQL truncates names past 63 bytes (and two long names could then
/// meet), SQLite has no limit.
pub const SQL_MAX_IDENTIFIER: usize = 63;

/// Names of a SQL plugin's own tables start with this; no dataset's table
/// does ([`sql_table`] never starts with a single `_`).
pub const SQL_INTERNAL_PREFIX: &str = "_vsam_";

/// Checks a dataset name the way IDCAMS does: 1 to 44 characters, qualifiers
/// of 1 to 8 characters separated by dots, each starting with a letter or
/// national character (`@ # $`), then letters, digits, national characters
/// or hyphens. Hosts check names before any plugin sees them; a plugin may
/// check again before it names storage after one.
pub fn check_dataset_name(name: &str) -> Result<(), String> {
    let hint = "a dataset name has 1-44 characters: qualifiers of 1-8 letters, digits, @ # $ or -, separated by dots, each starting with a letter, @, # or $";
    if name.is_empty() || name.len() > 44 {
        return Err(format!(
            "dataset name {name:?} is {} characters long: {hint}",
            name.len()
        ));
    }
    for qualifier in name.split('.') {
        let mut chars = qualifier.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || "@#$".contains(c));
        let rest_ok =
            chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "@#$-".contains(c));
        if qualifier.len() > 8 || !first_ok || !rest_ok {
            return Err(format!(
                "dataset name {name:?} has an invalid qualifier {qualifier:?}: {hint}"
            ));
        }
    }
    Ok(())
}

/// The escape code of a character a SQL identifier cannot hold.
const ESCAPES: [(char, char); 4] = [('-', 'h'), ('@', 'a'), ('#', 'n'), ('$', 'd')];

/// Marks a table name that would otherwise start with `sqlite_` (a prefix
/// SQLite keeps for itself): `SQLITE.CUST` is table `__vsqlite_cust`.
const RESERVED_MARK: &str = "__v";

/// Joins the readable start of an over-long name to its digest: a run of
/// four `_`, which no escaped name holds (they hold at most three in a row).
const DIGEST_MARK: &str = "____";

/// The SQL table of a dataset: lower-case letters, digits and `_`, readable
/// where the name allows and injective over all names.
///
/// - Letters are lowered, digits kept, and each dot becomes one `_`:
///   `PROD.CUST.MASTER` is `prod_cust_master`.
/// - `-`, `@`, `#` and `$` become `__h`, `__a`, `__n` and `__d`:
///   `COL-CUST` is `col__hcust`, `COL.$CUST` is `col___dcust`. Qualifiers are
///   never empty, so a lone `_` is always a dot and `__` always an escape,
///   and [`dataset_of_sql_table`] reads every such name back.
/// - A name that would start with `sqlite_` (reserved by SQLite) gets
///   `__v` in front.
/// - A name longer than [`SQL_MAX_IDENTIFIER`] (ten escapes or more) keeps
///   its first 40 characters, then `____` and 16 hex digits of the SHA-256 of
///   the dataset name.
///
/// Names no dataset can have (lower case, other characters) still map
/// injectively: any other character becomes `__u` and six hex digits.
pub fn sql_table(dataset: &str) -> String {
    let mut name = String::with_capacity(dataset.len() + 8);
    for c in dataset.chars() {
        match c {
            'A'..='Z' => name.push(c.to_ascii_lowercase()),
            '0'..='9' => name.push(c),
            '.' => name.push('_'),
            other => match ESCAPES.iter().find(|(from, _)| *from == other) {
                Some((_, code)) => {
                    name.push_str("__");
                    name.push(*code);
                }
                None => name.push_str(&format!("__u{:06x}", u32::from(other))),
            },
        }
    }
    if name.starts_with("sqlite_") {
        name.insert_str(0, RESERVED_MARK);
    }
    if name.len() > SQL_MAX_IDENTIFIER {
        let digest = Sha256::digest(dataset.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        name.truncate(40);
        name.push_str(DIGEST_MARK);
        name.push_str(&hex);
    }
    name
}

/// The dataset whose [`sql_table`] is `table`, if `table` is the table of
/// a valid dataset name and not a shortened one: for tools that show a
/// table's dataset, and the proof (in this module's tests) that no two
/// datasets share a table.
pub fn dataset_of_sql_table(table: &str) -> Option<String> {
    if table.contains(DIGEST_MARK) {
        return None;
    }
    let body = match table.strip_prefix(RESERVED_MARK) {
        Some(rest) if rest.starts_with("sqlite_") => rest,
        Some(_) => return None,
        None => table,
    };
    let bytes = body.as_bytes();
    let mut dataset = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b @ (b'a'..=b'z' | b'0'..=b'9') => {
                dataset.push(char::from(b).to_ascii_uppercase());
                i += 1;
            }
            b'_' => {
                let run = bytes[i..].iter().take_while(|&&b| b == b'_').count();
                if run == 1 || run == 3 {
                    dataset.push('.');
                }
                if run == 1 {
                    i += 1;
                    continue;
                }
                if run > 3 {
                    return None;
                }
                i += run;
                let code = char::from(*bytes.get(i)?);
                i += 1;
                match ESCAPES.iter().find(|(_, c)| *c == code) {
                    Some((from, _)) => dataset.push(*from),
                    None if code == 'u' => {
                        let hex = body.get(i..i + 6)?;
                        dataset.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
                        i += 6;
                    }
                    None => return None,
                }
            }
            _ => return None,
        }
    }
    // Only the one canonical spelling of a valid dataset name counts.
    (sql_table(&dataset) == table && check_dataset_name(&dataset).is_ok()).then_some(dataset)
}

/// A name in a SQL plugin's own namespace for something that belongs to
/// `table`, such as its key constraint (`purpose` = `pk`): PostgreSQL
/// names a constraint's index `{table}_pkey` unless told otherwise, and that
/// name could be another dataset's table.
pub fn sql_internal(purpose: &str, table: &str) -> String {
    let digest = Sha256::digest(table.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{SQL_INTERNAL_PREFIX}{purpose}_{hex}")
}

/// True for names in a SQL plugin's own namespace (its catalog and other
/// bookkeeping tables), which no dataset's table has: a plugin refuses them
/// as table names chosen in the configuration.
pub fn is_internal_sql_name(name: &str) -> bool {
    name.to_ascii_lowercase().starts_with(SQL_INTERNAL_PREFIX)
}

/// The file name of a dataset's file with extension `extension` (lower
/// case, such as `csv` or `journal`): the dataset name itself, then the
/// extension. Dataset names are upper case and the extensions lower case,
/// so the names of two datasets' files differ even on a file system that
/// ignores case, and no file of one dataset is a file of another.
pub fn file_name(dataset: &str, extension: &str) -> String {
    format!("{dataset}.{extension}")
}

/// The root of a dataset's objects in a bucket, under the backend's
/// `prefix` (empty, or ending in `/`): `{prefix}{DATASET}/`. No dataset
/// name holds `/`, so no dataset's root starts with another's, and a
/// listing of one root never shows another dataset's objects.
pub fn object_root(prefix: &str, dataset: &str) -> String {
    format!("{prefix}{dataset}/")
}

#[cfg(test)]
mod tests;
