//! The ASSIGN names of a COBOL program's files, read from its source
//! (`SELECT ... ASSIGN [TO] [DISK] name`), for the dry run of the mapping
//! (`vsamfh-map`). Fixed-format comment lines (`*` or `/` in column 7),
//! `*>` comments and the sequence area (columns 1-6) are left out.

/// Words that may stand between ASSIGN and the name.
const DEVICES: [&str; 9] = [
    "TO", "USING", "DISK", "EXTERNAL", "DYNAMIC", "PRINTER", "KEYBOARD", "DISPLAY", "RANDOM",
];

/// The ASSIGN names in `source`, in order.
pub fn assign_names(source: &str) -> Vec<String> {
    let mut text = String::new();
    for line in source.lines() {
        // Columns 1-6 (sequence area) all digits or spaces, then the
        // indicator area: a character of its own, whatever its bytes.
        let fixed = line
            .get(..6)
            .filter(|area| area.chars().all(|c| c == ' ' || c.is_ascii_digit()))
            .and_then(|_| {
                let mut rest = line[6..].chars();
                rest.next().map(|indicator| (indicator, rest.as_str()))
            });
        let line = match fixed {
            Some(('*' | '/', _)) => continue,
            Some((_, program)) => program,
            None => line,
        };
        let line = line.split("*>").next().unwrap_or(line);
        text.push_str(line);
        text.push(' ');
    }
    let tokens = tokens(&text);
    let mut names = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].eq_ignore_ascii_case("ASSIGN") {
            let mut j = i + 1;
            while j < tokens.len()
                && DEVICES
                    .iter()
                    .any(|d| tokens[j].trim_end_matches('.').eq_ignore_ascii_case(d))
            {
                j += 1;
            }
            if let Some(token) = tokens.get(j) {
                let name = match token.strip_prefix(['"', '\'']) {
                    Some(literal) => literal.trim_end_matches(['"', '\'']).to_string(),
                    None => token.trim_end_matches('.').to_string(),
                };
                if !name.is_empty() {
                    names.push(name);
                }
            }
            i = j;
        }
        i += 1;
    }
    names
}

/// Words and quoted literals (a literal keeps its quotes).
fn tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '\'' {
            let mut literal = String::from(c);
            chars.next();
            for next in chars.by_ref() {
                literal.push(next);
                if next == c {
                    break;
                }
            }
            tokens.push(literal);
        } else {
            let mut word = String::new();
            while let Some(&next) = chars.peek() {
                if next.is_whitespace() || next == '"' || next == '\'' {
                    break;
                }
                word.push(next);
                chars.next();
            }
            tokens.push(word);
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_of_several_bytes_in_the_first_columns_are_read_as_characters() {
        // Line 1: column 6 is no digit: free format, read whole. Line 2:
        // the euro sign is the indicator area, the rest program text.
        let source = "00010\u{20ac} SELECT A ASSIGN TO \"a.dat\".\n000200\u{20ac}SELECT B ASSIGN TO \"b.dat\".\n";
        assert_eq!(assign_names(source), ["a.dat", "b.dat"]);
    }

    #[test]
    fn assign_names_come_from_select_clauses() {
        let source = "\
       FILE-CONTROL.
           SELECT CUST ASSIGN TO \"data/cust.dat\"
               ORGANIZATION IS INDEXED.
      *    SELECT OLD ASSIGN TO \"old.dat\".
           SELECT ORDERS
               ASSIGN TO DISK '$APPDIR/orders.dat'.
           SELECT MASTER ASSIGN CUSTFILE. *> by DD_CUSTFILE
           SELECT PRINT-FILE ASSIGN TO PRINTER REPORT1.
";
        assert_eq!(
            assign_names(source),
            ["data/cust.dat", "$APPDIR/orders.dat", "CUSTFILE", "REPORT1"]
        );
    }
}
