//! Data description entries into a tree of items, and their layout.

use super::source::Token;
use super::{
    Condition, CopybookError, Item, MAX_FIELDS, MAX_RECORD_BYTES, Occurs, PictureInfo, Usage,
};
use crate::numeric::SignPosition;

fn error(line: usize, message: impl Into<String>) -> CopybookError {
    CopybookError {
        line,
        message: message.into(),
    }
}

/// Reads tokens one by one, naming the line on errors.
struct Tokens {
    tokens: Vec<Token>,
    next: usize,
    line: usize,
}

impl Tokens {
    fn peek(&self) -> Option<String> {
        self.tokens
            .get(self.next)
            .map(|t| t.text.to_ascii_uppercase())
    }

    fn take(&mut self) -> Option<String> {
        let token = self.tokens.get(self.next)?;
        self.line = token.line;
        self.next += 1;
        Some(token.text.clone())
    }

    fn skip(&mut self, words: &[&str]) {
        while self.peek().is_some_and(|w| words.contains(&w.as_str())) {
            self.next += 1;
        }
    }

    fn expect(&mut self, what: &str) -> Result<String, CopybookError> {
        self.take()
            .ok_or_else(|| error(self.line, format!("{what} expected")))
    }

    fn number(&mut self, what: &str) -> Result<u32, CopybookError> {
        let text = self.expect(what)?;
        text.parse()
            .map_err(|_| error(self.line, format!("{what} expected, found {text}")))
    }
}

fn usage_of(word: &str) -> Option<Usage> {
    match word {
        "DISPLAY" => Some(Usage::Display),
        "COMP" | "COMPUTATIONAL" | "COMP-4" | "COMPUTATIONAL-4" | "BINARY" => Some(Usage::Binary),
        "COMP-5" | "COMPUTATIONAL-5" => Some(Usage::NativeBinary),
        "COMP-3" | "COMPUTATIONAL-3" | "PACKED-DECIMAL" => Some(Usage::Packed),
        _ => None,
    }
}

/// One entry, before it is placed in the tree: the item, the condition of
/// a level-88 entry, and whether USAGE was given (else it is inherited).
fn entry(sentence: Vec<Token>) -> Result<(Item, Option<Condition>, bool), CopybookError> {
    let line = sentence[0].line;
    let mut t = Tokens {
        tokens: sentence,
        next: 0,
        line,
    };
    let level: u8 = t
        .take()
        .and_then(|l| l.parse().ok())
        .filter(|l| matches!(l, 1..=49 | 66 | 77 | 88))
        .ok_or_else(|| {
            error(
                line,
                "an entry must start with a level number 01-49, 66, 77 or 88",
            )
        })?;
    let name = match t.peek() {
        Some(word) if word == "FILLER" => {
            t.next += 1;
            None
        }
        Some(word)
            if !matches!(
                word.as_str(),
                "PIC" | "PICTURE" | "USAGE" | "VALUE" | "VALUES" | "OCCURS" | "REDEFINES"
            ) && usage_of(&word).is_none() =>
        {
            t.take().map(|n| n.to_ascii_uppercase())
        }
        _ => None,
    };
    let mut item = Item {
        level,
        name,
        line,
        picture: None,
        usage: Usage::Display,
        sign: None,
        occurs: None,
        redefines: None,
        renames: None,
        justified: false,
        sync: false,
        conditions: Vec::new(),
        children: Vec::new(),
        offset: 0,
        size: 0,
    };
    let mut explicit_usage = false;
    if level == 88 {
        t.skip(&["VALUE", "VALUES", "IS", "ARE"]);
        let mut values = Vec::new();
        while let Some(value) = t.take() {
            let thru = if t.peek().is_some_and(|w| w == "THRU" || w == "THROUGH") {
                t.next += 1;
                Some(t.expect("a value after THRU")?)
            } else {
                None
            };
            values.push((value, thru));
        }
        let name = item
            .name
            .clone()
            .ok_or_else(|| error(line, "a level-88 entry needs a condition name"))?;
        return Ok((item, Some(Condition { name, values }), false));
    }
    if level == 66 {
        if t.take().map(|w| w.to_ascii_uppercase()).as_deref() != Some("RENAMES") {
            return Err(error(line, "a level-66 entry needs RENAMES"));
        }
        let first = t.expect("a data name after RENAMES")?.to_ascii_uppercase();
        let last = if t.peek().is_some_and(|w| w == "THRU" || w == "THROUGH") {
            t.next += 1;
            Some(t.expect("a data name after THRU")?.to_ascii_uppercase())
        } else {
            None
        };
        item.renames = Some((first, last));
        return Ok((item, None, false));
    }
    while let Some(word) = t.take() {
        let word = word.to_ascii_uppercase();
        match word.as_str() {
            "PIC" | "PICTURE" => {
                t.skip(&["IS"]);
                let text = t.expect("a picture string")?;
                item.picture = Some(PictureInfo::parse(&text).map_err(|m| error(t.line, m))?);
            }
            "USAGE" => {
                t.skip(&["IS"]);
                let usage = t.expect("a usage")?.to_ascii_uppercase();
                item.usage = usage_of(&usage)
                    .ok_or_else(|| error(t.line, format!("USAGE {usage} is not supported")))?;
                explicit_usage = true;
            }
            "VALUE" | "VALUES" => {
                t.skip(&["IS", "ARE"]);
                t.expect("a value")?;
                while t.peek().is_some_and(|w| w == "THRU" || w == "THROUGH") {
                    t.next += 1;
                    t.expect("a value after THRU")?;
                }
            }
            "REDEFINES" => {
                item.redefines = Some(
                    t.expect("a data name after REDEFINES")?
                        .to_ascii_uppercase(),
                )
            }
            "OCCURS" => {
                let first = t.number("a count after OCCURS")?;
                let (min, max) = if t.peek().as_deref() == Some("TO") {
                    t.next += 1;
                    (first, t.number("a count after TO")?)
                } else {
                    (first, first)
                };
                t.skip(&["TIMES"]);
                let mut depending_on = None;
                if t.peek().as_deref() == Some("DEPENDING") {
                    t.next += 1;
                    t.skip(&["ON"]);
                    depending_on = Some(
                        t.expect("a data name after DEPENDING ON")?
                            .to_ascii_uppercase(),
                    );
                }
                while matches!(
                    t.peek().as_deref(),
                    Some("ASCENDING" | "DESCENDING" | "INDEXED")
                ) {
                    t.next += 1;
                    t.skip(&["KEY", "IS", "BY"]);
                    while t.peek().is_some_and(|w| !is_clause_word(&w)) {
                        t.next += 1;
                    }
                }
                if max == 0 || min > max {
                    return Err(error(
                        t.line,
                        format!("OCCURS {min} TO {max} is not a valid range"),
                    ));
                }
                item.occurs = Some(Occurs {
                    min,
                    max,
                    depending_on,
                });
            }
            "SIGN" | "LEADING" | "TRAILING" => {
                let position = if word == "SIGN" {
                    t.skip(&["IS"]);
                    t.expect("LEADING or TRAILING after SIGN")?
                        .to_ascii_uppercase()
                } else {
                    word.clone()
                };
                let separate = t.peek().as_deref() == Some("SEPARATE");
                if separate {
                    t.next += 1;
                    t.skip(&["CHARACTER"]);
                }
                item.sign = Some(match (position.as_str(), separate) {
                    ("LEADING", false) => SignPosition::LeadingEmbedded,
                    ("LEADING", true) => SignPosition::LeadingSeparate,
                    ("TRAILING", false) => SignPosition::TrailingEmbedded,
                    ("TRAILING", true) => SignPosition::TrailingSeparate,
                    (other, _) => {
                        return Err(error(
                            t.line,
                            format!("SIGN {other}: LEADING or TRAILING expected"),
                        ));
                    }
                });
            }
            "JUSTIFIED" | "JUST" => {
                item.justified = true;
                t.skip(&["RIGHT"]);
            }
            "SYNC" | "SYNCHRONIZED" => {
                item.sync = true;
                t.skip(&["LEFT", "RIGHT"]);
            }
            "BLANK" => t.skip(&["WHEN", "ZERO", "ZEROS", "ZEROES"]),
            other => match usage_of(other) {
                Some(usage) => {
                    item.usage = usage;
                    explicit_usage = true;
                }
                None => return Err(error(t.line, format!("clause {other} is not supported"))),
            },
        }
    }
    Ok((item, None, explicit_usage))
}

fn is_clause_word(word: &str) -> bool {
    matches!(
        word,
        "PIC"
            | "PICTURE"
            | "USAGE"
            | "VALUE"
            | "VALUES"
            | "OCCURS"
            | "REDEFINES"
            | "SIGN"
            | "JUSTIFIED"
            | "JUST"
            | "SYNC"
            | "SYNCHRONIZED"
            | "INDEXED"
            | "ASCENDING"
            | "DESCENDING"
            | "BLANK"
    ) || usage_of(word).is_some()
}

/// Builds the item tree from the entries, by level numbers.
pub fn items(sentences: Vec<Vec<Token>>) -> Result<Vec<Item>, CopybookError> {
    let mut records: Vec<Item> = Vec::new();
    let mut stack: Vec<Item> = Vec::new();
    fn close_to(stack: &mut Vec<Item>, records: &mut Vec<Item>, level: u8) {
        while stack.last().is_some_and(|top| top.level >= level) {
            let done = stack.pop().expect("checked");
            match stack.last_mut() {
                Some(parent) => parent.children.push(done),
                None => records.push(done),
            }
        }
    }
    for sentence in sentences {
        let (mut item, condition, explicit_usage) = entry(sentence)?;
        if let Some(condition) = condition {
            let target = stack.last_mut().ok_or_else(|| {
                error(
                    item.line,
                    "a level-88 entry must follow the item it describes",
                )
            })?;
            target.conditions.push(condition);
            continue;
        }
        let level = match item.level {
            1 | 66 | 77 => 1,
            n => n,
        };
        if item.level == 66 {
            close_to(&mut stack, &mut records, 2);
            match stack.last_mut() {
                Some(record) => record.children.push(item),
                None => return Err(error(item.line, "a level-66 entry must follow a record")),
            }
            continue;
        }
        close_to(&mut stack, &mut records, level);
        if level != 1 && stack.is_empty() {
            return Err(error(
                item.line,
                format!("level {:02} has no 01 record above it", item.level),
            ));
        }
        if let Some(parent) = stack.last() {
            if parent.picture.is_some() {
                return Err(error(
                    item.line,
                    format!("{} has a PICTURE, so it cannot contain items", name(parent)),
                ));
            }
            if !explicit_usage {
                item.usage = parent.usage;
            }
            item.sign = item.sign.or(parent.sign);
        }
        stack.push(item);
    }
    close_to(&mut stack, &mut records, 1);
    if records.is_empty() {
        return Err(error(1, "the copybook has no data description entries"));
    }
    Ok(records)
}

/// A record longer than any a copybook may describe.
fn too_long(item: &Item) -> CopybookError {
    error(
        item.line,
        format!(
            "{} ends past the largest record a copybook may describe ({MAX_RECORD_BYTES} bytes)",
            name(item)
        ),
    )
}

/// Refuses a laid-out record longer than [`MAX_RECORD_BYTES`] or that
/// expands to more than [`MAX_FIELDS`] elementary fields.
pub fn check_bounds(record: &Item) -> Result<(), CopybookError> {
    if record
        .size
        .checked_mul(record.occurs.as_ref().map_or(1, |o| o.max as usize))
        .is_none_or(|size| size > MAX_RECORD_BYTES)
    {
        return Err(too_long(record));
    }
    let fields = expanded_fields(record);
    if fields > MAX_FIELDS {
        return Err(error(
            record.line,
            format!(
                "{} expands to {fields} elementary fields (each entry of a table counted), more than the {MAX_FIELDS} a record may have",
                name(record)
            ),
        ));
    }
    Ok(())
}

/// How many elementary fields `item` expands to, tables entry by entry
/// (as [`super::Copybook::fields`] lists them), counted without listing
/// them.
fn expanded_fields(item: &Item) -> u64 {
    let each = if item.is_elementary() {
        1
    } else {
        item.children
            .iter()
            .map(expanded_fields)
            .fold(0, u64::saturating_add)
    };
    each.saturating_mul(item.occurs.as_ref().map_or(1, |o| u64::from(o.max)))
}

fn name(item: &Item) -> String {
    item.name.clone().unwrap_or_else(|| "FILLER".into())
}

/// Sizes and offsets: an elementary item's size comes from its picture and
/// usage; a group's is the extent of its children; a REDEFINES child starts
/// where the item it redefines starts.
pub fn layout(item: &mut Item, offset: usize) -> Result<(), CopybookError> {
    item.offset = offset;
    if let Some(picture) = &item.picture {
        item.size = match item.usage {
            super::Usage::Display => {
                let separate = picture.signed
                    && matches!(
                        item.sign,
                        Some(SignPosition::LeadingSeparate | SignPosition::TrailingSeparate)
                    );
                picture.positions + usize::from(separate)
            }
            other => {
                if picture.class != super::PictureClass::Numeric {
                    return Err(error(
                        item.line,
                        format!(
                            "{} has USAGE {other:?} but a non-numeric PICTURE {}",
                            name(item),
                            picture.text
                        ),
                    ));
                }
                let numeric = crate::numeric::Picture {
                    digits: picture.digits,
                    scale: 0,
                    signed: picture.signed,
                };
                match other {
                    super::Usage::Packed => crate::numeric::Packed(numeric).byte_len(),
                    _ => crate::numeric::Binary {
                        picture: numeric,
                        native: other == super::Usage::NativeBinary,
                    }
                    .byte_len(),
                }
            }
        };
        if !item.children.is_empty() {
            return Err(error(
                item.line,
                format!("{} has a PICTURE and subordinate items", name(item)),
            ));
        }
        return Ok(());
    }
    if item.children.is_empty() && item.renames.is_none() {
        return Err(error(
            item.line,
            format!("{} has neither a PICTURE nor subordinate items", name(item)),
        ));
    }
    let mut next = offset;
    let mut end = offset;
    let mut placed: Vec<(Option<String>, usize)> = Vec::new();
    for child in &mut item.children {
        if child.renames.is_some() {
            continue;
        }
        let start = match &child.redefines {
            Some(target) => placed
                .iter()
                .rev()
                .find(|(n, _)| n.as_deref() == Some(target.as_str()))
                .map(|(_, at)| *at)
                .ok_or_else(|| {
                    error(
                        child.line,
                        format!("REDEFINES {target}: no earlier item of that name at this level"),
                    )
                })?,
            None => next,
        };
        layout(child, start)?;
        placed.push((child.name.clone(), start));
        let child_end = child
            .size
            .checked_mul(child.occurs.as_ref().map_or(1, |o| o.max as usize))
            .and_then(|size| size.checked_add(start))
            .filter(|end| *end <= MAX_RECORD_BYTES)
            .ok_or_else(|| too_long(child))?;
        if child.redefines.is_none() {
            next = child_end;
        }
        end = end.max(child_end);
    }
    item.size = end - offset;
    Ok(())
}
