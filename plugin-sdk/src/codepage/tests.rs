use super::*;
use std::process::Command;

/// Python's codecs (and the `ebcdic` package for cp1047) are the independent
/// reference: ask Python for all 256 bytes of every EBCDIC page.
fn python_decode(codepage: &str) -> Vec<u32> {
    let script = format!(
        "import ebcdic, sys\nsys.stdout.write(' '.join(str(ord(c)) for c in bytes(range(256)).decode('{codepage}')))"
    );
    let output = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 is needed for the code page reference test (scripts/setup installs it)");
    assert!(
        output.status.success(),
        "python3 failed: {} (run scripts/setup to install the ebcdic package)",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn ebcdic_pages_match_python_codecs_byte_for_byte() {
    for cp in ALL_CODEPAGES
        .into_iter()
        .filter(|cp| *cp != CodePage::Ascii)
    {
        let reference = python_decode(cp.name());
        assert_eq!(reference.len(), 256, "{cp}");
        for byte in 0..=255u8 {
            let expected = char::from_u32(reference[usize::from(byte)]).unwrap();
            assert_eq!(
                cp.decode_byte(byte),
                Some(expected),
                "{cp} byte {byte:#04x}"
            );
            assert_eq!(
                cp.encode_char(expected),
                Some(byte),
                "{cp} char {expected:?}"
            );
        }
    }
}

#[test]
fn well_known_ebcdic_bytes() {
    assert_eq!(
        CodePage::Cp037.encode("A1 ").unwrap(),
        vec![0xC1, 0xF1, 0x40]
    );
    assert_eq!(CodePage::Cp1047.encode_char('['), Some(0xAD));
    assert_eq!(CodePage::Cp037.encode_char('['), Some(0xBA));
    assert_eq!(CodePage::Cp1140.decode_byte(0x9F), Some('€'));
    assert_eq!(CodePage::Cp273.decode_byte(0x4A), Some('Ä'));
    assert_eq!(CodePage::Cp037.space(), 0x40);
    assert_eq!(CodePage::Ascii.space(), 0x20);
}

#[test]
fn ascii_has_no_high_bytes() {
    assert_eq!(CodePage::Ascii.decode_byte(0x80), None);
    assert_eq!(CodePage::Ascii.encode_char('é'), None);
    let err = CodePage::Ascii.encode("abé").unwrap_err();
    assert_eq!(err.position, 2);
    assert!(err.to_string().contains("cp") || err.to_string().contains("ascii"));
}

#[test]
fn printable_excludes_controls_and_lookalikes() {
    assert!(CodePage::Cp037.is_printable(0xC1));
    assert!(!CodePage::Cp037.is_printable(0x00));
    assert!(!CodePage::Cp037.is_printable(0x41)); // no-break space
    assert!(CodePage::Cp037.is_printable(0x40));
    assert!(!CodePage::Ascii.is_printable(0x0A));
}

#[test]
fn names_parse_both_ways() {
    for cp in ALL_CODEPAGES {
        assert_eq!(cp.name().parse::<CodePage>().unwrap(), cp);
    }
    assert_eq!("IBM-1047".parse::<CodePage>().unwrap(), CodePage::Cp1047);
    assert!("latin9".parse::<CodePage>().unwrap_err().contains("cp037"));
}

#[test]
fn every_byte_round_trips_through_text() {
    for cp in ALL_CODEPAGES {
        for byte in 0..=255u8 {
            if let Some(c) = cp.decode_byte(byte) {
                assert_eq!(cp.encode_char(c), Some(byte), "{cp} {byte:#04x}");
            }
        }
    }
}
