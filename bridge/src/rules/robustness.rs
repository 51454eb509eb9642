//! What the mapping reads comes from people and programs: COBOL sources,
//! `VSAMFH_MAP`, ASSIGN names, the environment's paths. Whatever the text,
//! multi-byte characters anywhere included, reading it answers (an error
//! is an answer) and never panics: a panic here would end the COBOL
//! program that opened the file.

use super::{from_env, glob, resolve::resolve, sources::assign_names};
use crate::config::env_name;
use proptest::prelude::*;

/// Text that looks like what it stands for, mixed with anything.
fn text(fragments: &'static [&'static str]) -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        proptest::sample::select(fragments).prop_map(str::to_string),
        "[ 0-9A-Za-z*/$.{}=;:?-]{0,10}",
        "\\PC{0,8}",
        Just("\u{20ac}".to_string()),
        Just("\u{e9}".to_string()),
        Just("\n".to_string()),
    ];
    prop::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
}

const SOURCE: &[&str] = &[
    "000100",
    "      *",
    "      /",
    "       ",
    "SELECT CUST ASSIGN TO ",
    "\"data/cust.dat\"",
    "'$APPDIR/orders.dat'",
    " ASSIGN ",
    "DISK ",
    "USING ",
    "*> comment",
    ".",
];

const MAP: &[&str] = &[
    "*.dat=PROD.{stem}",
    "path:/data/**=APP.{dir}.{file}",
    "**={name}",
    "{ext}",
    "{",
    "}",
    "=",
    ";",
    "path:",
    "?",
];

const NAMES: &[&str] = &[
    "$APPDIR/",
    "data/cust.dat",
    "/abs/",
    "CUSTFILE",
    "./",
    "../",
    "$",
    "/",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_cobol_source_is_read_without_panic(source in text(SOURCE)) {
        let _ = assign_names(&source);
    }

    #[test]
    fn rules_and_names_are_applied_without_panic(
        map in text(MAP),
        assign in text(NAMES),
        value in text(NAMES),
    ) {
        let env = |name: &str| (!name.is_empty() && name.len().is_multiple_of(2)).then(|| value.clone());
        let path = resolve(&assign, &env);
        let _ = env_name(&assign);
        let _ = glob(&map, &assign);
        if let Ok(rules) = from_env(&map, false, "") {
            for rule in &rules {
                let _ = rule.apply(assign.trim(), &path);
                let _ = rule.describe();
            }
        }
    }
}
