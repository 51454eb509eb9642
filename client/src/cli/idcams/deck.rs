//! An IDCAMS deck as written: the SYSIN records of a job step (or a whole
//! job's JCL, whose in-stream SYSIN is taken), turned into commands.
//!
//! The rules are IDCAMS's: `/* ... */` comments (across lines too); a `-`
//! at the end of a line continues the command on the next line, a `+`
//! continues it inside a word (the next line's leading blanks dropped);
//! `;` ends a command within a line; columns 73-80 of a card image hold a
//! sequence number and are ignored.

use std::collections::BTreeMap;

/// One command of the deck: its text with comments and continuations
/// resolved, and the records it was written on (listed as IDCAMS lists
/// its input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The line of the deck where it starts (from 1).
    pub line: usize,
    /// The command, one line.
    pub text: String,
    /// The records as written.
    pub source: Vec<String>,
}

/// A deck: its commands, and the datasets the DD statements of its JCL
/// step name (`//BASE DD DSN=PROD.CUST`: BASE to PROD.CUST), which
/// INFILE, OUTFILE and FILE use.
#[derive(Debug, Default)]
pub struct Deck {
    pub commands: Vec<Command>,
    pub dds: BTreeMap<String, String>,
}

/// Reads a deck: SYSIN records, or JCL whose IDCAMS step has an in-stream
/// SYSIN (`//SYSIN DD *`); with several such steps, `step` names the one
/// to run.
pub fn read(text: &str, step: Option<&str>) -> Result<Deck, String> {
    let lines: Vec<&str> = text.lines().collect();
    if !lines.iter().any(|line| line.starts_with("//")) {
        return Ok(Deck {
            commands: commands(lines.iter().enumerate().map(|(i, l)| (i + 1, *l)))?,
            dds: BTreeMap::new(),
        });
    }
    let steps = jcl_steps(&lines);
    let with_sysin: Vec<&JclStep> = steps.iter().filter(|s| s.sysin.is_some()).collect();
    let chosen = match step {
        Some(name) => steps
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!(
                    "the JCL has no step {name}; its steps: {}",
                    names(&steps.iter().collect::<Vec<_>>())
                )
            })?,
        None => match with_sysin.as_slice() {
            [one] => one,
            [] => {
                return Err(
                    "the JCL has no in-stream SYSIN (//SYSIN DD * followed by the IDCAMS commands)"
                        .into(),
                );
            }
            several => {
                return Err(format!(
                    "the JCL has {} steps with an in-stream SYSIN ({}): name one with --step",
                    several.len(),
                    names(several)
                ));
            }
        },
    };
    let Some((first, last)) = chosen.sysin else {
        return Err(format!(
            "step {} has no in-stream SYSIN (//SYSIN DD *)",
            chosen.name
        ));
    };
    Ok(Deck {
        commands: commands((first..last).map(|i| (i + 1, lines[i])))?,
        dds: chosen.dds.clone(),
    })
}

fn names(steps: &[&JclStep]) -> String {
    steps
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One step of a job: its name, its DD statements naming datasets, and
/// where its in-stream SYSIN lies (line indexes, end excluded).
struct JclStep {
    name: String,
    dds: BTreeMap<String, String>,
    sysin: Option<(usize, usize)>,
}

/// The steps of a job's JCL.
fn jcl_steps(lines: &[&str]) -> Vec<JclStep> {
    let mut steps: Vec<JclStep> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let Some(statement) = line.strip_prefix("//") else {
            continue;
        };
        if statement.starts_with('*') {
            continue;
        }
        let mut fields = statement.split_whitespace();
        let (name, operation) = match statement.starts_with(' ') {
            true => ("", fields.next().unwrap_or("")),
            false => (fields.next().unwrap_or(""), fields.next().unwrap_or("")),
        };
        let mut operands = fields.next().unwrap_or("").to_string();
        // Operands continue on the next // line after a trailing comma.
        while operands.ends_with(',') && i < lines.len() && lines[i].starts_with("// ") {
            operands.push_str(lines[i][2..].split_whitespace().next().unwrap_or(""));
            i += 1;
        }
        match operation.to_ascii_uppercase().as_str() {
            "EXEC" => steps.push(JclStep {
                name: name.to_ascii_uppercase(),
                dds: BTreeMap::new(),
                sysin: None,
            }),
            "DD" => {
                let Some(step) = steps.last_mut() else {
                    continue;
                };
                let upper = operands.to_ascii_uppercase();
                let in_stream =
                    upper == "*" || upper.starts_with("*,") || upper.starts_with("DATA");
                if in_stream {
                    let first = i;
                    while i < lines.len() && !lines[i].starts_with("//") && !is_delimiter(lines[i])
                    {
                        i += 1;
                    }
                    if name.eq_ignore_ascii_case("SYSIN") {
                        step.sysin = Some((first, i));
                    }
                    continue;
                }
                if let Some(dsn) = upper.split(',').find_map(|operand| {
                    operand
                        .strip_prefix("DSN=")
                        .or(operand.strip_prefix("DSNAME="))
                }) && !name.is_empty()
                {
                    step.dds.insert(name.to_ascii_uppercase(), dsn.to_string());
                }
            }
            _ => {}
        }
    }
    steps
}

/// The `/*` that ends in-stream data.
fn is_delimiter(line: &str) -> bool {
    line.starts_with("/*") && line[2..].chars().next().is_none_or(char::is_whitespace)
}

/// The commands of SYSIN records, given with their line numbers.
fn commands<'a>(lines: impl Iterator<Item = (usize, &'a str)>) -> Result<Vec<Command>, String> {
    let mut commands: Vec<Command> = Vec::new();
    let mut text = String::new();
    let mut source = Vec::new();
    let mut start = 0;
    let mut in_comment = false;
    let mut comment_opened = 0;
    let mut in_word = false;
    for (number, raw) in lines {
        source.push(raw.trim_end().to_string());
        let (clean, open) = strip_comments(card_image(raw), in_comment);
        if open && !in_comment {
            comment_opened = number;
        }
        in_comment = open;
        let pieces = split_commands(&clean);
        let last = pieces.len() - 1;
        for (i, piece) in pieces.iter().enumerate() {
            let mut piece = piece.trim_end();
            let mut continues = false;
            let mut word_goes_on = false;
            if i == last {
                if let Some(body) = piece.strip_suffix('-') {
                    (piece, continues) = (body, true);
                } else if let Some(body) = piece.strip_suffix('+') {
                    (piece, continues, word_goes_on) = (body, true, true);
                } else if in_comment && !(text.is_empty() && piece.trim().is_empty()) {
                    // A comment running on to the next line: the command
                    // goes on after it.
                    continues = true;
                }
            }
            if text.is_empty() {
                start = number;
            }
            if in_word {
                text.push_str(piece.trim_start());
            } else if !piece.trim().is_empty() {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(piece.trim());
            }
            in_word = word_goes_on;
            if continues {
                continue;
            }
            if !text.is_empty() {
                commands.push(Command {
                    line: start,
                    text: std::mem::take(&mut text),
                    source: std::mem::take(&mut source),
                });
            } else if let Some(previous) = commands.last_mut() {
                // A record of blanks or comments only is listed with the
                // command before it (those before the first command, with
                // the first).
                previous.source.append(&mut source);
            }
        }
    }
    if in_comment {
        return Err(format!(
            "the comment opened (/*) on line {comment_opened} is not closed (*/) before the end of the deck: close it, or the commands after it are read as comment"
        ));
    }
    if !text.is_empty() {
        return Err(format!(
            "the command starting on line {start} ends with a continuation (- or +) and no line follows"
        ));
    }
    Ok(commands)
}

/// A record without its sequence number: on a card image (longer than
/// 72 columns, columns 73-80 holding only digits or blanks), columns
/// 73-80 are left out, as IDCAMS reads only columns 1-72.
fn card_image(raw: &str) -> &str {
    let line = raw.trim_end_matches(['\r', '\n']);
    match line.char_indices().nth(72) {
        Some((at, _)) if line[at..].chars().all(|c| c.is_ascii_digit() || c == ' ') => &line[..at],
        _ => line,
    }
}

/// The line without its comments (each replaced by a blank); whether a
/// comment is still open at its end. Quotes protect `/*`.
fn strip_comments(line: &str, mut in_comment: bool) -> (String, bool) {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if in_comment {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                in_comment = false;
                out.push(' ');
            }
            continue;
        }
        if c == '\'' {
            quoted = !quoted;
        } else if !quoted && c == '/' && chars.peek() == Some(&'*') {
            chars.next();
            in_comment = true;
            continue;
        }
        out.push(c);
    }
    (out, in_comment)
}

/// Splits a line at the semicolons outside quotes.
fn split_commands(line: &str) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                pieces.last_mut().expect("one piece").push(c);
            }
            ';' if !quoted => pieces.push(String::new()),
            _ => pieces.last_mut().expect("one piece").push(c),
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(deck: &str) -> Vec<String> {
        read(deck, None)
            .unwrap()
            .commands
            .into_iter()
            .map(|c| c.text)
            .collect()
    }

    #[test]
    fn continuations_comments_and_semicolons_make_commands() {
        let deck = "\
 /* THE CUSTOMER FILE */
  DEFINE CLUSTER (NAME(PROD.CUST) -     /* ITS NAME */
         INDEXED KEYS(8 0)    -
         RECSZ(80 200))
  LISTCAT ENT(PROD.C+
              UST) ALL ; SET MAXCC = 0
";
        assert_eq!(
            texts(deck),
            [
                "DEFINE CLUSTER (NAME(PROD.CUST) INDEXED KEYS(8 0) RECSZ(80 200))",
                "LISTCAT ENT(PROD.CUST) ALL",
                "SET MAXCC = 0",
            ]
        );
    }

    #[test]
    fn a_comment_may_span_lines_and_quotes_protect_its_marks() {
        let deck = "\
  PRINT IDS(A.B) /* A COMMENT
     ON TWO LINES */ -
     FROMKEY('/*X')
";
        assert_eq!(texts(deck), ["PRINT IDS(A.B) FROMKEY('/*X')"]);
        let unclosed = read(
            "  DELETE A /* CLOSED */\n  DELETE B /* NEVER\n  CLOSED /* STILL\n  DELETE C\n",
            None,
        )
        .unwrap_err();
        assert!(
            unclosed.starts_with("the comment opened (/*) on line 2 is not closed"),
            "{unclosed}"
        );
        assert!(read("  DELETE A -\n", None).is_err());
    }

    #[test]
    fn card_images_lose_their_sequence_numbers_only() {
        let card = format!("{:<72}{}", "  DELETE PROD.CUST CLUSTER", "00010000");
        assert_eq!(texts(&card), ["DELETE PROD.CUST CLUSTER"]);
        let long = format!("  DELETE ({} PROD.B)", "PROD.A ".repeat(12));
        assert!(
            texts(&long)[0].ends_with("PROD.B)"),
            "a long line is kept whole"
        );
    }

    #[test]
    fn jcl_gives_its_in_stream_sysin_and_dataset_dds() {
        let jcl = "\
//LOADJOB  JOB (ACCT),'LOAD',CLASS=A
//STEP1    EXEC PGM=IDCAMS
//SYSPRINT DD SYSOUT=*
//BASE     DD DSN=PROD.CUST,DISP=SHR
//SYSIN    DD *
  VERIFY FILE(BASE)
/*
//STEP2    EXEC PGM=IDCAMS
//SYSIN    DD *
  LISTCAT LEVEL(PROD)
/*
";
        assert!(read(jcl, None).unwrap_err().contains("STEP1, STEP2"));
        let deck = read(jcl, Some("step1")).unwrap();
        assert_eq!(deck.commands[0].text, "VERIFY FILE(BASE)");
        assert_eq!(deck.dds.get("BASE"), Some(&"PROD.CUST".to_string()));
        let two = read(jcl, Some("STEP2")).unwrap();
        assert_eq!(two.commands.len(), 1);
        assert!(two.dds.is_empty());
    }
}
