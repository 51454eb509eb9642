//! PICTURE strings: `X(20)`, `S9(7)V99`, `9(3)PP`, `ZZ,ZZ9.99`...

use crate::numeric::Picture;

/// The longest repetition a picture may ask for (`X(n)`): longer than any
/// record a dataset may have.
const MAX_REPETITION: usize = super::MAX_RECORD_BYTES;

/// What kind of data a picture describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureClass {
    /// `X` and `A`: characters.
    Alphanumeric,
    /// `9` with `S`, `V`, `P`: a number.
    Numeric,
    /// Numeric-edited (`Z`, `*`, `.`, `,`, `+`, `-`, `CR`, `DB`, `$`, `B`,
    /// `0`, `/`): a number formatted as characters.
    Edited,
}

/// A parsed picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PictureInfo {
    /// The picture as written.
    pub text: String,
    /// Its class.
    pub class: PictureClass,
    /// Character positions it occupies as DISPLAY (digits for a number;
    /// `S`, `V` and `P` take none).
    pub positions: usize,
    /// Digits (`9`) of a numeric picture.
    pub digits: u8,
    /// Decimal places: digits after `V`, plus `P`s before the digits;
    /// negative for trailing `P`s (the value is the digits times 10^-scale).
    pub scale: i16,
    /// `S` present.
    pub signed: bool,
}

impl PictureInfo {
    /// The digits, scale and sign for the numeric codecs, if the picture is
    /// numeric with a non-negative scale.
    pub fn numeric(&self) -> Option<Picture> {
        (self.class == PictureClass::Numeric && self.scale >= 0 && self.digits > 0).then_some(
            Picture {
                digits: self.digits,
                scale: self.scale as u8,
                signed: self.signed,
            },
        )
    }

    /// Parses a PICTURE string.
    ///
    /// The symbols are kept as runs (`X(20)` is one run of 20), so that the
    /// work and memory of a picture are those of its text: a copybook may
    /// come from a client's DEFINE, and `X(16777216)` on every line of it
    /// must not cost 16 million symbols each.
    pub fn parse(text: &str) -> Result<Self, String> {
        let runs = runs(text)?;
        if runs.is_empty() {
            return Err("PIC with no symbols".into());
        }
        let count = |wanted: &dyn Fn(char) -> bool| -> usize {
            runs.iter()
                .filter(|(c, _)| wanted(*c))
                .map(|(_, n)| n)
                .sum()
        };
        let is = |set: &str| runs.iter().all(|(c, _)| set.contains(*c));
        let class = if is("XA9") && runs.iter().any(|(c, _)| *c == 'X' || *c == 'A') {
            PictureClass::Alphanumeric
        } else if is("9SVP") {
            PictureClass::Numeric
        } else if is("9SVPZ*.,+-CRDB$B0/") {
            PictureClass::Edited
        } else {
            return Err(
                match runs
                    .iter()
                    .find(|(c, _)| !"XA9SVPZ*.,+-CRDB$0/".contains(*c))
                {
                    Some((bad, _)) => format!("PIC {text}: symbol {bad:?} is not supported"),
                    None => format!(
                        "PIC {text}: mixes alphanumeric (X, A) and numeric-edited symbols, which no category allows"
                    ),
                },
            );
        };
        let digits = count(&|c| c == '9');
        let signed = runs[0].0 == 'S';
        let later_s = runs[0].0 == 'S' && runs[0].1 > 1 || runs[1..].iter().any(|(c, _)| *c == 'S');
        if later_s || count(&|c| c == 'V') > 1 {
            return Err(format!("PIC {text}: S must come first and V at most once"));
        }
        if digits > 38 {
            return Err(format!("PIC {text}: {digits} digits, at most 38"));
        }
        let scaling = count(&|c| c == 'P');
        if scaling > 38 {
            return Err(format!(
                "PIC {text}: {scaling} scaling positions (P), at most 38"
            ));
        }
        let positions = match class {
            PictureClass::Numeric => digits,
            _ => count(&|c| !"SVP".contains(c)),
        };
        let scale = if class == PictureClass::Numeric {
            let after_v: usize = runs
                .iter()
                .skip_while(|(c, _)| *c != 'V')
                .filter(|(c, _)| *c == '9')
                .map(|(_, n)| n)
                .sum();
            let leading_p: usize = match runs.iter().position(|(c, _)| *c == '9') {
                Some(first_digit) => runs[..first_digit]
                    .iter()
                    .filter(|(c, _)| *c == 'P')
                    .map(|(_, n)| n)
                    .sum(),
                None => 0,
            };
            let trailing_p: usize = runs
                .iter()
                .rev()
                .take_while(|(c, _)| *c == 'P')
                .map(|(_, n)| n)
                .sum();
            // Each at most 38 (checked above).
            after_v as i16 + leading_p as i16 - trailing_p as i16
        } else {
            0
        };
        Ok(Self {
            text: text.to_string(),
            class,
            positions,
            digits: digits as u8,
            scale,
            signed,
        })
    }
}

/// The symbols of a picture as runs of one symbol: `S9(7)V99` is `S`,
/// `9` x7, `V`, `9`, `9`. `CR` and `DB` are a run of two of their first
/// letter.
fn runs(text: &str) -> Result<Vec<(char, usize)>, String> {
    let upper = text.to_ascii_uppercase();
    let chars: Vec<char> = upper.chars().collect();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let symbol = match (chars[i], chars.get(i + 1)) {
            (two @ ('C' | 'D'), Some(second))
                if matches!((two, second), ('C', 'R') | ('D', 'B')) =>
            {
                i += 2;
                runs.push((two, 2));
                continue;
            }
            (c, _) => c,
        };
        i += 1;
        let mut count = 1usize;
        if chars.get(i) == Some(&'(') {
            let close = chars[i..]
                .iter()
                .position(|c| *c == ')')
                .ok_or_else(|| format!("PIC {text}: unclosed repetition"))?;
            let number: String = chars[i + 1..i + close].iter().collect();
            count = number
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("PIC {text}: bad repetition count ({number})"))?;
            if count > MAX_REPETITION {
                return Err(format!(
                    "PIC {text}: a repetition of {count} is longer than any record ({MAX_REPETITION} at most)"
                ));
            }
            i += close + 1;
        }
        runs.push((symbol, count));
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The parser before runs: every symbol pushed one by one.
    fn reference(text: &str) -> Result<PictureInfo, String> {
        let upper = text.to_ascii_uppercase();
        let mut symbols = Vec::new();
        let chars: Vec<char> = upper.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let symbol = match (chars[i], chars.get(i + 1)) {
                ('C', Some('R')) | ('D', Some('B')) => {
                    i += 2;
                    let two: String = chars[i - 2..i].iter().collect();
                    symbols.extend(std::iter::repeat_n(two.chars().next().unwrap(), 2));
                    continue;
                }
                (c, _) => c,
            };
            i += 1;
            let mut count = 1usize;
            if chars.get(i) == Some(&'(') {
                let close = chars[i..]
                    .iter()
                    .position(|c| *c == ')')
                    .ok_or_else(|| format!("PIC {text}: unclosed repetition"))?;
                let number: String = chars[i + 1..i + close].iter().collect();
                count = number
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("PIC {text}: bad repetition count ({number})"))?;
                if count > MAX_REPETITION {
                    return Err(format!(
                        "PIC {text}: a repetition of {count} is longer than any record ({MAX_REPETITION} at most)"
                    ));
                }
                i += close + 1;
            }
            symbols.extend(std::iter::repeat_n(symbol, count));
        }
        if symbols.is_empty() {
            return Err("PIC with no symbols".into());
        }
        let is = |set: &str| symbols.iter().all(|c| set.contains(*c));
        let class = if is("XA9") && symbols.iter().any(|c| *c == 'X' || *c == 'A') {
            PictureClass::Alphanumeric
        } else if is("9SVP") {
            PictureClass::Numeric
        } else if is("9SVPZ*.,+-CRDB$B0/") {
            PictureClass::Edited
        } else {
            return Err(
                match symbols
                    .iter()
                    .find(|c| !"XA9SVPZ*.,+-CRDB$0/".contains(**c))
                {
                    Some(bad) => format!("PIC {text}: symbol {bad:?} is not supported"),
                    None => format!(
                        "PIC {text}: mixes alphanumeric (X, A) and numeric-edited symbols, which no category allows"
                    ),
                },
            );
        };
        let digits = symbols.iter().filter(|c| **c == '9').count();
        let signed = symbols.first() == Some(&'S');
        if symbols.iter().skip(1).any(|c| *c == 'S')
            || symbols.iter().filter(|c| **c == 'V').count() > 1
        {
            return Err(format!("PIC {text}: S must come first and V at most once"));
        }
        let positions = match class {
            PictureClass::Numeric => digits,
            _ => symbols.iter().filter(|c| !"SVP".contains(**c)).count(),
        };
        let scale = if class == PictureClass::Numeric {
            let after_v = symbols
                .iter()
                .skip_while(|c| **c != 'V')
                .filter(|c| **c == '9')
                .count() as i16;
            let first_digit = symbols.iter().position(|c| *c == '9').unwrap_or(0);
            let leading_p = symbols[..first_digit].iter().filter(|c| **c == 'P').count() as i16;
            let trailing_p = symbols.iter().rev().take_while(|c| **c == 'P').count() as i16;
            after_v + leading_p - trailing_p
        } else {
            0
        };
        if digits > 38 {
            return Err(format!("PIC {text}: {digits} digits, at most 38"));
        }
        Ok(PictureInfo {
            text: text.to_string(),
            class,
            positions,
            digits: digits as u8,
            scale,
            signed,
        })
    }

    proptest! {
        /// Pictures of symbols with and without repetitions read as the
        /// symbol-by-symbol parser read them.
        #[test]
        fn runs_read_pictures_as_single_symbols_did(
            parts in proptest::collection::vec(
                (prop::sample::select(vec!["S", "9", "V", "P", "X", "A", "Z", "*", ".", ",", "+", "-", "CR", "DB", "$", "B", "0", "/", "N", "(", ")"]),
                 prop::option::of(0usize..45)),
                0..8,
            )
        ) {
            let text: String = parts
                .iter()
                .map(|(symbol, count)| match count {
                    Some(n) => format!("{symbol}({n})"),
                    None => symbol.to_string(),
                })
                .collect();
            let (new, old) = (PictureInfo::parse(&text), reference(&text));
            match (&new, &old) {
                (Ok(new), Ok(old)) => prop_assert_eq!(new, old),
                // Over 38 P's: refused now, a scale that wrapped before.
                (Err(why), Ok(_)) => prop_assert!(why.contains("scaling positions"), "{text}: {why}"),
                (Ok(_), Err(why)) => prop_assert!(false, "{text}: accepted now, refused before: {why}"),
                (Err(_), Err(_)) => {}
            }
        }
    }

    #[test]
    fn pictures_give_their_shape() {
        let p = PictureInfo::parse("S9(7)V99").unwrap();
        assert_eq!(
            (p.class, p.positions, p.digits, p.scale, p.signed),
            (PictureClass::Numeric, 9, 9, 2, true)
        );
        let p = PictureInfo::parse("x(20)").unwrap();
        assert_eq!((p.class, p.positions), (PictureClass::Alphanumeric, 20));
        let p = PictureInfo::parse("9(3)PP").unwrap();
        assert_eq!((p.digits, p.scale), (3, -2));
        assert!(p.numeric().is_none());
        let p = PictureInfo::parse("VPP99").unwrap();
        assert_eq!((p.digits, p.scale, p.positions), (2, 4, 2));
        let p = PictureInfo::parse("ZZ,ZZ9.99CR").unwrap();
        assert_eq!((p.class, p.positions), (PictureClass::Edited, 11));
        assert!(PictureInfo::parse("9(0)").is_err());
        assert!(PictureInfo::parse("9S9").is_err());
        assert!(PictureInfo::parse("N(5)").unwrap_err().contains("'N'"));
    }
}
