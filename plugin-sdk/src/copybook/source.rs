//! From copybook text to sentences: comments and sequence areas removed,
//! each sentence (one data description entry) with its line and tokens.

/// One token of a sentence, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The text (quoted literals keep their quotes).
    pub text: String,
    /// 1-based line number.
    pub line: usize,
}

/// Whether the source uses the fixed reference format (columns 1-6 sequence
/// numbers, column 7 indicator, text in columns 8-72): true when every
/// non-blank line starts with six spaces or digits and one is longer.
fn is_fixed_format(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    !lines.is_empty()
        && lines
            .iter()
            .all(|l| l.len() >= 7 && l.bytes().take(6).all(|b| b == b' ' || b.is_ascii_digit()))
}

/// The code part of each line, by line number (comments dropped).
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let fixed = is_fixed_format(text);
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let code = if fixed {
                let indicator = line.chars().nth(6).unwrap_or(' ');
                if matches!(indicator, '*' | '/') {
                    return None;
                }
                line.chars().skip(7).take(65).collect::<String>()
            } else {
                line.to_string()
            };
            let code = match code.find("*>") {
                Some(at) => code[..at].to_string(),
                None => code,
            };
            Some((i + 1, code))
        })
        .collect()
}

/// Splits the source into sentences of tokens. A sentence ends at a period
/// followed by white space or the end of a line; quoted literals may hold
/// spaces and periods.
pub fn sentences(text: &str) -> Result<Vec<Vec<Token>>, (usize, String)> {
    let mut sentences = Vec::new();
    let mut current: Vec<Token> = Vec::new();
    for (line, code) in code_lines(text) {
        let chars: Vec<char> = code.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() || c == ',' || c == ';' {
                i += 1;
                continue;
            }
            let start = i;
            if c == '\'' || c == '"' {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err((line, "a literal is not closed on its line".into()));
                }
                i += 1;
            } else {
                while i < chars.len() && !chars[i].is_whitespace() {
                    if chars[i] == '.' && chars.get(i + 1).is_none_or(|n| n.is_whitespace()) {
                        break;
                    }
                    i += 1;
                }
            }
            let text: String = chars[start..i].iter().collect();
            if !text.is_empty() {
                current.push(Token { text, line });
            }
            if chars.get(i) == Some(&'.') {
                i += 1;
                if !current.is_empty() {
                    sentences.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if let Some(last) = current.first() {
        return Err((last.line, "the last entry has no closing period".into()));
    }
    Ok(sentences)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sentences: &[Vec<Token>]) -> Vec<Vec<&str>> {
        sentences
            .iter()
            .map(|s| s.iter().map(|t| t.text.as_str()).collect())
            .collect()
    }

    #[test]
    fn fixed_format_drops_sequence_numbers_and_comments() {
        let source = "000100 01  CUSTOMER.\n000200*    A COMMENT.\n000300     05 NAME PIC X(20) VALUE 'A. B'.\n000400     05 AMT  PIC S9(7)V99 COMP-3.                                 CUST0004\n";
        let sentences = sentences(source).unwrap();
        assert_eq!(
            texts(&sentences),
            vec![
                vec!["01", "CUSTOMER"],
                vec!["05", "NAME", "PIC", "X(20)", "VALUE", "'A. B'"],
                vec!["05", "AMT", "PIC", "S9(7)V99", "COMP-3"]
            ]
        );
        assert_eq!(sentences[2][0].line, 4);
    }

    #[test]
    fn free_format_and_inline_comments() {
        let source = "01 REC. *> the record\n  05 A PIC 9(3)V99.\n  05 B PIC X.";
        assert_eq!(
            texts(&sentences(source).unwrap()),
            vec![
                vec!["01", "REC"],
                vec!["05", "A", "PIC", "9(3)V99"],
                vec!["05", "B", "PIC", "X"]
            ]
        );
        assert_eq!(sentences("01 A PIC X").unwrap_err().0, 1);
    }
}
