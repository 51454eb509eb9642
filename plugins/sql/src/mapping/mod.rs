//! Mapped mode: a record split into one typed value per elementary field of
//! its COBOL copybook, and rebuilt from them.
//!
//! Text fields (PIC X, A and numeric-edited) become text in the dataset's
//! code page without trailing spaces; zoned and packed decimals become exact
//! decimals; binary fields become integers (decimals if they have a scale).
//! FILLER, areas under REDEFINES (already covered by the first definition)
//! and bytes no field covers are kept as the record's *residue*, so every
//! byte has a home.
//!
//! A record shorter than the layout (variable-length records, OCCURS
//! DEPENDING ON) is split as if padded with spaces, and its length is kept.
//!
//! [`Mapping::split`] only accepts a record that [`Mapping::build`] rebuilds
//! byte for byte from the split values; any other record (a bad packed
//! decimal, a non-preferred sign, a control character in a text field, a
//! record longer than the layout) is refused with the reason, and the store
//! keeps it raw.

use crate::columns;
use vsam_plugin_sdk::codepage::CodePage;
use vsam_plugin_sdk::copybook::{Copybook, PictureClass, Usage};
use vsam_plugin_sdk::numeric::{Decimal, NumberCodec, Picture};

/// What a column holds.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Characters, at most `size` of them.
    Text,
    /// A binary integer without decimal places: a 64-bit integer column.
    Integer(NumberCodec),
    /// An exact decimal of the picture's digits and scale.
    Decimal(NumberCodec, Picture),
}

/// One column of a mapped table: an elementary field of the copybook.
#[derive(Debug, Clone)]
pub struct Column {
    /// SQL column name.
    pub name: String,
    /// COBOL name with subscripts, for messages.
    pub field: String,
    /// Place in the record.
    pub offset: usize,
    /// Size in the record, in bytes.
    pub size: usize,
    /// Value type.
    pub kind: Kind,
}

/// A column value, before it is given a dialect's SQL type.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value (a SQL writer left the column NULL): spaces or zero.
    Null,
    /// Text without trailing spaces.
    Text(String),
    /// A number.
    Number(Decimal),
}

/// The columns of a dataset's table and where their bytes are.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Columns in record order.
    pub columns: Vec<Column>,
    /// Byte ranges no column covers, in order.
    residue: Vec<(usize, usize)>,
    /// Record length the layout describes.
    pub size: usize,
    codepage: CodePage,
}

impl Mapping {
    /// The mapping of `layout` for records in `codepage`. Fails for a
    /// copybook with more than one record layout (multi-record-type files
    /// are stored raw: define them without a layout).
    pub fn new(layout: &str, codepage: CodePage) -> Result<Self, String> {
        let copybook = Copybook::parse(layout).map_err(|e| e.to_string())?;
        let records: Vec<&str> = copybook
            .records
            .iter()
            .filter(|r| r.level == 1)
            .map(|r| r.name.as_deref().unwrap_or("FILLER"))
            .collect();
        if records.len() > 1 {
            return Err(format!(
                "the copybook describes {} record types ({}); mapped mode needs one layout. \
                 Describe the variants with REDEFINES under one 01 level, or define the \
                 dataset without a layout to store its records raw",
                records.len(),
                records.join(", ")
            ));
        }
        let record = copybook
            .record()
            .ok_or("the copybook describes no record (no 01 level)")?;
        let size = record.total_size();
        let mut fields = Vec::new();
        for field in copybook.fields() {
            if field.redefined || field.name.starts_with("FILLER") {
                continue;
            }
            let kind = match (field.number_codec(codepage), field.usage) {
                (Some(codec), Usage::Binary | Usage::NativeBinary)
                    if field.picture.scale == 0 && field.picture.digits <= 18 =>
                {
                    Kind::Integer(codec)
                }
                (Some(codec), _) => {
                    let picture = field
                        .picture
                        .numeric()
                        .expect("numeric codec has a picture");
                    Kind::Decimal(codec, picture)
                }
                (None, Usage::Display) if field.picture.class != PictureClass::Numeric => {
                    Kind::Text
                }
                // Scaled pictures (trailing P) and the like stay in the residue.
                _ => continue,
            };
            fields.push((field, kind));
        }
        let names = columns::column_names(fields.iter().map(|(f, _)| f.name.as_str()));
        let columns: Vec<Column> = fields
            .into_iter()
            .zip(names)
            .map(|((field, kind), name)| Column {
                name,
                field: field.name,
                offset: field.offset,
                size: field.size,
                kind,
            })
            .collect();
        let mut residue = Vec::new();
        let mut at = 0;
        for column in &columns {
            if column.offset > at {
                residue.push((at, column.offset));
            }
            at = at.max(column.offset + column.size);
        }
        if at < size {
            residue.push((at, size));
        }
        Ok(Self {
            columns,
            residue,
            size,
            codepage,
        })
    }

    /// True if some bytes are not in any column.
    pub fn has_residue(&self) -> bool {
        !self.residue.is_empty()
    }

    /// The column values, residue and (if shorter than the layout) length
    /// of a record, or why it cannot be represented exactly by them.
    pub fn split(&self, original: &[u8]) -> Result<Split, String> {
        if original.len() > self.size {
            return Err(format!(
                "the record is {} bytes, longer than the {} the layout describes",
                original.len(),
                self.size
            ));
        }
        let length = (original.len() < self.size).then_some(original.len());
        let mut padded;
        let record = if length.is_some() {
            padded = original.to_vec();
            padded.resize(self.size, self.codepage.space());
            &padded[..]
        } else {
            original
        };
        let mut cells = Vec::with_capacity(self.columns.len());
        for column in &self.columns {
            let bytes = &record[column.offset..column.offset + column.size];
            let cell = match &column.kind {
                Kind::Text => {
                    if let Some(&bad) = bytes.iter().find(|&&b| !self.codepage.is_printable(b)) {
                        return Err(format!(
                            "field {} holds byte X'{bad:02X}', which is not a printable character in {}",
                            column.field, self.codepage
                        ));
                    }
                    let text = self.codepage.decode_lossy(bytes);
                    Cell::Text(text.trim_end_matches(' ').to_string())
                }
                Kind::Integer(codec) | Kind::Decimal(codec, _) => Cell::Number(
                    codec
                        .decode(bytes)
                        .map_err(|e| format!("field {} ({}): {e}", column.field, hex(bytes)))?,
                ),
            };
            cells.push(cell);
        }
        let residue: Vec<u8> = self
            .residue
            .iter()
            .flat_map(|&(from, to)| record[from..to].iter().copied())
            .collect();
        let rebuilt = self.build(&cells, Some(&residue), None)?;
        if rebuilt != record {
            let at = rebuilt
                .iter()
                .zip(record)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            let field = self
                .columns
                .iter()
                .find(|c| (c.offset..c.offset + c.size).contains(&at))
                .map_or("the residue".to_string(), |c| format!("field {}", c.field));
            return Err(format!(
                "{field} is not in its standard form (byte {} would change from X'{:02X}' to X'{:02X}')",
                at + 1,
                record[at],
                rebuilt[at]
            ));
        }
        Ok(Split {
            cells,
            residue,
            length,
        })
    }

    /// Rebuilds a record from column values, residue (spaces where a SQL
    /// writer gave none) and length (the layout's size if `None`).
    pub fn build(
        &self,
        cells: &[Cell],
        residue: Option<&[u8]>,
        length: Option<usize>,
    ) -> Result<Vec<u8>, String> {
        let space = self.codepage.space();
        let mut record = vec![space; self.size];
        if let Some(residue) = residue {
            let mut from_residue = residue.iter().copied();
            for &(from, to) in &self.residue {
                for byte in &mut record[from..to] {
                    *byte = from_residue.next().unwrap_or(space);
                }
            }
        }
        for (column, cell) in self.columns.iter().zip(cells) {
            let place = &mut record[column.offset..column.offset + column.size];
            match (&column.kind, cell) {
                (Kind::Text, Cell::Null) => place.fill(space),
                (Kind::Text, Cell::Text(text)) => {
                    let bytes = self
                        .codepage
                        .encode(text)
                        .map_err(|e| format!("column {} ({}): {e}", column.name, column.field))?;
                    if bytes.len() > column.size {
                        return Err(format!(
                            "column {} holds {} characters; field {} has room for {}",
                            column.name,
                            bytes.len(),
                            column.field,
                            column.size
                        ));
                    }
                    place[..bytes.len()].copy_from_slice(&bytes);
                    place[bytes.len()..].fill(space);
                }
                (Kind::Integer(codec) | Kind::Decimal(codec, _), cell) => {
                    let value = match cell {
                        Cell::Number(n) => *n,
                        Cell::Null => Decimal::new(0, 0),
                        Cell::Text(t) => t.trim().parse::<Decimal>().map_err(|e| {
                            format!("column {} holds {t:?}, not a number: {e}", column.name)
                        })?,
                    };
                    let bytes = codec
                        .encode(value)
                        .map_err(|e| format!("column {} ({}): {e}", column.name, column.field))?;
                    place.copy_from_slice(&bytes);
                }
                (Kind::Text, Cell::Number(n)) => {
                    return Err(format!(
                        "column {} is text but holds the number {n}",
                        column.name
                    ));
                }
            }
        }
        if let Some(length) = length {
            record.truncate(length);
        }
        Ok(record)
    }
}

/// A record as column values.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// One value per column.
    pub cells: Vec<Cell>,
    /// The bytes no column covers.
    pub residue: Vec<u8>,
    /// The record length if shorter than the layout.
    pub length: Option<usize>,
}

fn hex(bytes: &[u8]) -> String {
    let digits: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    format!("X'{digits}'")
}

#[cfg(test)]
mod tests;
