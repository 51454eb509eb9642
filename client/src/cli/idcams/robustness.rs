//! Decks are typed by people and copied from old job streams: whatever
//! the text, reading it, finding its IF-THEN-ELSE structure and parsing
//! each command's parameters answers (an error is an answer) and never
//! panics. Fragments of real decks are mixed with arbitrary text,
//! characters of several bytes in UTF-8 among it.

use super::{deck, parse_dd, program, syntax};
use proptest::prelude::*;

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("DEFINE CLUSTER (NAME(PROD.CUST) INDEXED KEYS(6 0) RECORDSIZE(80 80))".to_string()),
        Just("REPRO INFILE(IN) OUTDATASET(PROD.CUST) FROMKEY(X'C1F0') COUNT(10)".to_string()),
        Just("PRINT INDATASET(PROD.CUST) CHARACTER SKIP(2)".to_string()),
        Just("DELETE PROD.* CLUSTER PURGE".to_string()),
        Just("LISTCAT ENTRIES(PROD.CUST) ALL".to_string()),
        Just("IF LASTCC = 0 THEN".to_string()),
        Just("IF MAXCC GT 4 -".to_string()),
        Just("ELSE".to_string()),
        Just("DO".to_string()),
        Just("END".to_string()),
        Just("SET MAXCC = 12".to_string()),
        Just("//STEP1    EXEC PGM=IDCAMS".to_string()),
        Just("//IN       DD DSN=PROD.IN,DISP=SHR".to_string()),
        Just("//SYSIN    DD *".to_string()),
        Just("/*".to_string()),
        Just("/* a comment".to_string()),
        Just("*/".to_string()),
        Just("X'".to_string()),
        Just("'".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(" -".to_string()),
        Just(" +".to_string()),
        Just(";".to_string()),
        Just("\n".to_string()),
        Just("\u{20ac}".to_string()),
        "[A-Z0-9 ().,'*=/+;X-]{0,16}",
        "[XC]?'[0-9A-Fa-f \u{e9}\u{20ac}']{0,8}'",
        "[A-Z]{1,8}\\((X'|')\\PC{0,6}'\\)",
        "\\PC{0,12}",
    ]
}

fn deck_text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|fragments| {
        fragments
            .iter()
            .enumerate()
            .map(|(at, fragment)| match at % 3 {
                0 => format!("{fragment}\n"),
                1 => format!("  {fragment}"),
                _ => format!(" {fragment} "),
            })
            .collect()
    })
}

/// Every command of `steps`, however deeply nested.
fn commands(steps: &[program::Step], out: &mut Vec<String>) {
    for step in steps {
        match step {
            program::Step::Function(command) => out.push(command.text.clone()),
            program::Step::If {
                then, otherwise, ..
            } => {
                commands(then, out);
                commands(otherwise, out);
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_deck_is_read_and_parsed_without_panic(text in deck_text(), step in "\\PC{0,8}") {
        for step in [None, Some(step.as_str())] {
            let Ok(deck) = deck::read(&text, step) else {
                continue;
            };
            let mut texts = Vec::new();
            commands(&program::steps(deck.commands), &mut texts);
            for text in texts {
                if let Ok(tokens) = syntax::tokens(&text)
                    && let Ok(items) = syntax::items(&tokens)
                {
                    for item in &items {
                        let _ = syntax::names(item);
                        let _ = syntax::number(item);
                    }
                    let _ = syntax::joined(&items);
                }
            }
        }
    }

    #[test]
    fn any_dd_mapping_is_parsed_without_panic(text in "\\PC{0,24}") {
        let _ = parse_dd(&text);
    }
}
