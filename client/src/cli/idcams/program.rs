//! The control statements of a deck: IF LASTCC/MAXCC ... THEN ... ELSE,
//! DO ... END and SET, around the functional commands.

use super::deck::Command;

/// LASTCC or MAXCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Last,
    Max,
}

/// The comparison of an IF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Test {
    pub code: Code,
    pub operator: Operator,
    pub value: u8,
}

/// `=`/EQ, `¬=`/NE, `>`/GT, `<`/LT, `>=`/GE, `<=`/LE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

impl Test {
    /// The test against the codes so far.
    pub fn holds(&self, lastcc: u8, maxcc: u8) -> bool {
        let code = match self.code {
            Code::Last => lastcc,
            Code::Max => maxcc,
        };
        match self.operator {
            Operator::Eq => code == self.value,
            Operator::Ne => code != self.value,
            Operator::Gt => code > self.value,
            Operator::Lt => code < self.value,
            Operator::Ge => code >= self.value,
            Operator::Le => code <= self.value,
        }
    }
}

/// One step of a deck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A functional command (DEFINE, REPRO...).
    Function(Command),
    /// SET LASTCC or MAXCC.
    Set {
        source: Vec<String>,
        code: Code,
        value: u8,
    },
    /// IF ... THEN ... ELSE ...
    If {
        source: Vec<String>,
        test: Test,
        then: Vec<Step>,
        else_source: Vec<String>,
        otherwise: Vec<Step>,
    },
    /// Records that only close a block (END): listed, nothing run.
    Listed(Vec<String>),
    /// The IF-THEN-ELSE structure is broken here: condition code 16, the
    /// rest of the deck is not run (as IDCAMS does).
    Broken {
        source: Vec<String>,
        message: String,
    },
}

/// The steps of a deck's commands.
pub fn steps(commands: Vec<Command>) -> Vec<Step> {
    let mut parser = Parser {
        commands: commands.into_iter().collect(),
        at: 0,
    };
    parser.block(false)
}

struct Parser {
    commands: Vec<Command>,
    at: usize,
}

/// The first word of a text, upper case, and the text after it.
fn first_word(text: &str) -> (String, &str) {
    let text = text.trim_start();
    let end = text
        .find(|c: char| c.is_whitespace() || c == '(')
        .unwrap_or(text.len());
    (text[..end].to_ascii_uppercase(), text[end..].trim_start())
}

impl Parser {
    fn next(&mut self) -> Option<Command> {
        let command = self.commands.get(self.at).cloned();
        self.at += 1;
        command
    }

    fn peek_word(&self) -> Option<String> {
        self.commands
            .get(self.at)
            .map(|command| first_word(&command.text).0)
    }

    /// Steps up to the END of a DO (`in_do`) or the end of the deck.
    fn block(&mut self, in_do: bool) -> Vec<Step> {
        let mut steps = Vec::new();
        loop {
            let Some(command) = self.next() else {
                if in_do {
                    steps.push(Step::Broken {
                        source: Vec::new(),
                        message: "VSR3204I A DO HAS NO END BEFORE THE END OF THE DECK".into(),
                    });
                }
                return steps;
            };
            let (word, rest) = first_word(&command.text);
            let step = match word.as_str() {
                "END" if in_do && rest.is_empty() => {
                    steps.push(Step::Listed(command.source));
                    return steps;
                }
                "END" => broken(command, "VSR3204I END WITHOUT A DO BEFORE IT"),
                "ELSE" => broken(command, "VSR3204I ELSE WITHOUT AN IF ... THEN BEFORE IT"),
                "DO" => broken(command, "VSR3204I DO MUST FOLLOW THEN OR ELSE"),
                _ => self.step(command),
            };
            let stop = matches!(step, Step::Broken { .. }) || contains_broken(&step);
            steps.push(step);
            if stop {
                return steps;
            }
        }
    }

    /// One command: IF (with its clauses), SET or a function.
    fn step(&mut self, command: Command) -> Step {
        let (word, rest) = first_word(&command.text);
        match word.as_str() {
            "IF" => self.if_step(command.clone(), rest.to_string()),
            "SET" => match set(rest) {
                Ok((code, value)) => Step::Set {
                    source: command.source,
                    code,
                    value,
                },
                Err(message) => broken(command, &message),
            },
            _ => Step::Function(command),
        }
    }

    fn if_step(&mut self, command: Command, rest: String) -> Step {
        let words: Vec<&str> = rest.split_whitespace().collect();
        let Some(then_at) = words.iter().position(|w| w.eq_ignore_ascii_case("THEN")) else {
            return broken(command, "VSR3204I IF HAS NO THEN");
        };
        let test = match test(&words[..then_at]) {
            Ok(test) => test,
            Err(message) => return broken(command, &message),
        };
        let after_then = words[then_at + 1..].join(" ");
        let then = self.clause(&command, &after_then);
        let mut else_source = Vec::new();
        let mut otherwise = Vec::new();
        if !then.iter().any(contains_broken_or_is) && self.peek_word().as_deref() == Some("ELSE") {
            let else_command = self.next().expect("peeked");
            let (_, after_else) = first_word(&else_command.text);
            let after_else = after_else.to_string();
            otherwise = self.clause(&else_command, &after_else);
            else_source = else_command.source;
        }
        Step::If {
            source: command.source,
            test,
            then,
            else_source,
            otherwise,
        }
    }

    /// What follows THEN or ELSE: nothing (a null clause), DO (a block up
    /// to END), or one command.
    fn clause(&mut self, owner: &Command, text: &str) -> Vec<Step> {
        let (word, rest) = first_word(text);
        if text.trim().is_empty() {
            return Vec::new();
        }
        if word == "DO" {
            let mut steps = Vec::new();
            if !rest.is_empty() {
                steps.push(self.step(inline(owner, rest)));
            }
            steps.extend(self.block(true));
            return steps;
        }
        vec![self.step(inline(owner, text))]
    }
}

/// A command written on the line of an IF, THEN or ELSE: listed with it.
fn inline(owner: &Command, text: &str) -> Command {
    Command {
        line: owner.line,
        text: text.to_string(),
        source: Vec::new(),
    }
}

fn broken(command: Command, message: &str) -> Step {
    Step::Broken {
        source: command.source,
        message: message.to_string(),
    }
}

fn contains_broken_or_is(step: &Step) -> bool {
    matches!(step, Step::Broken { .. }) || contains_broken(step)
}

fn contains_broken(step: &Step) -> bool {
    match step {
        Step::If {
            then, otherwise, ..
        } => then.iter().chain(otherwise).any(contains_broken_or_is),
        _ => false,
    }
}

/// `LASTCC = 0`, `MAXCC GT 4`...
fn test(words: &[&str]) -> Result<Test, String> {
    let joined = words.join(" ");
    let (code, rest) = code_name(&joined)?;
    let rest = rest.trim_start();
    let operators: [(&str, Operator); 16] = [
        ("¬=", Operator::Ne),
        ("^=", Operator::Ne),
        ("<>", Operator::Ne),
        (">=", Operator::Ge),
        ("<=", Operator::Le),
        ("=", Operator::Eq),
        (">", Operator::Gt),
        ("<", Operator::Lt),
        ("EQ ", Operator::Eq),
        ("NE ", Operator::Ne),
        ("GT ", Operator::Gt),
        ("LT ", Operator::Lt),
        ("GE ", Operator::Ge),
        ("LE ", Operator::Le),
        ("¬>", Operator::Le),
        ("¬<", Operator::Ge),
    ];
    let upper = rest.to_ascii_uppercase();
    let Some((text, operator)) = operators
        .iter()
        .find(|(text, _)| upper.starts_with(text))
        .copied()
    else {
        return Err(format!(
            "VSR3204I IF {joined}: A COMPARISON (= ¬= > < >= <= OR EQ NE GT LT GE LE) IS EXPECTED AFTER THE CODE"
        ));
    };
    let value =
        value(rest[text.len()..].trim()).map_err(|why| format!("VSR3204I IF {joined}: {why}"))?;
    Ok(Test {
        code,
        operator,
        value,
    })
}

/// `MAXCC = 0`, `LASTCC=8`.
fn set(text: &str) -> Result<(Code, u8), String> {
    let (code, rest) = code_name(text).map_err(|m| m.replace("IF", "SET"))?;
    let Some(rest) = rest.trim_start().strip_prefix('=') else {
        return Err(format!("VSR3204I SET {text}: = IS EXPECTED AFTER THE CODE"));
    };
    let value = value(rest.trim()).map_err(|why| format!("VSR3204I SET {text}: {why}"))?;
    Ok((code, value))
}

fn code_name(text: &str) -> Result<(Code, &str), String> {
    let upper = text.to_ascii_uppercase();
    if upper.starts_with("LASTCC") {
        Ok((Code::Last, &text[6..]))
    } else if upper.starts_with("MAXCC") {
        Ok((Code::Max, &text[5..]))
    } else {
        Err(format!("VSR3204I IF {text}: LASTCC OR MAXCC IS EXPECTED"))
    }
}

/// A condition code value: a decimal number; above 16 counts as 16.
fn value(text: &str) -> Result<u8, String> {
    match text.parse::<u64>() {
        Ok(n) => Ok(n.min(16) as u8),
        Err(_) => Err(format!("{text:?} IS NOT A NUMBER")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::idcams::deck;

    fn parse(deck: &str) -> Vec<Step> {
        steps(deck::read(deck, None).unwrap().commands)
    }

    fn functions(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .filter_map(|step| match step {
                Step::Function(command) => Some(command.text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn if_then_else_with_blocks() {
        let steps = parse(
            "\
  DELETE A.B CLUSTER
  IF LASTCC = 8 THEN -
     SET MAXCC = 0
  IF MAXCC GT 4 -
     THEN DO
        LISTCAT ENT(A.B)
        PRINT IDS(A.B)
     END
  ELSE -
     REPRO IDS(A.B) OFILE(OUT)
",
        );
        assert_eq!(steps.len(), 3, "{steps:#?}");
        let Step::If {
            test,
            then,
            otherwise,
            ..
        } = &steps[1]
        else {
            panic!("{:?}", steps[1]);
        };
        assert_eq!(test.operator, Operator::Eq);
        assert!(test.holds(8, 8) && !test.holds(0, 8));
        assert!(matches!(
            then[..],
            [Step::Set {
                code: Code::Max,
                value: 0,
                ..
            }]
        ));
        assert!(otherwise.is_empty());
        let Step::If {
            test,
            then,
            otherwise,
            ..
        } = &steps[2]
        else {
            panic!("{:?}", steps[2]);
        };
        assert_eq!(
            (test.code, test.operator, test.value),
            (Code::Max, Operator::Gt, 4)
        );
        assert_eq!(functions(then), ["LISTCAT ENT(A.B)", "PRINT IDS(A.B)"]);
        assert_eq!(functions(otherwise), ["REPRO IDS(A.B) OFILE(OUT)"]);
    }

    #[test]
    fn a_broken_structure_stops_there() {
        for (deck, why) in [
            ("  LISTCAT\n  END\n  LISTCAT\n", "END WITHOUT"),
            ("  ELSE LISTCAT\n", "ELSE WITHOUT"),
            ("  IF LASTCC = 0 THEN DO\n  LISTCAT\n", "NO END"),
            ("  IF LASTCC 0 THEN LISTCAT\n", "COMPARISON"),
            ("  IF RC = 0 THEN LISTCAT\n", "LASTCC OR MAXCC"),
            ("  SET MAXCC = X\n", "NOT A NUMBER"),
        ] {
            let steps = parse(deck);
            let last = format!("{:?}", steps.last().unwrap());
            assert!(
                last.contains("Broken") && last.contains(why),
                "{deck}: {last}"
            );
        }
        let steps = parse("  IF LASTCC = 0 THEN\n  LISTCAT\n  SET MAXCC=20\n");
        assert!(
            matches!(&steps[0], Step::If { then, .. } if then.is_empty()),
            "a null THEN"
        );
        assert!(matches!(steps[2], Step::Set { value: 16, .. }));
    }
}
