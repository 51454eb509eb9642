//! The reversible text form of record bytes.
//!
//! People read records as text in the dataset's code page, but records also
//! hold packed decimals and binary fields. This form shows every printable
//! byte as its character and every other byte as `\xHH`; a backslash is
//! written `\\`. [`unescape`] gives back exactly the original bytes, so the
//! CSV backend and `vsamr` can show records as text without losing a bit.

use crate::codepage::CodePage;
use std::fmt::Write;

/// Writes `bytes` as text in `codepage`, escaping what is not printable.
pub fn escape(bytes: &[u8], codepage: CodePage) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match codepage.decode_byte(byte) {
            Some('\\') => out.push_str("\\\\"),
            Some(c) if codepage.is_printable(byte) => out.push(c),
            _ => {
                let _ = write!(out, "\\x{byte:02X}");
            }
        }
    }
    out
}

/// Why a text form could not be turned back into bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnescapeError {
    /// A `\` not followed by `\` or `xHH`.
    BadEscape {
        /// The `\`'s offset in the text, in characters.
        position: usize,
    },
    /// A character the code page has no byte for.
    Unencodable {
        /// The character.
        character: char,
        /// Its offset in the text, in characters.
        position: usize,
        /// The code page it has no byte in.
        codepage: CodePage,
    },
}

impl std::fmt::Display for UnescapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnescapeError::BadEscape { position } => write!(
                f,
                "bad escape at character {}: write a byte as \\xHH and a backslash as \\\\",
                position + 1
            ),
            UnescapeError::Unencodable {
                character,
                position,
                codepage,
            } => write!(
                f,
                "character {character:?} at position {} has no byte in code page {codepage}; write it as \\xHH",
                position + 1
            ),
        }
    }
}

impl std::error::Error for UnescapeError {}

/// Turns a text form made by [`escape`] (or typed by a person) into bytes.
pub fn unescape(text: &str, codepage: CodePage) -> Result<Vec<u8>, UnescapeError> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars().enumerate();
    while let Some((position, c)) = chars.next() {
        if c != '\\' {
            out.push(encode(codepage, c, position)?);
            continue;
        }
        match chars.next() {
            Some((_, '\\')) => out.push(encode(codepage, '\\', position)?),
            Some((_, 'x' | 'X')) => {
                let high = chars.next().and_then(|(_, h)| h.to_digit(16));
                let low = chars.next().and_then(|(_, l)| l.to_digit(16));
                match (high, low) {
                    (Some(high), Some(low)) => out.push((high * 16 + low) as u8),
                    _ => return Err(UnescapeError::BadEscape { position }),
                }
            }
            _ => return Err(UnescapeError::BadEscape { position }),
        }
    }
    Ok(out)
}

fn encode(codepage: CodePage, character: char, position: usize) -> Result<u8, UnescapeError> {
    codepage
        .encode_char(character)
        .ok_or(UnescapeError::Unencodable {
            character,
            position,
            codepage,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codepage::ALL_CODEPAGES;

    #[test]
    fn every_byte_string_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        for cp in ALL_CODEPAGES {
            let text = escape(&all, cp);
            assert_eq!(unescape(&text, cp).unwrap(), all, "{cp}");
        }
    }

    #[test]
    fn text_stays_readable() {
        let record = [0xC1, 0xC2, 0x40, 0x00, 0x12, 0x3C, 0xE0];
        assert_eq!(escape(&record, CodePage::Cp037), "AB \\x00\\x12\\x3C\\\\");
        assert_eq!(escape(b"a,b\"c\n", CodePage::Ascii), "a,b\"c\\x0A");
    }

    #[test]
    fn bad_escapes_are_reported() {
        assert_eq!(
            unescape("ab\\q", CodePage::Ascii),
            Err(UnescapeError::BadEscape { position: 2 })
        );
        assert!(unescape("\\x4", CodePage::Ascii).is_err());
        assert!(matches!(
            unescape("€", CodePage::Cp037),
            Err(UnescapeError::Unencodable { .. })
        ));
    }
}
