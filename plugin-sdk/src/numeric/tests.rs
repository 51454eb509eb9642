use super::*;
use proptest::prelude::*;

fn pic(digits: u8, scale: u8, signed: bool) -> Picture {
    Picture {
        digits,
        scale,
        signed,
    }
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// Bytes GnuCOBOL 3.1 writes for these pictures and values (measured; see
/// the project's reference on the external file handler).
#[test]
fn fields_match_bytes_written_by_gnucobol() {
    let packed = Packed(pic(9, 2, true));
    assert_eq!(
        packed.encode(dec("-301.75")).unwrap(),
        [0x00, 0x00, 0x30, 0x17, 0x5D]
    );
    assert_eq!(
        packed.encode(dec("301.75")).unwrap(),
        [0x00, 0x00, 0x30, 0x17, 0x5C]
    );
    assert_eq!(
        packed.decode(&[0x00, 0x00, 0x30, 0x17, 0x5D]).unwrap(),
        dec("-301.75")
    );
    assert_eq!(
        Packed(pic(5, 0, false)).encode(dec("12345")).unwrap(),
        [0x12, 0x34, 0x5F]
    );

    let ebcdic = Zoned {
        picture: pic(3, 0, true),
        sign: SignPosition::TrailingEmbedded,
        codepage: CodePage::Cp037,
    };
    assert_eq!(
        CodePage::Cp037.decode_lossy(&ebcdic.encode(dec("-123")).unwrap()),
        "12L"
    );
    assert_eq!(
        CodePage::Cp037.decode_lossy(&ebcdic.encode(dec("123")).unwrap()),
        "12C"
    );
    let ascii = Zoned {
        codepage: CodePage::Ascii,
        ..ebcdic
    };
    assert_eq!(ascii.encode(dec("-123")).unwrap(), b"12s");
    assert_eq!(ascii.encode(dec("123")).unwrap(), b"123");
    assert_eq!(ascii.decode(b"12s").unwrap(), dec("-123"));
    let leading = Zoned {
        picture: pic(3, 0, true),
        sign: SignPosition::LeadingSeparate,
        codepage: CodePage::Ascii,
    };
    assert_eq!(leading.encode(dec("-45")).unwrap(), b"-045");
    assert_eq!(leading.decode(b"-045").unwrap(), dec("-45"));

    assert_eq!(
        Binary {
            picture: pic(4, 0, true),
            native: false
        }
        .encode(dec("-2"))
        .unwrap(),
        [0xFF, 0xFE]
    );
    assert_eq!(
        Binary {
            picture: pic(9, 0, true),
            native: true
        }
        .encode(dec("258"))
        .unwrap(),
        [0x02, 0x01, 0x00, 0x00]
    );
}

#[test]
fn invalid_bytes_are_reported_not_guessed() {
    let packed = Packed(pic(5, 0, true));
    assert_eq!(
        packed.decode(&[0x12, 0x3A, 0x4C]),
        Err(NumericError::BadDigit {
            position: 1,
            byte: 0x3A
        })
    );
    assert_eq!(
        packed.decode(&[0x12, 0x34, 0x56]),
        Err(NumericError::BadSign {
            position: 2,
            byte: 0x56
        })
    );
    assert_eq!(
        packed.decode(&[0x12]),
        Err(NumericError::Length {
            expected: 3,
            got: 1
        })
    );
    let zoned = Zoned {
        picture: pic(3, 0, false),
        sign: SignPosition::TrailingEmbedded,
        codepage: CodePage::Cp037,
    };
    assert!(matches!(
        zoned.decode(&[0xF1, 0x40, 0xF3]),
        Err(NumericError::BadDigit { position: 1, .. })
    ));
    assert!(
        matches!(
            zoned.decode(&[0xF1, 0xF2, 0xD3]),
            Err(NumericError::BadDigit { .. })
        ),
        "unsigned has no sign"
    );
    assert!(matches!(
        Packed(pic(3, 0, false)).encode(dec("-1")),
        Err(NumericError::Unsigned { .. })
    ));
    assert!(matches!(
        Packed(pic(3, 1, true)).encode(dec("123")),
        Err(NumericError::Overflow { .. })
    ));
    assert!(
        matches!(
            Packed(pic(5, 1, true)).encode(dec("1.25")),
            Err(NumericError::Overflow { .. })
        ),
        "a decimal would be lost"
    );
}

#[test]
fn decimals_print_and_parse() {
    assert_eq!(Decimal::new(-30175, 2).to_string(), "-301.75");
    assert_eq!(Decimal::new(5, 3).to_string(), "0.005");
    assert_eq!(Decimal::new(0, 0).to_string(), "0");
    assert_eq!(dec("+1.50").rescale(1), Some(Decimal::new(15, 1)));
    assert_eq!(dec("1.55").rescale(1), None);
    assert!("1e5".parse::<Decimal>().is_err());
}

fn value_for(picture: Picture) -> impl Strategy<Value = Decimal> {
    let limit = 10i128.pow(u32::from(picture.digits)) - 1;
    let low = if picture.signed { -limit } else { 0 };
    (low..=limit).prop_map(move |unscaled| Decimal::new(unscaled, picture.scale))
}

fn any_picture() -> impl Strategy<Value = Picture> {
    (1u8..=18, 0u8..=4, any::<bool>()).prop_map(|(digits, scale, signed)| Picture {
        digits,
        scale: scale.min(digits),
        signed,
    })
}

proptest! {
    #[test]
    fn every_codec_round_trips(
        (picture, value) in any_picture().prop_flat_map(|p| (Just(p), value_for(p))),
        codepage in prop_oneof![Just(CodePage::Cp037), Just(CodePage::Cp1047), Just(CodePage::Ascii)],
        sign in prop_oneof![
            Just(SignPosition::TrailingEmbedded),
            Just(SignPosition::LeadingEmbedded),
            Just(SignPosition::TrailingSeparate),
            Just(SignPosition::LeadingSeparate),
        ],
        native in any::<bool>(),
    ) {
        let packed = Packed(picture);
        let bytes = packed.encode(value).unwrap();
        prop_assert_eq!(bytes.len(), packed.byte_len());
        prop_assert_eq!(packed.decode(&bytes).unwrap(), value);

        let zoned = Zoned { picture, sign, codepage };
        let bytes = zoned.encode(value).unwrap();
        prop_assert_eq!(bytes.len(), zoned.byte_len());
        prop_assert_eq!(zoned.decode(&bytes).unwrap(), value);
        prop_assert_eq!(zoned.encode(zoned.decode(&bytes).unwrap()).unwrap(), bytes);

        let binary = Binary { picture, native };
        let bytes = binary.encode(value).unwrap();
        prop_assert_eq!(bytes.len(), binary.byte_len());
        prop_assert_eq!(binary.decode(&bytes).unwrap(), value);
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..12), picture in any_picture()) {
        let _ = Packed(picture).decode(&bytes);
        let _ = Zoned { picture, sign: SignPosition::TrailingEmbedded, codepage: CodePage::Cp037 }.decode(&bytes);
        let _ = Binary { picture, native: false }.decode(&bytes);
    }
}

/// Found by fuzzing (fuzz/corpus/record_codecs): an unsigned packed field
/// holding a D sign nibble decoded as negative, a value the field cannot
/// encode. GnuCOBOL reads X'1D' in a `PIC 9 COMP-3` as +1 (and -1 in a
/// `PIC S9 COMP-3`).
#[test]
fn an_unsigned_packed_field_reads_any_sign_as_positive() {
    let unsigned = Packed(pic(1, 0, false));
    assert_eq!(unsigned.decode(&[0x1D]).unwrap(), dec("1"));
    assert_eq!(unsigned.encode(dec("1")).unwrap(), [0x1F]);
    assert_eq!(Packed(pic(1, 0, true)).decode(&[0x1D]).unwrap(), dec("-1"));
}
