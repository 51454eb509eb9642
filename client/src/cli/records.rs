//! Keys and records between the command line and bytes: text in the
//! dataset's code page (with `\xHH` escapes) or hex; printing as text,
//! hex or JSON.

use super::Output;
use anyhow::{Context, Result, bail};
use vsam_plugin_sdk::codepage::CodePage;
use vsam_plugin_sdk::text::{escape, unescape};
use vsam_protocol::{DatasetSpec, Organization, Record};

/// How one dataset's bytes are read from and shown on the command line.
pub struct Codec {
    pub codepage: CodePage,
    pub output: Output,
    pub spec: DatasetSpec,
    fields: Option<super::fields::FieldView>,
}

impl Codec {
    /// The codec of a dataset, from its catalog entry.
    pub fn new(spec: &DatasetSpec, output: Output) -> Result<Self> {
        let codepage = spec
            .codepage
            .parse::<CodePage>()
            .map_err(anyhow::Error::msg)?;
        Ok(Self {
            codepage,
            output,
            spec: spec.clone(),
            fields: None,
        })
    }

    /// Shows records as the named fields of the dataset's layout.
    pub fn with_fields(mut self, on: bool) -> Result<Self> {
        if on {
            self.fields = Some(super::fields::FieldView::new(
                &self.spec.name,
                &self.spec.layout,
                self.codepage,
            )?);
        }
        Ok(self)
    }

    /// Parses a key or record given on the command line.
    pub fn parse(&self, text: &str, what: &str) -> Result<Vec<u8>> {
        if self.output.hex {
            parse_hex(text).with_context(|| format!("{what} {text:?} is not hex"))
        } else {
            unescape(text, self.codepage).map_err(|e| anyhow::anyhow!("{what} {text:?}: {e}"))
        }
    }

    /// A KSDS search key: a full key is padded with spaces (in the code
    /// page) to the key length; a generic key is used as given. Returns the
    /// key and the generic length (0 for a full key).
    pub fn search_key(&self, text: &str, generic: bool) -> Result<(Vec<u8>, u16)> {
        let mut key = self.parse(text, "key")?;
        let length = usize::from(self.spec.key_length);
        if key.is_empty() || key.len() > length {
            bail!(
                "{}: the key is {} bytes, keys of this dataset are 1 to {length} bytes",
                self.spec.name,
                key.len()
            );
        }
        if generic {
            let generic_length = key.len() as u16;
            Ok((key, generic_length))
        } else {
            key.resize(length, self.codepage.space());
            Ok((key, 0))
        }
    }

    /// Shows bytes as text or hex.
    pub fn show(&self, bytes: &[u8]) -> String {
        if self.output.hex {
            hex::encode_upper(bytes)
        } else {
            escape(bytes, self.codepage)
        }
    }

    /// Prints a record: text/hex (RBA or RRN first for ESDS/RRDS), or JSON.
    pub fn print(&self, record: &Record) {
        outln!("{}", self.format(record));
    }

    /// The printed form of a record.
    pub fn format(&self, record: &Record) -> String {
        if let Some(view) = &self.fields {
            return view.format(&record.data, self.output);
        }
        if self.output.json {
            let mut object = serde_json::Map::new();
            match self.spec.organization {
                Organization::Ksds => {
                    object.insert("key".into(), self.show(&record.key).into());
                }
                Organization::Esds => {
                    object.insert("rba".into(), record.address.into());
                }
                Organization::Rrds | Organization::Vrrds => {
                    object.insert("rrn".into(), record.address.into());
                }
            }
            object.insert("record".into(), self.show(&record.data).into());
            serde_json::Value::Object(object).to_string()
        } else {
            match self.spec.organization {
                Organization::Ksds => self.show(&record.data),
                _ => format!("{}\t{}", record.address, self.show(&record.data)),
            }
        }
    }
}

/// Hex to bytes (spaces allowed between bytes).
pub fn parse_hex(text: &str) -> Result<Vec<u8>> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if let Some((at, c)) = digits
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_hexdigit())
    {
        bail!("{c:?} (digit {}) is not a hex digit", at + 1);
    }
    hex::decode(&digits).map_err(|_| anyhow::anyhow!("odd number of hex digits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DatasetSpec {
        DatasetSpec {
            name: "T.KS".into(),
            organization: Organization::Ksds,
            key_offset: 0,
            key_length: 4,
            min_record: 1,
            max_record: 20,
            codepage: "cp037".into(),
            backend: "csv".into(),
            layout: String::new(),
        }
    }

    #[test]
    fn full_keys_are_padded_with_code_page_spaces() {
        let codec = Codec::new(
            &spec(),
            Output {
                json: false,
                hex: false,
            },
        )
        .unwrap();
        assert_eq!(
            codec.search_key("AB", false).unwrap(),
            (vec![0xC1, 0xC2, 0x40, 0x40], 0)
        );
        assert_eq!(codec.search_key("AB", true).unwrap(), (vec![0xC1, 0xC2], 2));
        assert!(codec.search_key("ABCDE", false).is_err());
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(parse_hex("C1 f1").unwrap(), vec![0xC1, 0xF1]);
        assert!(parse_hex("C").is_err());
        // A digit of several bytes in UTF-8 is refused, not cut in two.
        let error = parse_hex("C1\u{20ac}F").unwrap_err().to_string();
        assert_eq!(error, "'\u{20ac}' (digit 3) is not a hex digit");
    }

    #[test]
    fn json_names_the_address_by_organization() {
        let mut esds = spec();
        esds.organization = Organization::Esds;
        let codec = Codec::new(
            &esds,
            Output {
                json: true,
                hex: true,
            },
        )
        .unwrap();
        let line = codec.format(&Record {
            address: 80,
            key: vec![],
            data: vec![0xC1],
        });
        assert_eq!(line, r#"{"rba":80,"record":"C1"}"#);
    }
}
