//! The copybook layout and the numeric field codecs agree byte for byte
//! with GnuCOBOL: a COBOL program moves values into a record described by a
//! copybook and writes it; the test lays out the same copybook and encodes
//! the same values. GnuCOBOL is installed by scripts/setup; a missing `cobc`
//! fails the test.

use std::process::Command;
use vsam_plugin_sdk::codepage::CodePage;
use vsam_plugin_sdk::copybook::Copybook;
use vsam_plugin_sdk::numeric::Decimal;

/// (field name, PIC and usage clauses, value)
const FIELDS: &[(&str, &str, &str)] = &[
    ("P1", "PIC S9(7)V99 COMP-3", "-301.75"),
    ("P2", "PIC S9(7)V99 COMP-3", "12345.67"),
    ("P3", "PIC 9(5) COMP-3", "12345"),
    ("P4", "PIC S9(17) COMP-3", "-12345678901234567"),
    ("P5", "PIC S9(4)V9 PACKED-DECIMAL", "0"),
    ("Z1", "PIC S9(3)", "-123"),
    ("Z2", "PIC S9(3)", "45"),
    ("Z3", "PIC 9(6)V99", "1234.5"),
    ("Z4", "PIC S9(5)V99 SIGN LEADING SEPARATE", "-45.5"),
    ("Z5", "PIC S9(5)V99 SIGN TRAILING SEPARATE", "123.45"),
    ("Z6", "PIC S9(4) SIGN LEADING", "-12"),
    ("B1", "PIC S9(4) COMP", "-2"),
    ("B2", "PIC 9(4) BINARY", "9999"),
    ("B3", "PIC S9(9) COMP", "-100000"),
    ("B4", "PIC S9(18) COMP-4", "123456789012345678"),
    ("B5", "PIC S9(9) COMP-5", "258"),
    ("B6", "PIC S9(5)V99 COMP", "-1234.56"),
];

fn copybook() -> String {
    let mut text = String::from("       01  REC.\n");
    for (name, clauses, _) in FIELDS {
        text.push_str(&format!("           05  {name:<4} {clauses}.\n"));
    }
    text
}

fn program() -> String {
    let mut moves = String::new();
    for (name, _, value) in FIELDS {
        moves.push_str(&format!("           MOVE {value} TO {name}\n"));
    }
    format!(
        "       IDENTIFICATION DIVISION.
       PROGRAM-ID. FIELDS.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT OUT-FILE ASSIGN TO \"fields.dat\"
               ORGANIZATION IS SEQUENTIAL.
       DATA DIVISION.
       FILE SECTION.
       FD  OUT-FILE.
{copybook}       PROCEDURE DIVISION.
           OPEN OUTPUT OUT-FILE
{moves}           WRITE REC
           CLOSE OUT-FILE
           STOP RUN.
",
        copybook = copybook()
    )
}

#[test]
fn layout_and_codecs_match_gnucobol_bytes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fields.cob"), program()).unwrap();
    let compiled = Command::new("cobc")
        .current_dir(dir.path())
        .args(["-x", "-fbinary-size=2-4-8", "-o", "fields", "fields.cob"])
        .output()
        .expect("cobc (GnuCOBOL) is needed: scripts/setup installs it");
    assert!(
        compiled.status.success(),
        "cobc failed: {}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let ran = Command::new(dir.path().join("fields"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let written = std::fs::read(dir.path().join("fields.dat")).unwrap();

    let layout = Copybook::parse(&copybook()).unwrap();
    assert_eq!(
        layout.record().unwrap().size,
        written.len(),
        "record length"
    );
    assert_eq!(layout.fields().len(), FIELDS.len(), "every field compared");
    for field in layout.fields() {
        let (_, _, value) = FIELDS
            .iter()
            .find(|(name, _, _)| *name == field.name)
            .unwrap();
        let value: Decimal = value.parse().unwrap();
        let codec = field.number_codec(CodePage::Ascii).unwrap();
        let ours = codec.encode(value).unwrap();
        let theirs = &written[field.offset..field.offset + field.size];
        assert_eq!(
            ours, theirs,
            "{} = {value}: ours {ours:02X?}, GnuCOBOL {theirs:02X?}",
            field.name
        );
        let decoded = codec.decode(theirs).unwrap();
        assert_eq!(
            decoded.rescale(value.scale.max(decoded.scale)),
            value.rescale(value.scale.max(decoded.scale)),
            "{}",
            field.name
        );
    }
}
