//! The copybook parser on any text: it never panics, and what it accepts
//! lays out fields inside the record, each with a codec that decodes its
//! own bytes from a record of the record's size.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vsam_plugin_sdk::codepage::CodePage;
use vsam_plugin_sdk::copybook::Copybook;

fuzz_target!(|text: &str| {
    let Ok(copybook) = Copybook::parse(text) else {
        return;
    };
    let Some(record) = copybook.record() else {
        return;
    };
    let size = record.total_size();
    let bytes = vec![0x40u8; size.min(1 << 16)];
    for field in copybook.fields() {
        assert!(
            field.offset + field.size <= size,
            "{} at {}+{} beyond the record's {size} bytes",
            field.name,
            field.offset,
            field.size
        );
        if let Some(codec) = field.number_codec(CodePage::Cp037)
            && let Some(slice) = bytes.get(field.offset..field.offset + field.size)
        {
            let _ = codec.decode(slice);
        }
    }
});
