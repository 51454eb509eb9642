//! Code pages: byte-exact conversion between record bytes and text.
//!
//! Mainframe records are EBCDIC. Tools that show or accept records as text
//! (the CSV backend, `vsamr`) convert through the dataset's code page; every
//! conversion here is a bijection on the bytes it accepts, so nothing is lost.

mod tables;

use std::fmt;
use std::str::FromStr;

/// A single-byte code page a dataset's text is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodePage {
    /// EBCDIC US/Canada.
    Cp037,
    /// EBCDIC Latin-1 open systems (z/OS Unix).
    Cp1047,
    /// EBCDIC international.
    Cp500,
    /// EBCDIC Germany/Austria.
    Cp273,
    /// EBCDIC US/Canada with the euro sign.
    Cp1140,
    /// 7-bit ASCII; bytes 0x80-0xFF are not text.
    Ascii,
}

/// Every supported code page, in the order they are documented.
pub const ALL_CODEPAGES: [CodePage; 6] = [
    CodePage::Cp037,
    CodePage::Cp1047,
    CodePage::Cp500,
    CodePage::Cp273,
    CodePage::Cp1140,
    CodePage::Ascii,
];

/// A character that has no byte in the code page, found while encoding text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unencodable {
    /// The character.
    pub character: char,
    /// Its index (in characters) in the text.
    pub position: usize,
    /// The code page that lacks it.
    pub codepage: CodePage,
}

impl fmt::Display for Unencodable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "character {:?} (U+{:04X}) at position {} has no byte in code page {}; give the record in hex instead",
            self.character,
            self.character as u32,
            self.position + 1,
            self.codepage
        )
    }
}

impl std::error::Error for Unencodable {}

/// A page's decode table (code point per byte) and encode table
/// ((code point, byte) pairs sorted by code point).
type Tables = (&'static [u16; 256], &'static [(u16, u8); 256]);

impl CodePage {
    /// The name used in configuration and on the command line (`cp037`...).
    pub fn name(self) -> &'static str {
        match self {
            CodePage::Cp037 => "cp037",
            CodePage::Cp1047 => "cp1047",
            CodePage::Cp500 => "cp500",
            CodePage::Cp273 => "cp273",
            CodePage::Cp1140 => "cp1140",
            CodePage::Ascii => "ascii",
        }
    }

    fn tables(self) -> Option<Tables> {
        use tables::*;
        match self {
            CodePage::Cp037 => Some((&CP037_DECODE, &CP037_ENCODE)),
            CodePage::Cp1047 => Some((&CP1047_DECODE, &CP1047_ENCODE)),
            CodePage::Cp500 => Some((&CP500_DECODE, &CP500_ENCODE)),
            CodePage::Cp273 => Some((&CP273_DECODE, &CP273_ENCODE)),
            CodePage::Cp1140 => Some((&CP1140_DECODE, &CP1140_ENCODE)),
            CodePage::Ascii => None,
        }
    }

    /// The character a byte stands for, if the byte is text in this code
    /// page (ASCII bytes above 0x7F are not).
    pub fn decode_byte(self, byte: u8) -> Option<char> {
        match self.tables() {
            Some((decode, _)) => char::from_u32(u32::from(decode[usize::from(byte)])),
            None if byte < 0x80 => Some(char::from(byte)),
            None => None,
        }
    }

    /// The byte that stands for a character, if the code page has one.
    pub fn encode_char(self, character: char) -> Option<u8> {
        let point = u32::from(character);
        match self.tables() {
            Some((_, encode)) => {
                let point = u16::try_from(point).ok()?;
                encode
                    .binary_search_by_key(&point, |&(p, _)| p)
                    .ok()
                    .map(|i| encode[i].1)
            }
            None => u8::try_from(point).ok().filter(|b| *b < 0x80),
        }
    }

    /// True when the byte shows as a visible, unambiguous character: not a
    /// control character, and not a no-break space or soft hyphen that would
    /// look like something else on screen.
    pub fn is_printable(self, byte: u8) -> bool {
        self.decode_byte(byte)
            .is_some_and(|c| !c.is_control() && c != '\u{A0}' && c != '\u{AD}')
    }

    /// Decodes every byte; bytes that are not text in the code page (only
    /// possible for ASCII) become U+FFFD.
    pub fn decode_lossy(self, bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|&b| self.decode_byte(b).unwrap_or('\u{FFFD}'))
            .collect()
    }

    /// Encodes text, failing on the first character the code page lacks.
    pub fn encode(self, text: &str) -> Result<Vec<u8>, Unencodable> {
        text.chars()
            .enumerate()
            .map(|(position, character)| {
                self.encode_char(character).ok_or(Unencodable {
                    character,
                    position,
                    codepage: self,
                })
            })
            .collect()
    }

    /// The encoding of a space, used to pad text fields and keys.
    pub fn space(self) -> u8 {
        self.encode_char(' ').unwrap_or(b' ')
    }
}

impl fmt::Display for CodePage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CodePage {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let lower = name.trim().to_ascii_lowercase();
        ALL_CODEPAGES
            .into_iter()
            .find(|cp| {
                cp.name() == lower
                    || lower
                        .strip_prefix("ibm-")
                        .is_some_and(|n| format!("cp{n}") == cp.name())
            })
            .ok_or_else(|| {
                format!(
                    "unknown code page {name:?}: use one of {}",
                    ALL_CODEPAGES.map(CodePage::name).join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests;
