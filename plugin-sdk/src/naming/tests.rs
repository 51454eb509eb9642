use super::*;
use proptest::prelude::*;

/// Valid dataset names: up to five qualifiers of every allowed character.
fn dataset_name() -> impl Strategy<Value = String> {
    "[A-Z@#$][A-Z0-9@#$-]{0,7}(\\.[A-Z@#$][A-Z0-9@#$-]{0,7}){0,4}"
        .prop_filter("44 characters at most", |name| name.len() <= 44)
}

/// Valid names dense in characters that need escapes, often long enough
/// to be shortened.
fn national_name() -> impl Strategy<Value = String> {
    "[@#$S][@#$Q-]{0,7}(\\.[@#$][@#$-]{0,7}){0,4}"
        .prop_filter("44 characters at most", |name| name.len() <= 44)
}

fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![dataset_name(), national_name()]
}

#[test]
fn plain_names_stay_readable() {
    assert_eq!(sql_table("PROD.CUST.MASTER"), "prod_cust_master");
    assert_eq!(sql_table("A1.B2"), "a1_b2");
    assert_eq!(sql_table("VSAM.DATASETS"), "vsam_datasets");
}

#[test]
fn names_that_differ_in_national_characters_get_their_own_tables() {
    let names = [
        "COL.CUST",
        "COL-CUST",
        "COL.$CUST",
        "COL#.CUST",
        "COL@.CUST",
        "COL.C-UST",
    ];
    let tables: Vec<String> = names.iter().map(|n| sql_table(n)).collect();
    assert_eq!(
        tables,
        [
            "col_cust",
            "col__hcust",
            "col___dcust",
            "col__n_cust",
            "col__a_cust",
            "col_c__hust"
        ]
    );
    for (name, table) in names.iter().zip(&tables) {
        assert_eq!(dataset_of_sql_table(table).as_deref(), Some(*name));
    }
}

#[test]
fn reserved_and_internal_names_are_kept_apart() {
    assert_eq!(sql_table("SQLITE.CUST"), "__vsqlite_cust");
    assert_eq!(
        dataset_of_sql_table("__vsqlite_cust").as_deref(),
        Some("SQLITE.CUST")
    );
    assert_eq!(sql_table("SQLITE"), "sqlite");
    assert!(is_internal_sql_name("_vsam_catalog"));
    assert!(is_internal_sql_name("_VSAM_CATALOG"));
    assert!(!is_internal_sql_name("vsam_datasets"));
    assert_eq!(dataset_of_sql_table("_vsam_catalog"), None);
    assert_eq!(dataset_of_sql_table("col__xcust"), None);
    assert_eq!(dataset_of_sql_table("Col_cust"), None);
}

#[test]
fn long_escaped_names_are_shortened_with_a_digest() {
    let name = "$$$$$$$$.########.@@@@@@@@.$-$-$-$-";
    let table = sql_table(name);
    assert!(table.len() <= SQL_MAX_IDENTIFIER, "{table}");
    assert!(table.contains("____"), "{table}");
    assert_eq!(dataset_of_sql_table(&table), None);
    assert_ne!(table, sql_table("$$$$$$$$.########.@@@@@@@@.$-$-$-$$"));
}

#[test]
fn characters_no_dataset_name_has_still_map_apart() {
    assert_ne!(sql_table("a"), sql_table("A"));
    assert_ne!(sql_table("A_B"), sql_table("A.B"));
    assert_ne!(sql_table("a_b"), sql_table("A.B"));
    assert_ne!(sql_table("A\u{e9}"), sql_table("A"));
}

#[test]
fn dataset_names_are_checked_as_idcams_does() {
    assert!(check_dataset_name("PROD.CUST.MASTER").is_ok());
    assert!(check_dataset_name("A#1.$X-Y").is_ok());
    assert!(check_dataset_name("1ABC").is_err());
    assert!(check_dataset_name("TOOLONGQUAL.X").is_err());
    assert!(check_dataset_name("A..B").is_err());
    assert!(check_dataset_name("lower").is_err());
    assert!(check_dataset_name("A/B").is_err());
    assert!(check_dataset_name(&"A.".repeat(23)).is_err());
}

#[test]
fn file_and_object_names_are_the_dataset_name() {
    assert_eq!(file_name("PROD.CUST", "csv"), "PROD.CUST.csv");
    assert_eq!(object_root("vsam/", "PROD.CUST"), "vsam/PROD.CUST/");
    assert_eq!(object_root("", "A"), "A/");
}

proptest! {
    #[test]
    fn every_table_name_is_a_plain_identifier_outside_the_internal_namespace(name in any_name()) {
        prop_assert!(check_dataset_name(&name).is_ok(), "{}", name);
        let table = sql_table(&name);
        prop_assert!(table.len() <= SQL_MAX_IDENTIFIER, "{} -> {}", name, table);
        prop_assert!(table.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        prop_assert!(!table.starts_with(|c: char| c.is_ascii_digit()));
        prop_assert!(!is_internal_sql_name(&table), "{} -> {}", name, table);
        prop_assert!(!table.starts_with("sqlite_"));
        if !table.contains("____") {
            prop_assert_eq!(dataset_of_sql_table(&table), Some(name));
        }
    }

    #[test]
    fn distinct_names_never_share_a_table_file_or_object_root(a in any_name(), b in any_name()) {
        prop_assume!(a != b);
        prop_assert_ne!(sql_table(&a), sql_table(&b));
        for ext_a in ["csv", "journal", "csv.tmp"] {
            for ext_b in ["csv", "journal", "csv.tmp"] {
                prop_assert_ne!(
                    file_name(&a, ext_a).to_lowercase(),
                    file_name(&b, ext_b).to_lowercase()
                );
            }
        }
        let (root_a, root_b) = (object_root("p/", &a), object_root("p/", &b));
        prop_assert!(!root_a.starts_with(&root_b) && !root_b.starts_with(&root_a));
    }

    #[test]
    fn names_of_letters_digits_and_dots_keep_the_tables_earlier_versions_made(
        name in "[A-Z][A-Z0-9]{0,7}(\\.[A-Z][A-Z0-9]{0,7}){0,4}"
    ) {
        prop_assume!(!name.starts_with("SQLITE."));
        prop_assert_eq!(sql_table(&name), name.to_ascii_lowercase().replace('.', "_"));
    }
}
