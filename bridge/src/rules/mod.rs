//! Mapping a whole application's files by rules: a pattern over the
//! ASSIGN name as the program writes it, or over the path GnuCOBOL would
//! open for it ([`resolve`]), and a template of the dataset name. The
//! first rule that matches a file maps it; a file with a mapping of its
//! own (`[files.NAME]`, `VSAMFH_FILE_<NAME>`) is not looked up here.
//!
//! Patterns: `*` any characters but `/`, `**` any characters, `?` one
//! character. Templates: `{name}` (what the pattern matched, whole),
//! `{file}` (its last part), `{stem}` (that without its extension),
//! `{ext}` (the extension), `{dir}` (the directory it is in, last part).
//! A value becomes part of a dataset name upper-cased, with `/` as the
//! qualifier separator `.`, and every character a dataset name cannot
//! hold (only letters, digits, `@ # $ -` and dots) made `-`; a name that
//! is still not valid (a qualifier longer than 8 characters, or starting
//! with a digit) is refused with the file, the rule and the name.

pub mod resolve;
#[cfg(test)]
mod robustness;
pub mod sources;

use serde::Deserialize;

/// One `[[map]]` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapRule {
    /// A pattern over the ASSIGN name as the program writes it.
    #[serde(default)]
    pub assign: Option<String>,
    /// A pattern over the path GnuCOBOL would open for the file.
    #[serde(default)]
    pub path: Option<String>,
    /// The dataset name, a template.
    pub dataset: String,
    /// DEFINE the dataset where GnuCOBOL would create the file.
    #[serde(default)]
    pub define: bool,
    /// The backend a DEFINE names (empty: vsamrd's routing decides).
    #[serde(default)]
    pub backend: String,
}

/// The placeholders a template may use.
const PLACEHOLDERS: [&str; 5] = ["name", "file", "stem", "ext", "dir"];

impl MapRule {
    /// What the rule matches: `assign` or `path`, and its pattern.
    fn subject(&self) -> (&'static str, &str) {
        match (&self.assign, &self.path) {
            (Some(pattern), _) => ("assign", pattern),
            (None, Some(pattern)) => ("path", pattern),
            (None, None) => ("assign", ""),
        }
    }

    /// Says what `[[map]]` rule this is, for messages.
    pub fn describe(&self) -> String {
        let (field, pattern) = self.subject();
        format!("{field} = {pattern:?} -> {:?}", self.dataset)
    }

    /// Checks the rule on its own: one pattern, known placeholders.
    pub fn check(&self) -> Result<(), String> {
        if self.assign.is_some() == self.path.is_some() {
            return Err(format!(
                "map rule -> {:?}: give one of assign = \"PATTERN\" (the ASSIGN name) or path = \"PATTERN\" (the path GnuCOBOL opens)",
                self.dataset
            ));
        }
        let mut rest = self.dataset.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                return Err(format!(
                    "map rule {}: a {{ without }} in the dataset template",
                    self.describe()
                ));
            };
            let placeholder = &rest[open + 1..open + close];
            if !PLACEHOLDERS.contains(&placeholder) {
                return Err(format!(
                    "map rule {}: unknown placeholder {{{placeholder}}}; use {{name}}, {{file}}, {{stem}}, {{ext}} or {{dir}}",
                    self.describe()
                ));
            }
            rest = &rest[open + close + 1..];
        }
        Ok(())
    }

    /// The dataset of a file (`assign`, and the path GnuCOBOL opens for
    /// it) if the rule matches it: a valid name, or why none results (a
    /// match that makes no valid name refuses the file: later rules are
    /// not tried).
    pub fn apply(&self, assign: &str, path: &str) -> Option<Result<String, String>> {
        let (field, pattern) = self.subject();
        let subject = if field == "assign" { assign } else { path };
        if !glob(pattern, subject) {
            return None;
        }
        let name = expand(&self.dataset, subject);
        Some(
            vsam_plugin_sdk::naming::check_dataset_name(&name)
                .map(|()| name)
                .map_err(|problem| format!("the map rule {}: {problem}", self.describe())),
        )
    }
}

/// True if `text` matches `pattern` (`*`, `**`, `?`).
///
/// Walked once per pattern piece over the whole text (pattern × text
/// steps), so that a rule with many stars against a long path answers at
/// once: trying every split of the text for every star, as a recursive
/// matcher does, takes exponential time on `*a*a*a*a*a*b`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    // `reach[j]`: the pieces read so far match the first `j` characters.
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    let mut next = reach.clone();
    for piece in pieces(pattern) {
        let mut open = false;
        for j in 0..=text.len() {
            let before = j.checked_sub(1).map(|at| (reach[at], text[at]));
            next[j] = match piece {
                Piece::AnyDepth => {
                    open |= reach[j];
                    open
                }
                Piece::AnyInDirectory => {
                    open = (open && before.is_none_or(|(_, c)| c != '/')) || reach[j];
                    open
                }
                Piece::One => before.is_some_and(|(on, c)| on && c != '/'),
                Piece::Char(want) => before.is_some_and(|(on, c)| on && c == want),
            };
        }
        std::mem::swap(&mut reach, &mut next);
        if !reach.contains(&true) {
            return false;
        }
    }
    reach[text.len()]
}

/// One piece of a pattern.
#[derive(Clone, Copy)]
enum Piece {
    /// `**`: any characters, `/` included.
    AnyDepth,
    /// `*`: any characters within one directory.
    AnyInDirectory,
    /// `?`: one character other than `/`.
    One,
    /// Itself.
    Char(char),
}

/// The pattern's pieces, `**` read before `*`.
fn pieces(pattern: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        pieces.push(match c {
            '*' if chars.next_if_eq(&'*').is_some() => Piece::AnyDepth,
            '*' => Piece::AnyInDirectory,
            '?' => Piece::One,
            c => Piece::Char(c),
        });
    }
    pieces
}

/// The template with its placeholders filled from `subject`.
fn expand(template: &str, subject: &str) -> String {
    let subject = subject.trim_end_matches('/');
    let file = subject.rsplit('/').next().unwrap_or(subject);
    let (stem, ext) = match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, ext),
        _ => (file, ""),
    };
    let dir = subject
        .rsplit_once('/')
        .map_or("", |(dir, _)| dir.rsplit('/').next().unwrap_or(dir));
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&convert(&rest[..open], false));
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let value = match &rest[open + 1..close] {
            "name" => subject,
            "file" => file,
            "stem" => stem,
            "ext" => ext,
            "dir" => dir,
            _ => "",
        };
        out.push_str(&convert(value, true));
        rest = rest.get(close + 1..).unwrap_or("");
    }
    out.push_str(&convert(rest, false));
    out
}

/// Text as part of a dataset name: upper case, `/` a qualifier separator
/// (in a placeholder's value), anything else a name cannot hold `-`.
fn convert(text: &str, value: bool) -> String {
    text.chars()
        .map(|c| match c.to_ascii_uppercase() {
            '/' if value => '.',
            c @ ('A'..='Z' | '0'..='9' | '@' | '#' | '$' | '-' | '.') => c,
            _ => '-',
        })
        .collect()
}

/// Rules from `VSAMFH_MAP`: `PATTERN=TEMPLATE` entries separated by `;`,
/// a pattern over the path GnuCOBOL opens starting `path:`; `define` and
/// `backend` as the environment's other mappings have them.
pub fn from_env(text: &str, define: bool, backend: &str) -> Result<Vec<MapRule>, String> {
    text.split(';')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let Some((pattern, dataset)) = entry.split_once('=') else {
                return Err(format!(
                    "VSAMFH_MAP entry {entry:?}: give PATTERN=DATASET-TEMPLATE (path:PATTERN for the path GnuCOBOL opens)"
                ));
            };
            let (assign, path) = match pattern.trim().strip_prefix("path:") {
                Some(path) => (None, Some(path.to_string())),
                None => (Some(pattern.trim().to_string()), None),
            };
            let rule = MapRule {
                assign,
                path,
                dataset: dataset.trim().to_string(),
                define,
                backend: backend.to_string(),
            };
            rule.check().map(|()| rule)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(assign: Option<&str>, path: Option<&str>, dataset: &str) -> MapRule {
        MapRule {
            assign: assign.map(str::to_string),
            path: path.map(str::to_string),
            dataset: dataset.into(),
            define: false,
            backend: String::new(),
        }
    }

    /// The matcher as first written: plain, and exponential.
    fn reference(pattern: &[char], text: &[char]) -> bool {
        match pattern {
            [] => text.is_empty(),
            ['*', '*', rest @ ..] => (0..=text.len()).any(|at| reference(rest, &text[at..])),
            ['*', rest @ ..] => {
                let run = text.iter().take_while(|&&c| c != '/').count();
                (0..=run).any(|at| reference(rest, &text[at..]))
            }
            ['?', rest @ ..] => {
                text.first().is_some_and(|&c| c != '/') && reference(rest, &text[1..])
            }
            [c, rest @ ..] => text.first() == Some(c) && reference(rest, &text[1..]),
        }
    }

    proptest::proptest! {
        #[test]
        fn the_matcher_answers_as_the_plain_one(
            pattern in "[ab/*?]{0,10}",
            text in "[ab/]{0,12}",
        ) {
            let chars = |s: &str| s.chars().collect::<Vec<_>>();
            proptest::prop_assert_eq!(
                glob(&pattern, &text),
                reference(&chars(&pattern), &chars(&text)),
                "{} against {}", pattern, text
            );
        }
    }

    #[test]
    fn many_stars_against_a_long_path_answer_at_once() {
        let pattern = format!("{}b", "*a".repeat(40));
        let text = "a".repeat(4000);
        assert!(!glob(&pattern, &text));
        assert!(glob(&pattern, &format!("{text}b")));
        let deep = format!("{}b", "**a".repeat(40));
        assert!(!glob(&deep, &"a/".repeat(2000)));
    }

    #[test]
    fn patterns_match_within_and_across_directories() {
        assert!(glob("data/*.dat", "data/cust.dat"));
        assert!(
            !glob("data/*.dat", "data/old/cust.dat"),
            "* stays in a directory"
        );
        assert!(glob("data/**.dat", "data/old/cust.dat"));
        assert!(glob("CUST??", "CUST01"));
        assert!(!glob("CUST??", "CUST1"));
        assert!(glob("**", "/srv/app/x"));
        assert!(!glob("*.dat", "cust.datx"));
    }

    #[test]
    fn templates_make_dataset_names_or_say_why_not() {
        let by_stem = rule(Some("data/*.dat"), None, "PROD.{stem}");
        assert_eq!(
            by_stem.apply("data/cust.dat", "/srv/data/cust.dat"),
            Some(Ok("PROD.CUST".into()))
        );
        assert_eq!(by_stem.apply("CUSTFILE", "CUSTFILE"), None);
        let under = rule(Some("data/*.dat"), None, "PROD.{stem}");
        assert_eq!(
            under.apply("data/cust_ms.dat", "x"),
            Some(Ok("PROD.CUST-MS".into())),
            "an underscore becomes a hyphen"
        );
        let long = under.apply("data/customers.dat", "x").unwrap().unwrap_err();
        assert!(
            long.contains("PROD.CUSTOMERS") && long.contains("qualifier"),
            "{long}"
        );
        let digit = under.apply("data/2024.dat", "x").unwrap().unwrap_err();
        assert!(digit.contains("\"2024\""), "{digit}");
        let by_path = rule(None, Some("/srv/**/*.dat"), "APP.{dir}.{stem}");
        assert_eq!(
            by_path.apply("$APPDIR/orders.dat", "/srv/app/orders.dat"),
            Some(Ok("APP.APP.ORDERS".into()))
        );
        let whole = rule(Some("**"), None, "X.{name}");
        assert_eq!(
            whole.apply("data/cust.dat", "x"),
            Some(Ok("X.DATA.CUST.DAT".into())),
            "/ separates qualifiers"
        );
    }

    #[test]
    fn rules_are_checked_and_read_from_the_environment() {
        assert!(rule(None, None, "A").check().is_err());
        assert!(rule(Some("x"), Some("y"), "A").check().is_err());
        let unknown = rule(Some("x"), None, "A.{base}").check().unwrap_err();
        assert!(unknown.contains("{base}"), "{unknown}");
        let rules = from_env("data/*.dat=PROD.{stem}; path:/srv/**=SRV.{stem}", true, "b").unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].assign.as_deref(), Some("data/*.dat"));
        assert_eq!(rules[1].path.as_deref(), Some("/srv/**"));
        assert!(rules.iter().all(|r| r.define && r.backend == "b"));
        assert!(from_env("nonsense", false, "").is_err());
    }
}
