//! COBOL copybooks: the record layouts of mainframe datasets.
//!
//! [`Copybook::parse`] reads the data-division subset real copybooks use
//! (levels 01-49, 66, 77, 88; PIC with S, V, P and repetition counts; USAGE
//! DISPLAY, COMP, COMP-3, COMP-4, COMP-5, BINARY, PACKED-DECIMAL; SIGN
//! LEADING/TRAILING \[SEPARATE\]; OCCURS n and OCCURS DEPENDING ON;
//! REDEFINES; FILLER; JUSTIFIED, SYNC and BLANK WHEN ZERO accepted) and
//! lays the items out: every item gets its offset and size in the record.
//! An unsupported clause is an error naming its line.
//!
//! A copybook may come from anyone allowed to DEFINE, so its cost is
//! bounded by its text: a record is at most [`MAX_RECORD_BYTES`] long and
//! expands to at most [`MAX_FIELDS`] fields, and a picture's repetitions
//! are counted, never spelled out.

mod parse;
mod picture;
mod source;

/// The largest record a copybook may describe (16 MiB): larger than any
/// record a dataset may have, and small enough that sizes never overflow,
/// on a 32-bit plugin as on the host.
pub const MAX_RECORD_BYTES: usize = 1 << 24;

/// The most elementary fields a record may expand to, each entry of a
/// table counted (65,536): a real layout has a few thousand at most, and
/// the fields are listed whole wherever a record is shown or stored by
/// field (a copybook may come from a client's DEFINE: 89 KB of REDEFINES
/// and OCCURS expanded to 60 million fields, a minute of CPU and gigabytes
/// of memory, before this bound).
pub const MAX_FIELDS: u64 = 1 << 16;

pub use picture::{PictureClass, PictureInfo};

use crate::codepage::CodePage;
use crate::numeric::{Binary, NumberCodec, Packed, SignPosition, Zoned};
use std::fmt;

/// How an item's data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// One character (or zoned digit) per byte.
    Display,
    /// COMP, COMP-4, BINARY: big-endian binary.
    Binary,
    /// COMP-5: native binary.
    NativeBinary,
    /// COMP-3, PACKED-DECIMAL.
    Packed,
}

/// OCCURS: a table of `max` entries (`min` to `max` with DEPENDING ON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurs {
    /// Fewest entries.
    pub min: u32,
    /// Most entries (the storage laid out).
    pub max: u32,
    /// The item holding the current count, for OCCURS DEPENDING ON.
    pub depending_on: Option<String>,
}

/// A level-88 condition name and its values (`THRU` ranges as pairs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Condition name.
    pub name: String,
    /// Values or ranges, as written.
    pub values: Vec<(String, Option<String>)>,
}

/// One data description entry and what it contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Level number (1-49, 66 or 77).
    pub level: u8,
    /// Data name; `None` for FILLER (or an unnamed item).
    pub name: Option<String>,
    /// Line of the entry in the copybook.
    pub line: usize,
    /// PICTURE of an elementary item.
    pub picture: Option<PictureInfo>,
    /// USAGE (inherited from the group when not given).
    pub usage: Usage,
    /// SIGN clause (inherited from the group when not given).
    pub sign: Option<SignPosition>,
    /// OCCURS clause.
    pub occurs: Option<Occurs>,
    /// REDEFINES target.
    pub redefines: Option<String>,
    /// RENAMES (level 66): first and optional THRU item.
    pub renames: Option<(String, Option<String>)>,
    /// JUSTIFIED RIGHT.
    pub justified: bool,
    /// SYNCHRONIZED (accepted; no slack bytes are inserted).
    pub sync: bool,
    /// Level-88 conditions on this item.
    pub conditions: Vec<Condition>,
    /// Subordinate items.
    pub children: Vec<Item>,
    /// Offset in the record of the first occurrence.
    pub offset: usize,
    /// Size in bytes of one occurrence.
    pub size: usize,
}

impl Item {
    /// Size in bytes with all occurrences.
    pub fn total_size(&self) -> usize {
        self.size
            .saturating_mul(self.occurs.as_ref().map_or(1, |o| o.max as usize))
    }

    /// True for an item with a PICTURE (no children).
    pub fn is_elementary(&self) -> bool {
        self.picture.is_some()
    }
}

/// A parsed copybook: its records (level 01 and 77 items), laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copybook {
    /// Top-level items.
    pub records: Vec<Item>,
}

/// A copybook error: the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopybookError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CopybookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "copybook line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for CopybookError {}

/// One elementary field of a record, with its place, after OCCURS tables
/// are expanded (`ITEM(2)`, `ITEM(2,1)`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Data name with subscripts; `FILLER` for unnamed items.
    pub name: String,
    /// Offset in the record.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// Picture.
    pub picture: PictureInfo,
    /// Usage.
    pub usage: Usage,
    /// Sign position of a signed DISPLAY field.
    pub sign: SignPosition,
    /// True for fields inside a REDEFINES: another view of bytes that
    /// fields laid out earlier already cover.
    pub redefined: bool,
}

impl Field {
    /// The codec of a numeric field in a dataset of `codepage`; `None` for
    /// text, edited numbers and pictures with trailing `P` scaling.
    pub fn number_codec(&self, codepage: CodePage) -> Option<NumberCodec> {
        let picture = self.picture.numeric()?;
        Some(match self.usage {
            Usage::Display => NumberCodec::Zoned(Zoned {
                picture,
                sign: self.sign,
                codepage,
            }),
            Usage::Packed => NumberCodec::Packed(Packed(picture)),
            Usage::Binary => NumberCodec::Binary(Binary {
                picture,
                native: false,
            }),
            Usage::NativeBinary => NumberCodec::Binary(Binary {
                picture,
                native: true,
            }),
        })
    }
}

impl Copybook {
    /// Parses and lays out a copybook.
    pub fn parse(text: &str) -> Result<Self, CopybookError> {
        let sentences =
            source::sentences(text).map_err(|(line, message)| CopybookError { line, message })?;
        let mut records = parse::items(sentences)?;
        for record in &mut records {
            parse::layout(record, 0)?;
            parse::check_bounds(record)?;
        }
        Ok(Self { records })
    }

    /// The first record (the usual case of one 01 level per copybook).
    pub fn record(&self) -> Option<&Item> {
        self.records.first()
    }

    /// The elementary fields of the first record, tables expanded, in
    /// offset order.
    pub fn fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        if let Some(record) = self.record() {
            collect(record, record.offset, "", false, &mut out);
        }
        out.sort_by_key(|f| (f.offset, f.redefined));
        out
    }
}

fn collect(item: &Item, offset: usize, suffix: &str, redefined: bool, out: &mut Vec<Field>) {
    let redefined = redefined || item.redefines.is_some();
    let count = item.occurs.as_ref().map_or(1, |o| o.max as usize);
    for index in 0..count {
        let suffix = if item.occurs.is_some() {
            if suffix.is_empty() {
                format!("({})", index + 1)
            } else {
                format!("{},{})", &suffix[..suffix.len() - 1], index + 1)
            }
        } else {
            suffix.to_string()
        };
        let start = offset + index * item.size;
        match &item.picture {
            Some(picture) => out.push(Field {
                name: format!("{}{suffix}", item.name.as_deref().unwrap_or("FILLER")),
                offset: start,
                size: item.size,
                picture: picture.clone(),
                usage: item.usage,
                sign: item.sign.unwrap_or(SignPosition::TrailingEmbedded),
                redefined,
            }),
            None => {
                for child in &item.children {
                    collect(
                        child,
                        start + (child.offset - item.offset),
                        &suffix,
                        redefined,
                        out,
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
