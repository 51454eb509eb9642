use super::*;

const CUSTOMER: &str = "\
000100 01  CUSTOMER-RECORD.                                             CUST0001
000200     05  CUST-ID              PIC X(8).                           CUST0002
000300*    the name, as the old screens show it
000400     05  CUST-NAME.                                               CUST0004
000500         10  LAST-NAME        PIC X(20).                          CUST0005
000600         10  FIRST-NAME       PIC X(15).                          CUST0006
000700     05  BALANCE              PIC S9(7)V99 COMP-3.                CUST0007
000800     05  CREDIT-LIMIT         PIC S9(5)    COMP.                  CUST0008
000900     05  STATUS-CODE          PIC X.                              CUST0009
001000         88  ACTIVE           VALUE 'A'.                          CUST0010
001100         88  CLOSED           VALUES 'C' 'X' THRU 'Z'.            CUST0011
001200     05  ORDER-COUNT          PIC 9(2).                           CUST0012
001300     05  ORDERS OCCURS 3 TIMES.                                   CUST0013
001400         10  ORDER-DATE       PIC 9(8).                           CUST0014
001500         10  ORDER-AMT        PIC S9(5)V99 SIGN LEADING SEPARATE. CUST0015
001600     05  SPARE                PIC X(4).                           CUST0016
001700     05  ALT-VIEW REDEFINES SPARE PIC 9(4).                       CUST0017
";

#[test]
fn a_real_copybook_is_laid_out() {
    let copybook = Copybook::parse(CUSTOMER).unwrap();
    let record = copybook.record().unwrap();
    assert_eq!(record.name.as_deref(), Some("CUSTOMER-RECORD"));
    // 8 + 35 + 5 + 4 + 1 + 2 + 3 * (8 + 8) + 4
    assert_eq!(record.size, 107);
    let fields = copybook.fields();
    let find = |name: &str| {
        fields
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert_eq!((find("CUST-ID").offset, find("CUST-ID").size), (0, 8));
    assert_eq!(
        (find("FIRST-NAME").offset, find("FIRST-NAME").size),
        (28, 15)
    );
    let balance = find("BALANCE");
    assert_eq!(
        (balance.offset, balance.size, balance.usage),
        (43, 5, Usage::Packed)
    );
    assert_eq!(
        balance.picture.numeric(),
        Some(crate::numeric::Picture {
            digits: 9,
            scale: 2,
            signed: true
        })
    );
    assert_eq!(
        (find("CREDIT-LIMIT").offset, find("CREDIT-LIMIT").size),
        (48, 4)
    );
    assert_eq!(find("ORDER-DATE(1)").offset, 55);
    assert_eq!(find("ORDER-AMT(1)").size, 8, "7 digits and a separate sign");
    assert_eq!(find("ORDER-AMT(1)").sign, SignPosition::LeadingSeparate);
    assert_eq!(find("ORDER-DATE(3)").offset, 55 + 2 * 16);
    assert!(find("ALT-VIEW").redefined);
    assert_eq!(find("ALT-VIEW").offset, 103);
    let status = record
        .children
        .iter()
        .find(|c| c.name.as_deref() == Some("STATUS-CODE"))
        .unwrap();
    assert_eq!(
        status.conditions[1].values,
        vec![
            ("'C'".to_string(), None),
            ("'X'".to_string(), Some("'Z'".to_string()))
        ]
    );
    assert_eq!(
        fields
            .iter()
            .filter(|f| !f.redefined)
            .map(|f| f.size)
            .sum::<usize>(),
        107,
        "every byte covered once"
    );
}

#[test]
fn group_usage_and_nested_tables() {
    let copybook = Copybook::parse(
        "01 R.\n  05 AMOUNTS COMP-3.\n     10 A PIC S9(3).\n     10 B PIC S9(5).\n  05 T OCCURS 2.\n     10 U OCCURS 3.\n        15 V PIC XX.\n  05 N PIC S9(4) COMP-5.\n",
    )
    .unwrap();
    let fields = copybook.fields();
    let names: Vec<(&str, usize, usize)> = fields
        .iter()
        .map(|f| (f.name.as_str(), f.offset, f.size))
        .collect();
    assert_eq!(names[..2], [("A", 0, 2), ("B", 2, 3)]);
    assert_eq!(names[2], ("V(1,1)", 5, 2));
    assert_eq!(names[4], ("V(1,3)", 9, 2));
    assert_eq!(names[5], ("V(2,1)", 11, 2));
    assert_eq!(names.last().copied(), Some(("N", 17, 2)));
    assert_eq!(fields.last().unwrap().usage, Usage::NativeBinary);
}

#[test]
fn occurs_depending_on_lays_out_the_maximum() {
    let copybook = Copybook::parse("01 R.\n 05 CNT PIC 9(2).\n 05 ITEMS OCCURS 1 TO 10 TIMES DEPENDING ON CNT.\n  10 X PIC X(3).\n").unwrap();
    let items = &copybook.record().unwrap().children[1];
    assert_eq!(
        items.occurs,
        Some(Occurs {
            min: 1,
            max: 10,
            depending_on: Some("CNT".into())
        })
    );
    assert_eq!(copybook.record().unwrap().size, 32);
}

#[test]
fn errors_name_the_line_and_the_clause() {
    let error = Copybook::parse("01 R.\n  05 A PIC X(3).\n  05 B PIC X GLOBAL.\n").unwrap_err();
    assert_eq!(error.line, 3);
    assert!(
        error.message.contains("clause GLOBAL is not supported"),
        "{error}"
    );
    let error = Copybook::parse("01 R.\n  05 A USAGE COMP-1.\n").unwrap_err();
    assert_eq!(
        (error.line, error.message.as_str()),
        (2, "USAGE COMP-1 is not supported")
    );
    let error = Copybook::parse("01 R.\n  05 A PIC X COMP-3.\n").unwrap_err();
    assert!(error.message.contains("non-numeric PICTURE"), "{error}");
    let error = Copybook::parse("01 R.\n  05 B REDEFINES NOPE PIC X.\n").unwrap_err();
    assert!(error.message.contains("REDEFINES NOPE"), "{error}");
    assert_eq!(Copybook::parse("05 A PIC X.\n").unwrap_err().line, 1);
    assert!(
        Copybook::parse("01 R.\n 05 A PIC X(3)\n")
            .unwrap_err()
            .message
            .contains("no closing period")
    );
    assert!(
        Copybook::parse("01 R.\n 05 G.\n")
            .unwrap_err()
            .message
            .contains("neither a PICTURE")
    );
}

#[test]
fn level_66_and_77() {
    let copybook = Copybook::parse(
        "01 R.\n 05 A PIC X.\n 05 B PIC X.\n 66 AB RENAMES A THRU B.\n77 COUNTER PIC 9(4) COMP.\n",
    )
    .unwrap();
    assert_eq!(copybook.records.len(), 2);
    assert_eq!(
        copybook.records[0].children[2].renames,
        Some(("A".into(), Some("B".into())))
    );
    assert_eq!(copybook.records[0].size, 2);
    assert_eq!(copybook.records[1].size, 2);
}

/// Found by fuzzing (fuzz/corpus/copybook_parser): a picture mixing
/// alphanumeric and edited symbols made the parser panic.
#[test]
fn a_picture_mixing_categories_is_an_error_not_a_panic() {
    let error = Copybook::parse("01 R.\n  05 A PIC XZ9.\n").unwrap_err();
    assert!(
        error
            .message
            .contains("mixes alphanumeric (X, A) and numeric-edited"),
        "{}",
        error.message
    );
}

/// Found by fuzzing: `PIC 9(20000000000000)` tried to lay out 20 trillion
/// symbols and aborted the process.
#[test]
fn a_huge_repetition_is_an_error_not_an_abort() {
    let error = Copybook::parse("01 R.\n  05 A PIC X(20000000000000).\n").unwrap_err();
    assert!(
        error.message.contains("longer than any record"),
        "{}",
        error.message
    );
}

#[test]
fn tables_that_would_overflow_a_size_are_refused_on_their_line() {
    let nested = "01 R.\n 05 A OCCURS 99999999 TIMES.\n  10 B OCCURS 99999999 TIMES.\n   15 C OCCURS 99999999 TIMES PIC X(16777216).\n";
    let error = Copybook::parse(nested).unwrap_err();
    assert_eq!(error.line, 4, "{error}");
    assert!(
        error
            .message
            .contains("C ends past the largest record a copybook may describe (16777216 bytes)"),
        "{error}"
    );
    // The largest record there may be is a record.
    let largest = Copybook::parse("01 R.\n 05 A OCCURS 4 TIMES PIC X(4194304).\n").unwrap();
    assert_eq!(largest.record().unwrap().size, MAX_RECORD_BYTES);
    let past = Copybook::parse("01 R.\n 05 A OCCURS 4 TIMES PIC X(4194304).\n 05 B PIC X.\n");
    assert!(past.unwrap_err().message.contains("B ends past"));
}

#[test]
fn a_record_expanding_to_too_many_fields_is_refused_before_they_are_listed() {
    // 89 KB of text that would list 60 million fields.
    let mut text = String::from("01 R.\n 05 BASE PIC X(30000).\n");
    for i in 0..2000 {
        text.push_str(&format!(" 05 R{i} REDEFINES BASE OCCURS 30000 PIC X.\n"));
    }
    let error = Copybook::parse(&text).unwrap_err();
    assert_eq!(error.line, 1, "{error}");
    assert!(
        error.message.contains("R expands to 60000001 elementary fields (each entry of a table counted), more than the 65536"),
        "{error}"
    );
    // At the bound: accepted, and listed as counted.
    let mut text = String::from("01 R.\n 05 BASE PIC X(30000).\n");
    text.push_str(
        " 05 T REDEFINES BASE.\n  10 E OCCURS 3500 TIMES.\n   15 F1 PIC X.\n   15 F2 PIC X.\n",
    );
    text.push_str(" 05 U REDEFINES BASE OCCURS 30000 PIC X.\n  ");
    text.push_str("\n 05 V REDEFINES BASE OCCURS 28535 PIC X.\n");
    let copybook = Copybook::parse(&text).unwrap();
    assert_eq!(copybook.fields().len() as u64, MAX_FIELDS);
    let over = text.replace("OCCURS 28535", "OCCURS 28536");
    assert!(
        Copybook::parse(&over)
            .unwrap_err()
            .message
            .contains("65537 elementary fields")
    );
}
