//! `--fields`: records shown as the named fields of the dataset's copybook.

use super::Output;
use vsam_plugin_sdk::codepage::CodePage;
use vsam_plugin_sdk::copybook::{Copybook, Field};
use vsam_plugin_sdk::text::escape;

/// Shows records field by field.
pub struct FieldView {
    fields: Vec<Field>,
    codepage: CodePage,
}

impl FieldView {
    /// A view from a dataset's layout; an error if it has none.
    pub fn new(name: &str, layout: &str, codepage: CodePage) -> anyhow::Result<Self> {
        if layout.is_empty() {
            anyhow::bail!(
                "{name} has no record layout: define it with --layout FILE.cpy to use --fields"
            );
        }
        let copybook = Copybook::parse(layout).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let fields = copybook
            .fields()
            .into_iter()
            .filter(|f| !f.redefined)
            .collect();
        Ok(Self { fields, codepage })
    }

    /// The value of one field: text for characters, a decimal for numbers;
    /// bytes that are not a valid number are shown as X'..' with the reason.
    fn value(&self, field: &Field, bytes: &[u8]) -> String {
        let Some(codec) = field.number_codec(self.codepage) else {
            return escape(bytes, self.codepage);
        };
        let decoded = codec.decode(bytes);
        match decoded {
            Ok(value) => value.to_string(),
            Err(e) => format!("X'{}' ({e})", hex::encode_upper(bytes)),
        }
    }

    /// The record as (name, value) pairs; fields past the end of a short
    /// record are left out.
    pub fn pairs(&self, record: &[u8]) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter(|f| f.offset + f.size <= record.len())
            .map(|f| {
                (
                    f.name.clone(),
                    self.value(f, &record[f.offset..f.offset + f.size]),
                )
            })
            .collect()
    }

    /// The printed form: `NAME=value` pairs, or one JSON object.
    pub fn format(&self, record: &[u8], output: Output) -> String {
        let pairs = self.pairs(record);
        if output.json {
            let object: serde_json::Map<String, serde_json::Value> = pairs
                .into_iter()
                .map(|(name, value)| (name, value.into()))
                .collect();
            serde_json::Value::Object(object).to_string()
        } else {
            pairs
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_show_text_and_numbers() {
        let layout = "01 R.\n 05 ID PIC X(4).\n 05 AMT PIC S9(3)V99 COMP-3.\n 05 QTY PIC 9(2).\n 05 N PIC S9(4) COMP.\n";
        let view = FieldView::new("T", layout, CodePage::Cp037).unwrap();
        let mut record = CodePage::Cp037.encode("AB12").unwrap();
        record.extend([0x12, 0x34, 0x5D]);
        record.extend([0xF0, 0xF7]);
        record.extend([0xFF, 0xFE]);
        let text = view.format(
            &record,
            Output {
                json: false,
                hex: false,
            },
        );
        assert_eq!(text, "ID=AB12 AMT=-123.45 QTY=7 N=-2");
        let json = view.format(
            &record,
            Output {
                json: true,
                hex: false,
            },
        );
        assert_eq!(json, r#"{"ID":"AB12","AMT":"-123.45","QTY":"7","N":"-2"}"#);
        record[5] = 0x3A;
        assert!(
            view.format(
                &record,
                Output {
                    json: false,
                    hex: false
                }
            )
            .contains("AMT=X'123A5D' (byte 2 (X'3A') is not a valid digit)")
        );
        assert_eq!(
            view.pairs(&record[..6]).len(),
            1,
            "fields past a short record are left out"
        );
        assert!(FieldView::new("T", "", CodePage::Cp037).is_err());
    }
}
