//! The words of an IDCAMS command: parameters as keywords with values in
//! parentheses (nested for DEFINE's components), quoted strings, `X'..'`
//! hex constants; keywords by their names or IBM's abbreviations.

use std::fmt;

/// A constant as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Atom {
    /// A word: a keyword, a name, a number.
    Word(String),
    /// `'text'` (`''` for a quote), or `C'text'`.
    Quoted(String),
    /// `X'C1C2'`.
    Hex(Vec<u8>),
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Word(word) => f.write_str(word),
            Atom::Quoted(text) => write!(f, "'{}'", text.replace('\'', "''")),
            Atom::Hex(bytes) => {
                f.write_str("X'")?;
                for b in bytes {
                    write!(f, "{b:02X}")?;
                }
                f.write_str("'")
            }
        }
    }
}

/// One parameter: a keyword or value, with the parenthesized list after
/// it; or a parenthesized list alone (`DELETE (A B)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub atom: Option<Atom>,
    pub args: Option<Vec<Item>>,
}

impl Item {
    /// The item's word, upper case (`None` for a list or a constant).
    pub fn word(&self) -> Option<String> {
        match &self.atom {
            Some(Atom::Word(word)) => Some(word.to_ascii_uppercase()),
            _ => None,
        }
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(atom) = &self.atom {
            write!(f, "{atom}")?;
        }
        if let Some(args) = &self.args {
            let inner: Vec<String> = args.iter().map(ToString::to_string).collect();
            write!(f, "({})", inner.join(" "))?;
        }
        Ok(())
    }
}

/// A lexical token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Atom(Atom),
    Open,
    Close,
    /// A comparison of IF (`=`, `>=`, `¬=`...).
    Operator(String),
}

/// Why a command's text does not parse: IDCAMS's message number and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
}

impl SyntaxError {
    /// IDC3203I: an item that breaks its rules.
    pub fn item(item: impl fmt::Display, why: impl fmt::Display) -> Self {
        Self {
            message: format!("IDC3203I ITEM '{item}' DOES NOT ADHERE TO RESTRICTIONS: {why}"),
        }
    }

    /// IDC3211I: a keyword the command does not take.
    pub fn improper(keyword: impl fmt::Display) -> Self {
        Self {
            message: format!("IDC3211I KEYWORD '{keyword}' IS IMPROPER"),
        }
    }

    /// IDC3217I: a keyword given twice.
    pub fn too_often(keyword: &str) -> Self {
        Self {
            message: format!("IDC3217I KEYWORD '{keyword}' APPEARS TOO OFTEN"),
        }
    }

    /// A required parameter missing.
    pub fn missing(keyword: &str, command: &str) -> Self {
        Self {
            message: format!("VSR3201I REQUIRED PARAMETER {keyword} OF {command} IS MISSING"),
        }
    }

    /// Anything else, in the product's own words.
    pub fn other(message: impl Into<String>) -> Self {
        Self {
            message: format!("VSR3200I {}", message.into()),
        }
    }
}

/// Splits a command into tokens.
pub fn tokens(text: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | ',' | '\t' => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            '=' | '<' | '>' | '¬' | '^' => {
                let mut op = String::new();
                while i < chars.len() && "=<>¬^".contains(chars[i]) {
                    op.push(chars[i]);
                    i += 1;
                }
                out.push(Token::Operator(op));
            }
            '\'' => {
                let (text, next) = quoted(&chars, i)?;
                out.push(Token::Atom(Atom::Quoted(text)));
                i = next;
            }
            'X' | 'x' | 'C' | 'c' if chars.get(i + 1) == Some(&'\'') => {
                let (text, next) = quoted(&chars, i + 1)?;
                i = next;
                if c.eq_ignore_ascii_case(&'C') {
                    out.push(Token::Atom(Atom::Quoted(text)));
                    continue;
                }
                let hex = super::super::records::parse_hex(&text)
                    .map_err(|e| SyntaxError::item(format!("X'{text}'"), e))?;
                out.push(Token::Atom(Atom::Hex(hex)));
            }
            _ => {
                let mut word = String::new();
                while i < chars.len() && !" ,\t()'=<>¬^".contains(chars[i]) {
                    word.push(chars[i]);
                    i += 1;
                }
                out.push(Token::Atom(Atom::Word(word)));
            }
        }
    }
    Ok(out)
}

/// A quoted string starting at `chars[start]` (a quote): its text and
/// the index after it.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), SyntaxError> {
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(SyntaxError::other(format!(
                    "A QUOTED STRING ('{text}...) IS NOT CLOSED"
                )));
            }
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                text.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((text, i + 1)),
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

/// The parameters of a command from its tokens: a `(` right after a word
/// (blanks between allowed) holds that word's values.
pub fn items(tokens: &[Token]) -> Result<Vec<Item>, SyntaxError> {
    let mut at = 0;
    let items = item_list(tokens, &mut at, 0)?;
    if at < tokens.len() {
        return Err(SyntaxError::other(
            "A CLOSING PARENTHESIS HAS NO OPENING ONE",
        ));
    }
    Ok(items)
}

fn item_list(tokens: &[Token], at: &mut usize, depth: usize) -> Result<Vec<Item>, SyntaxError> {
    let mut items = Vec::new();
    while let Some(token) = tokens.get(*at) {
        match token {
            Token::Close => {
                if depth == 0 {
                    return Err(SyntaxError::other(
                        "A CLOSING PARENTHESIS HAS NO OPENING ONE",
                    ));
                }
                return Ok(items);
            }
            Token::Open => {
                *at += 1;
                let args = group(tokens, at, depth)?;
                items.push(Item {
                    atom: None,
                    args: Some(args),
                });
            }
            Token::Atom(atom) => {
                *at += 1;
                let args = match tokens.get(*at) {
                    Some(Token::Open) => {
                        *at += 1;
                        Some(group(tokens, at, depth)?)
                    }
                    _ => None,
                };
                items.push(Item {
                    atom: Some(atom.clone()),
                    args,
                });
            }
            Token::Operator(op) => {
                return Err(SyntaxError::item(op, "AN OPERATOR BELONGS TO IF AND SET"));
            }
        }
    }
    if depth > 0 {
        return Err(SyntaxError::other(
            "A PARENTHESIS IS NOT CLOSED BEFORE THE END OF THE COMMAND",
        ));
    }
    Ok(items)
}

fn group(tokens: &[Token], at: &mut usize, depth: usize) -> Result<Vec<Item>, SyntaxError> {
    let args = item_list(tokens, at, depth + 1)?;
    // item_list returns at the closing parenthesis.
    *at += 1;
    Ok(args)
}

/// A keyword: its full name and IBM's abbreviations of it.
#[derive(Debug, Clone, Copy)]
pub struct Keyword {
    pub name: &'static str,
    pub short: &'static [&'static str],
}

impl Keyword {
    /// True if `word` (upper case) names this keyword.
    pub fn is(&self, word: &str) -> bool {
        self.name == word || self.short.contains(&word)
    }
}

/// Declares keyword constants: `NAME = "NAME"`, `KEYS = "KEYS"`,
/// `RECORDSIZE = "RECORDSIZE" | "RECSZ"`...
macro_rules! keywords {
    ($($id:ident = $name:literal $(| $short:literal)*;)*) => {
        $(
            #[allow(missing_docs)]
            pub const $id: Keyword = Keyword { name: $name, short: &[$($short),*] };
        )*
    };
}

/// Every keyword the commands take.
pub mod kw {
    use super::Keyword;
    keywords! {
        ALL = "ALL";
        ALTERNATEINDEX = "ALTERNATEINDEX" | "AIX";
        CHARACTER = "CHARACTER" | "CHAR";
        CLUSTER = "CLUSTER" | "CL";
        COUNT = "COUNT";
        DATA = "DATA";
        DATASET = "DATASET" | "DS";
        DUMP = "DUMP";
        ENTRIES = "ENTRIES" | "ENTRY" | "ENT";
        ERRORLIMIT = "ERRORLIMIT" | "ELIMIT";
        FILE = "FILE";
        FROMKEY = "FROMKEY" | "FKEY";
        HEX = "HEX";
        INDATASET = "INDATASET" | "IDS";
        INDEX = "INDEX" | "IX";
        INDEXED = "INDEXED" | "IXD";
        INFILE = "INFILE" | "IFILE";
        KEYS = "KEYS";
        LEVEL = "LEVEL" | "LVL";
        LINEAR = "LINEAR" | "LIN";
        NAME = "NAME";
        NEWNAME = "NEWNAME" | "NEWNM";
        NONINDEXED = "NONINDEXED" | "NIXD";
        NONUNIQUEKEY = "NONUNIQUEKEY" | "NUNQK";
        NOREPLACE = "NOREPLACE" | "NREP";
        NOREUSE = "NOREUSE" | "NRUS";
        NOUPGRADE = "NOUPGRADE" | "NUPG";
        NUMBERED = "NUMBERED" | "NUMD";
        OUTDATASET = "OUTDATASET" | "ODS";
        OUTFILE = "OUTFILE" | "OFILE";
        PATH = "PATH";
        PATHENTRY = "PATHENTRY" | "PENT";
        RECORDSIZE = "RECORDSIZE" | "RECSZ";
        RELATE = "RELATE" | "REL";
        REPLACE = "REPLACE" | "REP";
        REUSE = "REUSE" | "RUS";
        SKIP = "SKIP";
        TOKEY = "TOKEY" | "TKEY";
        UNIQUEKEY = "UNIQUEKEY" | "UNQK";
        UPGRADE = "UPGRADE" | "UPG";
    }
}

/// Parameters that mean something on z/OS and nothing here (space,
/// volumes, buffers, SMS classes, sharing, passwords...): accepted, and
/// ignored with an informational message.
pub const IGNORED: &[Keyword] = &[
    Keyword {
        name: "ATTEMPTS",
        short: &["ATT"],
    },
    Keyword {
        name: "AUTHORIZATION",
        short: &["AUTH"],
    },
    Keyword {
        name: "BUFFERSPACE",
        short: &["BUFSP", "BUFSPC"],
    },
    Keyword {
        name: "BWO",
        short: &[],
    },
    Keyword {
        name: "CATALOG",
        short: &["CAT"],
    },
    Keyword {
        name: "CODE",
        short: &[],
    },
    Keyword {
        name: "CONTROLINTERVALSIZE",
        short: &["CISZ", "CNVSZ"],
    },
    Keyword {
        name: "CYLINDERS",
        short: &["CYL", "CYLINDER"],
    },
    Keyword {
        name: "DATACLASS",
        short: &["DATACLAS"],
    },
    Keyword {
        name: "DESTAGEWAIT",
        short: &["DSTGW"],
    },
    Keyword {
        name: "ERASE",
        short: &["ERAS"],
    },
    Keyword {
        name: "EXCEPTIONEXIT",
        short: &["EEXT"],
    },
    Keyword {
        name: "FILE",
        short: &[],
    },
    Keyword {
        name: "FOR",
        short: &[],
    },
    Keyword {
        name: "FREESPACE",
        short: &["FSPC"],
    },
    Keyword {
        name: "FRLOG",
        short: &[],
    },
    Keyword {
        name: "IMBED",
        short: &["IMBD"],
    },
    Keyword {
        name: "KILOBYTES",
        short: &["KB"],
    },
    Keyword {
        name: "LOG",
        short: &[],
    },
    Keyword {
        name: "LOGSTREAMID",
        short: &["LSID"],
    },
    Keyword {
        name: "MANAGEMENTCLASS",
        short: &["MGMTCLAS"],
    },
    Keyword {
        name: "MEGABYTES",
        short: &["MB"],
    },
    Keyword {
        name: "NODESTAGEWAIT",
        short: &["NDSTGW"],
    },
    Keyword {
        name: "NOERASE",
        short: &["NERAS"],
    },
    Keyword {
        name: "NOIMBED",
        short: &["NIMBD"],
    },
    Keyword {
        name: "NOREPLICATE",
        short: &["NREPL"],
    },
    Keyword {
        name: "NOREUSE",
        short: &["NRUS"],
    },
    Keyword {
        name: "NONSPANNED",
        short: &["NSPND"],
    },
    Keyword {
        name: "NOWRITECHECK",
        short: &["NWCK"],
    },
    Keyword {
        name: "ORDERED",
        short: &["ORD"],
    },
    Keyword {
        name: "OWNER",
        short: &[],
    },
    Keyword {
        name: "RECORDS",
        short: &["REC", "RECORD"],
    },
    Keyword {
        name: "RECOVERY",
        short: &["RCVY"],
    },
    Keyword {
        name: "REPLICATE",
        short: &["REPL"],
    },
    Keyword {
        name: "REUSE",
        short: &["RUS"],
    },
    Keyword {
        name: "SHAREOPTIONS",
        short: &["SHR"],
    },
    Keyword {
        name: "SPANNED",
        short: &["SPND"],
    },
    Keyword {
        name: "SPEED",
        short: &["SPEED"],
    },
    Keyword {
        name: "STORAGECLASS",
        short: &["STORCLAS"],
    },
    Keyword {
        name: "TO",
        short: &[],
    },
    Keyword {
        name: "TRACKS",
        short: &["TRK", "TRACK"],
    },
    Keyword {
        name: "UNORDERED",
        short: &["UNORD"],
    },
    Keyword {
        name: "VOLUMES",
        short: &["VOL", "VOLUME"],
    },
    Keyword {
        name: "WRITECHECK",
        short: &["WCK"],
    },
];

/// Why an ignored parameter has no effect here.
pub fn why_ignored(keyword: &Keyword) -> &'static str {
    match keyword.name {
        "RECOVERY" | "SPEED" | "LOG" | "LOGSTREAMID" | "FRLOG" | "BWO" => {
            "EVERY ACKNOWLEDGED WRITE IS DURABLE; UNITS OF WORK ARE CHOSEN AT OPEN (COMMIT ACCESS)"
        }
        "SHAREOPTIONS" => "RECORD LOCKS AND OPEN RULES OF THE SERVER GOVERN SHARING",
        "ERASE" | "NOERASE" => "THE BACKEND REMOVES THE RECORDS OF A DELETED DATASET",
        "REUSE" | "NOREUSE" => "ANY DATASET CAN BE EMPTIED BY REPRO REUSE",
        "AUTHORIZATION" | "CODE" | "OWNER" | "FOR" | "TO" | "CATALOG" => {
            "ACCESS RULES OF THE SERVER ([[access]]) GOVERN WHO MAY DO WHAT"
        }
        _ => "THE BACKEND ALLOCATES ITS OWN STORAGE",
    }
}

/// The parameters of one command (or one component), taken one keyword
/// at a time; what is left at the end is improper.
pub struct Params {
    items: Vec<Option<Item>>,
    /// Informational messages: parameters accepted and ignored.
    pub ignored: Vec<String>,
}

impl Params {
    pub fn new(items: Vec<Item>) -> Self {
        Self {
            items: items.into_iter().map(Some).collect(),
            ignored: Vec::new(),
        }
    }

    /// Takes the keyword's item, if given (twice is an error).
    pub fn take(&mut self, keyword: Keyword) -> Result<Option<Item>, SyntaxError> {
        let mut found = None;
        for slot in &mut self.items {
            let is_it = slot
                .as_ref()
                .and_then(Item::word)
                .is_some_and(|word| keyword.is(&word));
            if is_it {
                if found.is_some() {
                    return Err(SyntaxError::too_often(keyword.name));
                }
                found = slot.take();
            }
        }
        Ok(found)
    }

    /// True if the keyword was given (without values).
    pub fn flag(&mut self, keyword: Keyword) -> Result<bool, SyntaxError> {
        match self.take(keyword)? {
            Some(item) if item.args.is_some() => Err(SyntaxError::item(
                item,
                format!("{} TAKES NO VALUE", keyword.name),
            )),
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    /// Which of two exclusive keywords was given (`None`: neither).
    pub fn either(&mut self, yes: Keyword, no: Keyword) -> Result<Option<bool>, SyntaxError> {
        match (self.flag(yes)?, self.flag(no)?) {
            (true, true) => Err(SyntaxError::other(format!(
                "{} AND {} EXCLUDE EACH OTHER",
                yes.name, no.name
            ))),
            (true, false) => Ok(Some(true)),
            (false, true) => Ok(Some(false)),
            (false, false) => Ok(None),
        }
    }

    /// The values of the keyword (`KEYWORD(v1 v2)`), if given.
    pub fn values(&mut self, keyword: Keyword) -> Result<Option<Vec<Item>>, SyntaxError> {
        match self.take(keyword)? {
            Some(Item {
                args: Some(args), ..
            }) => Ok(Some(args)),
            Some(item) => Err(SyntaxError::item(
                item,
                format!("{} NEEDS A VALUE IN PARENTHESES", keyword.name),
            )),
            None => Ok(None),
        }
    }

    /// The keyword's one value as a name (upper case), if given.
    pub fn name(&mut self, keyword: Keyword) -> Result<Option<String>, SyntaxError> {
        let Some(values) = self.values(keyword)? else {
            return Ok(None);
        };
        match values.as_slice() {
            [
                Item {
                    atom: Some(Atom::Word(word)),
                    args: None,
                },
            ] => Ok(Some(word.to_ascii_uppercase())),
            _ => Err(SyntaxError::item(
                format!("{}({})", keyword.name, joined(&values)),
                "ONE NAME IS EXPECTED",
            )),
        }
    }

    /// The keyword's numbers (`KEYS(8 0)`), if given: exactly `count`.
    pub fn numbers(
        &mut self,
        keyword: Keyword,
        count: usize,
    ) -> Result<Option<Vec<u64>>, SyntaxError> {
        let Some(values) = self.values(keyword)? else {
            return Ok(None);
        };
        let numbers: Option<Vec<u64>> = values.iter().map(number).collect();
        match numbers {
            Some(numbers) if numbers.len() == count => Ok(Some(numbers)),
            _ => Err(SyntaxError::item(
                format!("{}({})", keyword.name, joined(&values)),
                format!(
                    "{} NUMBER{} EXPECTED",
                    count,
                    if count == 1 { " IS" } else { "S ARE" }
                ),
            )),
        }
    }

    /// The keyword's one value as a constant (a key), if given.
    pub fn constant(&mut self, keyword: Keyword) -> Result<Option<Atom>, SyntaxError> {
        let Some(values) = self.values(keyword)? else {
            return Ok(None);
        };
        match values.as_slice() {
            [
                Item {
                    atom: Some(atom),
                    args: None,
                },
            ] => Ok(Some(atom.clone())),
            _ => Err(SyntaxError::item(
                format!("{}({})", keyword.name, joined(&values)),
                "ONE CONSTANT IS EXPECTED",
            )),
        }
    }

    /// Takes the parameters IDCAMS knows and that mean nothing here, each
    /// noted in [`Params::ignored`].
    pub fn drop_ignored(&mut self, except: &[Keyword]) {
        for slot in &mut self.items {
            let Some(word) = slot.as_ref().and_then(Item::word) else {
                continue;
            };
            if except.iter().any(|k| k.is(&word)) {
                continue;
            }
            if let Some(keyword) = IGNORED.iter().find(|k| k.is(&word)) {
                let item = slot.take().expect("a word");
                self.ignored
                    .push(format!("VSR0001I {item} IGNORED: {}", why_ignored(keyword)));
            }
        }
    }

    /// Takes the first item not taken yet: a positional parameter.
    pub fn first(&mut self) -> Option<Item> {
        self.items
            .iter_mut()
            .find(|slot| slot.is_some())
            .and_then(Option::take)
    }

    /// The words of the items not taken yet, upper case.
    pub fn rest_words(&self) -> Vec<String> {
        self.items.iter().flatten().filter_map(Item::word).collect()
    }

    /// The items not taken (positional ones first).
    pub fn rest(&mut self) -> Vec<Item> {
        self.items.iter_mut().filter_map(Option::take).collect()
    }

    /// Ends the parameters: anything left is improper.
    pub fn finish(mut self) -> Result<Vec<String>, SyntaxError> {
        match self.rest().first() {
            Some(item) => Err(SyntaxError::improper(match &item.atom {
                Some(atom) => atom.to_string(),
                None => item.to_string(),
            })),
            None => Ok(self.ignored),
        }
    }
}

/// Entry names: one name, or a parenthesized list of them (`DELETE (A B)`,
/// `ENTRIES(A B)`), upper case.
pub fn names(item: &Item) -> Result<Vec<String>, SyntaxError> {
    let name = |item: &Item| match item {
        Item {
            atom: Some(Atom::Word(name)),
            args: None,
        } => Ok(name.to_ascii_uppercase()),
        other => Err(SyntaxError::item(other, "AN ENTRY NAME IS EXPECTED")),
    };
    match item {
        Item {
            atom: None,
            args: Some(names),
        } => names.iter().map(name).collect(),
        one => Ok(vec![name(one)?]),
    }
}

/// A number: decimal, or `X'..'` hex.
pub fn number(item: &Item) -> Option<u64> {
    if item.args.is_some() {
        return None;
    }
    match &item.atom {
        Some(Atom::Word(word)) => word.parse().ok(),
        Some(Atom::Hex(bytes)) if bytes.len() <= 8 => {
            Some(bytes.iter().fold(0u64, |n, b| n << 8 | u64::from(*b)))
        }
        _ => None,
    }
}

/// Items as written, separated by blanks.
pub fn joined(items: &[Item]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Item> {
        items(&tokens(text).unwrap()).unwrap()
    }

    #[test]
    fn keywords_take_the_parenthesized_values_after_them() {
        let items = parse("CLUSTER (NAME(A.B) KEYS(8,0) INDEXED) DATA(NAME(A.B.D))");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].to_string(), "CLUSTER(NAME(A.B) KEYS(8 0) INDEXED)");
        let mut cluster = Params::new(items[0].args.clone().unwrap());
        assert_eq!(cluster.name(kw::NAME).unwrap().as_deref(), Some("A.B"));
        assert_eq!(cluster.numbers(kw::KEYS, 2).unwrap(), Some(vec![8, 0]));
        assert!(cluster.flag(kw::INDEXED).unwrap());
        assert!(cluster.finish().unwrap().is_empty());
    }

    #[test]
    fn abbreviations_quotes_and_hex_are_understood() {
        let items = parse("IDS(A.B) FKEY(X'C1C2') TKEY('IT''S') CHAR");
        let mut params = Params::new(items);
        assert_eq!(params.name(kw::INDATASET).unwrap().as_deref(), Some("A.B"));
        assert_eq!(
            params.constant(kw::FROMKEY).unwrap(),
            Some(Atom::Hex(vec![0xC1, 0xC2]))
        );
        assert_eq!(
            params.constant(kw::TOKEY).unwrap(),
            Some(Atom::Quoted("IT'S".into()))
        );
        assert!(params.flag(kw::CHARACTER).unwrap());
    }

    #[test]
    fn what_a_command_does_not_take_is_named() {
        let mut params = Params::new(parse("NAME(A) CYL(5 5) VOLUMES(VOL001) BOGUS(1)"));
        params.name(kw::NAME).unwrap();
        params.drop_ignored(&[]);
        assert_eq!(params.ignored.len(), 2);
        assert!(params.ignored[0].starts_with("VSR0001I CYL(5 5) IGNORED"));
        let error = params.finish().unwrap_err();
        assert_eq!(error.message, "IDC3211I KEYWORD 'BOGUS' IS IMPROPER");
        let mut twice = Params::new(parse("NAME(A) NAME(B)"));
        assert!(
            twice
                .name(kw::NAME)
                .unwrap_err()
                .message
                .contains("IDC3217I")
        );
        assert!(items(&tokens("KEYS(8 0").unwrap()).is_err());
        assert!(items(&tokens("KEYS 8 0)").unwrap()).is_err());
        assert!(tokens("FKEY('OPEN)").is_err());
        let mut bad = Params::new(parse("KEYS(8)"));
        assert!(
            bad.numbers(kw::KEYS, 2)
                .unwrap_err()
                .message
                .contains("IDC3203I")
        );
    }
}
