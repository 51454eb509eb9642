//! The record codecs: zoned, packed and binary numbers of every picture and
//! sign, the code pages, and the record text form. Decoding any bytes never
//! panics; what decodes encodes back to bytes that decode to the same value
//! (but a binary value beyond its picture, which is refused on write);
//! every value that fits encodes and decodes back to itself.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vsam_plugin_sdk::codepage::ALL_CODEPAGES;
use vsam_plugin_sdk::numeric::{
    Binary, Decimal, NumberCodec, NumericError, Packed, Picture, SignPosition, Zoned,
};

#[derive(Arbitrary, Debug)]
struct Input {
    kind: u8,
    digits: u8,
    scale: u8,
    signed: bool,
    sign: u8,
    codepage: u8,
    native: bool,
    bytes: Vec<u8>,
    value: i128,
    text: String,
}

fuzz_target!(|input: Input| {
    let codepage = ALL_CODEPAGES[usize::from(input.codepage) % ALL_CODEPAGES.len()];
    // Binary fields hold up to 18 digits.
    let digits = match input.kind % 3 {
        2 => input.digits % 18 + 1,
        _ => input.digits % 38 + 1,
    };
    let picture = Picture {
        digits,
        scale: input.scale % (digits + 1),
        signed: input.signed,
    };
    let codec = match input.kind % 3 {
        0 => NumberCodec::Zoned(Zoned {
            picture,
            sign: [
                SignPosition::TrailingEmbedded,
                SignPosition::LeadingEmbedded,
                SignPosition::TrailingSeparate,
                SignPosition::LeadingSeparate,
            ][usize::from(input.sign % 4)],
            codepage,
        }),
        1 => NumberCodec::Packed(Packed(picture)),
        _ => NumberCodec::Binary(Binary {
            picture,
            native: input.native,
        }),
    };
    if let Ok(value) = codec.decode(&input.bytes) {
        match codec.encode(value) {
            Ok(bytes) => assert_eq!(codec.decode(&bytes).unwrap(), value),
            // A binary field's storage holds more than its picture (X'5D00'
            // in PIC S99V99 COMP is 238.08, as GnuCOBOL reads it too); such a
            // value is refused on write rather than truncated.
            Err(NumericError::Overflow { .. }) if matches!(codec, NumberCodec::Binary(_)) => {}
            Err(error) => panic!(
                "{value:?} decoded from {:?} does not encode: {error}",
                input.bytes
            ),
        }
    }
    let value = Decimal::new(input.value % 10i128.pow(u32::from(digits)), picture.scale);
    if let Ok(bytes) = codec.encode(value) {
        assert_eq!(codec.decode(&bytes).unwrap(), value, "{codec:?}");
    }

    // Code pages: what encodes decodes back; any bytes decode.
    if let Ok(bytes) = codepage.encode(&input.text) {
        assert_eq!(codepage.decode_lossy(&bytes), input.text);
    }
    let _ = codepage.decode_lossy(&input.bytes);
    // The record text form (vsamr's \xHH escapes) is exact both ways.
    let text = vsam_plugin_sdk::text::escape(&input.bytes, codepage);
    assert_eq!(
        vsam_plugin_sdk::text::unescape(&text, codepage).unwrap(),
        input.bytes
    );
});
