//! COBOL numeric fields: zoned decimal (USAGE DISPLAY), packed decimal
//! (COMP-3, PACKED-DECIMAL) and binary (COMP, COMP-4, BINARY, COMP-5).
//!
//! Backends that map records to typed columns, and tools that show records
//! as named fields, decode these bytes into a [`Decimal`] and encode it back.
//! Every codec is exact: decoding then encoding a valid field gives the same
//! bytes, and invalid bytes are reported, never guessed.

use crate::codepage::CodePage;
use std::fmt;
use std::str::FromStr;

/// A decimal number: an unscaled integer and the digits after the point
/// (`-301.75` is `unscaled = -30175, scale = 2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    /// The value times 10^scale.
    pub unscaled: i128,
    /// Digits after the decimal point.
    pub scale: u8,
}

impl Decimal {
    /// A decimal from its unscaled value and scale.
    pub fn new(unscaled: i128, scale: u8) -> Self {
        Self { unscaled, scale }
    }

    /// The same value with `scale` digits after the point, if no digit is lost.
    pub fn rescale(self, scale: u8) -> Option<Decimal> {
        if scale >= self.scale {
            let factor = 10i128.checked_pow(u32::from(scale - self.scale))?;
            self.unscaled
                .checked_mul(factor)
                .map(|unscaled| Decimal { unscaled, scale })
        } else {
            let factor = 10i128.checked_pow(u32::from(self.scale - scale))?;
            (self.unscaled % factor == 0).then(|| Decimal {
                unscaled: self.unscaled / factor,
                scale,
            })
        }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.unscaled.unsigned_abs().to_string();
        let sign = if self.unscaled < 0 { "-" } else { "" };
        let scale = usize::from(self.scale);
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{whole}.{fraction}")
    }
}

impl FromStr for Decimal {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
        let digits = format!("{whole}{fraction}");
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 38 {
            return Err(format!("{text:?} is not a decimal number"));
        }
        let magnitude: i128 = digits
            .parse()
            .map_err(|_| format!("{text:?} has more than 38 digits"))?;
        Ok(Decimal {
            unscaled: if negative { -magnitude } else { magnitude },
            scale: fraction.len() as u8,
        })
    }
}

/// Why a numeric field could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumericError {
    /// The bytes are not the field's length.
    Length {
        /// The field's length in bytes.
        expected: usize,
        /// The length of the bytes given.
        got: usize,
    },
    /// A byte that is not a valid digit (or nibble) at this position.
    BadDigit {
        /// The byte's offset in the field.
        position: usize,
        /// The byte.
        byte: u8,
    },
    /// The sign byte or nibble is not a valid sign.
    BadSign {
        /// The byte's offset in the field.
        position: usize,
        /// The byte.
        byte: u8,
    },
    /// The value has more digits than the picture holds, or more decimals.
    Overflow {
        /// The value, as given.
        value: String,
        /// The picture's digits.
        digits: u8,
        /// The picture's decimals.
        scale: u8,
    },
    /// A negative value for an unsigned picture.
    Unsigned {
        /// The value, as given.
        value: String,
    },
}

impl fmt::Display for NumericError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumericError::Length { expected, got } => {
                write!(f, "the field is {expected} bytes, got {got}")
            }
            NumericError::BadDigit { position, byte } => {
                write!(
                    f,
                    "byte {} (X'{byte:02X}') is not a valid digit",
                    position + 1
                )
            }
            NumericError::BadSign { position, byte } => {
                write!(
                    f,
                    "byte {} (X'{byte:02X}') holds no valid sign",
                    position + 1
                )
            }
            NumericError::Overflow {
                value,
                digits,
                scale,
            } => {
                write!(
                    f,
                    "{value} does not fit {digits} digits with {scale} decimals"
                )
            }
            NumericError::Unsigned { value } => {
                write!(f, "{value} is negative but the picture has no sign")
            }
        }
    }
}

impl std::error::Error for NumericError {}

/// The digits and scale of a numeric picture, e.g. `S9(7)V99` is 9 digits,
/// scale 2, signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picture {
    /// Total digits (1 to 38).
    pub digits: u8,
    /// Digits after the implied decimal point.
    pub scale: u8,
    /// `S` in the picture.
    pub signed: bool,
}

impl Picture {
    fn fit(&self, value: Decimal) -> Result<u128, NumericError> {
        let overflow = || NumericError::Overflow {
            value: value.to_string(),
            digits: self.digits,
            scale: self.scale,
        };
        let scaled = value.rescale(self.scale).ok_or_else(overflow)?;
        if scaled.unscaled < 0 && !self.signed {
            return Err(NumericError::Unsigned {
                value: value.to_string(),
            });
        }
        let magnitude = scaled.unscaled.unsigned_abs();
        if magnitude >= 10u128.pow(u32::from(self.digits)) {
            return Err(overflow());
        }
        Ok(magnitude)
    }

    fn digits_of(&self, magnitude: u128) -> Vec<u8> {
        let text = format!("{magnitude:0>width$}", width = usize::from(self.digits));
        text.bytes().map(|b| b - b'0').collect()
    }

    fn decimal(&self, negative: bool, digits: &[u8]) -> Decimal {
        let magnitude = digits
            .iter()
            .fold(0i128, |acc, d| acc * 10 + i128::from(*d));
        Decimal {
            unscaled: if negative { -magnitude } else { magnitude },
            scale: self.scale,
        }
    }
}

fn check_length(bytes: &[u8], expected: usize) -> Result<(), NumericError> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(NumericError::Length {
            expected,
            got: bytes.len(),
        })
    }
}

/// Packed decimal (COMP-3): two digits per byte, the sign in the last
/// nibble (C positive, D negative, F unsigned; A and E read as positive,
/// B as negative; an unsigned field reads every sign as positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packed(pub Picture);

impl Packed {
    /// Bytes the field takes: digits / 2 + 1.
    pub fn byte_len(&self) -> usize {
        usize::from(self.0.digits) / 2 + 1
    }

    /// Decodes the field.
    pub fn decode(&self, bytes: &[u8]) -> Result<Decimal, NumericError> {
        check_length(bytes, self.byte_len())?;
        let mut nibbles: Vec<u8> = bytes.iter().flat_map(|b| [b >> 4, b & 0x0F]).collect();
        let sign = nibbles.pop().expect("at least one byte");
        // An unsigned field has no sign: a D nibble in it (written by
        // another program) does not make its value negative, as in COBOL.
        let negative = match sign {
            0x0B | 0x0D => self.0.signed,
            0x0A | 0x0C | 0x0E | 0x0F => false,
            _ => {
                return Err(NumericError::BadSign {
                    position: bytes.len() - 1,
                    byte: bytes[bytes.len() - 1],
                });
            }
        };
        if let Some(i) = nibbles.iter().position(|n| *n > 9) {
            return Err(NumericError::BadDigit {
                position: i / 2,
                byte: bytes[i / 2],
            });
        }
        // An even digit count leaves one pad nibble in front.
        let extra = nibbles.len() - usize::from(self.0.digits);
        Ok(self.0.decimal(negative, &nibbles[extra..]))
    }

    /// Encodes a value (sign nibble C/D when signed, F when not).
    pub fn encode(&self, value: Decimal) -> Result<Vec<u8>, NumericError> {
        let magnitude = self.0.fit(value)?;
        let mut nibbles = self.0.digits_of(magnitude);
        if nibbles.len().is_multiple_of(2) {
            nibbles.insert(0, 0);
        }
        nibbles.push(match (self.0.signed, value.unscaled < 0) {
            (false, _) => 0x0F,
            (true, false) => 0x0C,
            (true, true) => 0x0D,
        });
        Ok(nibbles
            .chunks(2)
            .map(|pair| pair[0] << 4 | pair[1])
            .collect())
    }
}

/// Where a zoned field's sign is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignPosition {
    /// In the zone of the last digit (the default).
    TrailingEmbedded,
    /// In the zone of the first digit (SIGN LEADING).
    LeadingEmbedded,
    /// A separate `+`/`-` after the digits (SIGN TRAILING SEPARATE).
    TrailingSeparate,
    /// A separate `+`/`-` before the digits (SIGN LEADING SEPARATE).
    LeadingSeparate,
}

/// Zoned decimal (USAGE DISPLAY): one digit per byte in the dataset's code
/// page. EBCDIC: digits X'F0'-X'F9', an embedded sign in the zone (C
/// positive, D negative, F unsigned). ASCII, as GnuCOBOL writes it: digits
/// X'30'-X'39', a negative embedded sign as X'70'-X'79'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zoned {
    /// Digits, scale and sign.
    pub picture: Picture,
    /// Where the sign is (ignored when unsigned).
    pub sign: SignPosition,
    /// The dataset's code page.
    pub codepage: CodePage,
}

impl Zoned {
    /// Bytes the field takes: one per digit, plus one for a separate sign.
    pub fn byte_len(&self) -> usize {
        usize::from(self.picture.digits) + usize::from(self.separate())
    }

    fn separate(&self) -> bool {
        self.picture.signed
            && matches!(
                self.sign,
                SignPosition::TrailingSeparate | SignPosition::LeadingSeparate
            )
    }

    fn ascii(&self) -> bool {
        self.codepage == CodePage::Ascii
    }

    /// Decodes the field.
    pub fn decode(&self, bytes: &[u8]) -> Result<Decimal, NumericError> {
        check_length(bytes, self.byte_len())?;
        let (digit_bytes, offset, mut negative) = if self.separate() {
            let (sign_at, digits, offset) = match self.sign {
                SignPosition::LeadingSeparate => (0, &bytes[1..], 1),
                _ => (bytes.len() - 1, &bytes[..bytes.len() - 1], 0),
            };
            let negative = match self.codepage.decode_byte(bytes[sign_at]) {
                Some('-') => true,
                Some('+') => false,
                _ => {
                    return Err(NumericError::BadSign {
                        position: sign_at,
                        byte: bytes[sign_at],
                    });
                }
            };
            (digits, offset, negative)
        } else {
            (bytes, 0, false)
        };
        let sign_digit = match (self.picture.signed && !self.separate(), self.sign) {
            (false, _) => None,
            (true, SignPosition::LeadingEmbedded) => Some(0),
            (true, _) => Some(digit_bytes.len() - 1),
        };
        let mut digits = Vec::with_capacity(digit_bytes.len());
        for (i, &byte) in digit_bytes.iter().enumerate() {
            let (zone, digit) = (byte >> 4, byte & 0x0F);
            let position = offset + i;
            if digit > 9 {
                return Err(NumericError::BadDigit { position, byte });
            }
            let plain = if self.ascii() {
                zone == 0x3
            } else {
                zone == 0xF
            };
            if Some(i) == sign_digit && !plain {
                negative = match (self.ascii(), zone) {
                    (true, 0x7) => true,
                    (false, 0xB | 0xD) => true,
                    (false, 0xA | 0xC | 0xE) => false,
                    _ => return Err(NumericError::BadSign { position, byte }),
                };
            } else if !plain {
                return Err(NumericError::BadDigit { position, byte });
            }
            digits.push(digit);
        }
        Ok(self.picture.decimal(negative, &digits))
    }

    /// Encodes a value the way COBOL writes it.
    pub fn encode(&self, value: Decimal) -> Result<Vec<u8>, NumericError> {
        let magnitude = self.picture.fit(value)?;
        let negative = value.unscaled < 0;
        let plain_zone = if self.ascii() { 0x30 } else { 0xF0 };
        let mut out: Vec<u8> = self
            .picture
            .digits_of(magnitude)
            .iter()
            .map(|d| plain_zone | d)
            .collect();
        if self.separate() {
            let sign = self
                .codepage
                .encode_char(if negative { '-' } else { '+' })
                .expect("every code page has + and -");
            match self.sign {
                SignPosition::LeadingSeparate => out.insert(0, sign),
                _ => out.push(sign),
            }
        } else if self.picture.signed {
            let at = if self.sign == SignPosition::LeadingEmbedded {
                0
            } else {
                out.len() - 1
            };
            let digit = out[at] & 0x0F;
            out[at] = match (self.ascii(), negative) {
                (true, false) => 0x30 | digit,
                (true, true) => 0x70 | digit,
                (false, false) => 0xC0 | digit,
                (false, true) => 0xD0 | digit,
            };
        }
        Ok(out)
    }
}

/// Binary (COMP, COMP-4, BINARY: big-endian; COMP-5: native little-endian),
/// two's complement when signed, 2, 4 or 8 bytes for up to 4, 9 or 18 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binary {
    /// Digits, scale and sign.
    pub picture: Picture,
    /// COMP-5: the machine's byte order (little-endian here) and the full
    /// binary range instead of the picture's digits.
    pub native: bool,
}

impl Binary {
    /// Bytes the field takes.
    pub fn byte_len(&self) -> usize {
        match self.picture.digits {
            0..=4 => 2,
            5..=9 => 4,
            _ => 8,
        }
    }

    /// Decodes the field.
    pub fn decode(&self, bytes: &[u8]) -> Result<Decimal, NumericError> {
        check_length(bytes, self.byte_len())?;
        let mut be = bytes.to_vec();
        if self.native {
            be.reverse();
        }
        let negative = self.picture.signed && be[0] & 0x80 != 0;
        let mut value: i128 = if negative { -1 } else { 0 };
        for byte in be {
            value = (value << 8) | i128::from(byte);
        }
        Ok(Decimal {
            unscaled: value,
            scale: self.picture.scale,
        })
    }

    /// Encodes a value.
    pub fn encode(&self, value: Decimal) -> Result<Vec<u8>, NumericError> {
        let length = self.byte_len();
        let overflow = || NumericError::Overflow {
            value: value.to_string(),
            digits: self.picture.digits,
            scale: self.picture.scale,
        };
        let scaled = if self.native {
            let scaled = value.rescale(self.picture.scale).ok_or_else(overflow)?;
            if scaled.unscaled < 0 && !self.picture.signed {
                return Err(NumericError::Unsigned {
                    value: value.to_string(),
                });
            }
            let bits = 8 * length as u32;
            let (low, high) = if self.picture.signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            if scaled.unscaled < low || scaled.unscaled > high {
                return Err(overflow());
            }
            scaled.unscaled
        } else {
            let magnitude = self.picture.fit(value)? as i128;
            if value.unscaled < 0 {
                -magnitude
            } else {
                magnitude
            }
        };
        let mut bytes = scaled.to_be_bytes()[16 - length..].to_vec();
        if self.native {
            bytes.reverse();
        }
        Ok(bytes)
    }
}

/// Any of the numeric codecs, chosen from a field's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberCodec {
    /// USAGE DISPLAY.
    Zoned(Zoned),
    /// COMP-3.
    Packed(Packed),
    /// COMP, COMP-4, BINARY, COMP-5.
    Binary(Binary),
}

impl NumberCodec {
    /// Decodes the field's bytes.
    pub fn decode(&self, bytes: &[u8]) -> Result<Decimal, NumericError> {
        match self {
            NumberCodec::Zoned(codec) => codec.decode(bytes),
            NumberCodec::Packed(codec) => codec.decode(bytes),
            NumberCodec::Binary(codec) => codec.decode(bytes),
        }
    }

    /// Encodes a value into the field's bytes.
    pub fn encode(&self, value: Decimal) -> Result<Vec<u8>, NumericError> {
        match self {
            NumberCodec::Zoned(codec) => codec.encode(value),
            NumberCodec::Packed(codec) => codec.encode(value),
            NumberCodec::Binary(codec) => codec.encode(value),
        }
    }
}

#[cfg(test)]
mod tests;
