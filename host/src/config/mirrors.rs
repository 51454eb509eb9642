//! `[changes]` and `[[mirrors]]`: where the change log is, the change
//! stream, and the backends that keep copies of datasets in step.

use super::resolve::Source;
use super::{BackendSettings, ConfigError, ConfigFile};
use crate::runtime::sql::DatabaseUrl;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// `[changes]`, as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ChangesConfig {
    /// Where the change log and the stream files go (under the data dir
    /// unless absolute; default `changes`).
    #[serde(default)]
    pub directory: Option<String>,
    /// Size of a change log segment, in MiB (default 64).
    #[serde(default)]
    pub segment_mb: Option<u64>,
    /// `overlapped` (the default): a group's changes are written to the
    /// log before its backend commits and synced alongside the commit;
    /// `strict`: synced before the commit, so that not even a power cut
    /// can leave a commit the log lacks (one more sync in every group's
    /// path).
    #[serde(default)]
    pub durability: Option<Spanned<String>>,
    /// `file`: every committed change of the `stream_datasets` as one JSON
    /// object per line in `DIRECTORY/stream/`; `postgres`: one row per
    /// change in the table `stream_table` of `stream_database`; `off` (the
    /// default).
    #[serde(default)]
    pub stream: Option<Spanned<String>>,
    /// Patterns of the datasets the stream carries (default: all).
    #[serde(default)]
    pub stream_datasets: Option<Vec<Spanned<String>>>,
    /// A stream file is closed and a new one begun past this size, in MiB
    /// (default 64).
    #[serde(default)]
    pub stream_rotate_mb: Option<u64>,
    /// Stream files kept, the newest first (default 8).
    #[serde(default)]
    pub stream_keep_files: Option<u32>,
    /// `stream = "postgres"`: the database of the stream's table,
    /// `postgres://USER:PASSWORD@HOST:PORT/DB`.
    #[serde(default)]
    pub stream_database: Option<Spanned<String>>,
    /// `stream = "postgres"`: the table's name (default
    /// `_vsamrd_change_stream`; its position is kept in `NAME_position`).
    #[serde(default)]
    pub stream_table: Option<Spanned<String>>,
    /// `stream = "postgres"`: changes the table keeps, the newest (default
    /// 1,000,000); older rows are deleted.
    #[serde(default)]
    pub stream_keep_changes: Option<u64>,
}

/// `[[mirrors]]`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorRuleConfig {
    /// Dataset name pattern.
    pub datasets: Spanned<String>,
    /// The backends that keep a copy.
    pub backends: Spanned<Vec<Spanned<String>>>,
    /// `async` (the default) or `sync`.
    #[serde(default)]
    pub mode: Option<Spanned<String>>,
    /// Async: changes a mirror may have waiting (default 1,000,000).
    #[serde(default)]
    pub max_queue: Option<u64>,
    /// Async, queue full: `stop` (the mirror stops, reported; the
    /// default) or `refuse` (writes to its datasets are refused).
    #[serde(default)]
    pub on_full: Option<Spanned<String>>,
    /// Sync, mirror down: `refuse` (writes fail; the default) or `degrade`
    /// (the mirror goes on as async, with an alarm).
    #[serde(default)]
    pub on_unavailable: Option<Spanned<String>>,
    /// Sync: how long a write waits for its mirrors, in ms (default 5000).
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

/// How a mirror's writes are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorMode {
    /// After the primary; the mirror follows from the change log.
    Async,
    /// After every mirror applied the change.
    Sync,
}

/// What an async mirror does when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFull {
    /// The mirror stops following (reported); `resync` starts it again.
    Stop,
    /// Writes to its datasets are refused until it catches up.
    Refuse,
}

/// What a sync mirror does when it cannot apply a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnavailable {
    /// Writes to its datasets fail until it is back.
    Refuse,
    /// It goes on as an async mirror, with an alarm, until it caught up.
    Degrade,
}

/// A `[[mirrors]]` rule, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorRule {
    /// The name pattern, upper case.
    pub datasets: String,
    /// The mirror backends.
    pub backends: Vec<String>,
    /// Sync or async.
    pub mode: MirrorMode,
    /// Async: most changes waiting.
    pub max_queue: u64,
    /// Async: what a full queue does.
    pub on_full: OnFull,
    /// Sync: what a mirror that is down does.
    pub on_unavailable: OnUnavailable,
    /// Sync: how long a write waits for the mirrors.
    pub wait: Duration,
}

impl MirrorRule {
    /// The rule whose mirrors include `backend`.
    pub fn of_backend<'a>(rules: &'a [MirrorRule], backend: &str) -> Option<&'a MirrorRule> {
        rules
            .iter()
            .find(|r| r.backends.iter().any(|b| b == backend))
    }
}

/// The change stream's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// Patterns of the datasets it carries.
    pub datasets: Vec<String>,
    /// A file is closed past this size.
    pub rotate_bytes: u64,
    /// Files kept.
    pub keep_files: u32,
    /// A PostgreSQL table instead of files, if `stream = "postgres"`.
    pub table: Option<StreamTable>,
}

/// A change stream written to a PostgreSQL table, for readers of an
/// outbox table (a Debezium-style connector, a polling job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTable {
    /// The database.
    pub database: DatabaseUrl,
    /// The table: a lower-case SQL name, so that it needs no quoting.
    pub name: String,
    /// Changes kept, the newest.
    pub keep_changes: u64,
}

/// The longest table name the stream takes: PostgreSQL's 63, less the
/// `_position` of its position table.
const STREAM_TABLE_MAX: usize = 63 - "_position".len();

/// `[changes]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSettings {
    /// Where the log and the stream files are.
    pub directory: PathBuf,
    /// Size of a log segment.
    pub segment_bytes: u64,
    /// Changes are synced to the log before their backend commits them.
    pub strict: bool,
    /// The change stream, if on.
    pub stream: Option<StreamSettings>,
}

impl ChangeSettings {
    /// The patterns of every dataset whose changes leave the server: the
    /// stream's and every mirror rule's.
    pub fn followed(&self, mirrors: &[MirrorRule]) -> Vec<String> {
        let mut patterns: Vec<String> = mirrors.iter().map(|r| r.datasets.clone()).collect();
        if let Some(stream) = &self.stream {
            patterns.extend(stream.datasets.iter().cloned());
        }
        patterns
    }
}

/// Where the change stream goes, as `changes.stream` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamKind {
    Off,
    File,
    Postgres,
}

fn choice<T: Copy>(
    source: &Source<'_>,
    value: Option<&Spanned<String>>,
    field: String,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    let Some(value) = value else {
        return Ok(choices[0].1);
    };
    choices
        .iter()
        .find(|(name, _)| *name == value.get_ref().as_str())
        .map(|(_, choice)| *choice)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            source.at(
                value.span(),
                field,
                format!("{:?} is not one of {}", value.get_ref(), names.join(", ")),
            )
        })
}

impl Source<'_> {
    /// `[changes]`.
    pub fn resolve_changes(
        &self,
        file: &ConfigFile,
        data_dir: &Path,
    ) -> Result<ChangeSettings, ConfigError> {
        let changes = &file.changes;
        let directory = data_dir.join(changes.directory.as_deref().unwrap_or("changes"));
        let stream = choice(
            self,
            changes.stream.as_ref(),
            "changes.stream".into(),
            &[
                ("off", StreamKind::Off),
                ("file", StreamKind::File),
                ("postgres", StreamKind::Postgres),
            ],
        )?;
        let table = self.stream_table(changes, stream, data_dir)?;
        let mb = |value: Option<u64>, field: &str| match value {
            Some(0) => Err(self.near(field, "must be at least 1 (MiB)".into())),
            Some(mb) => Ok(mb << 20),
            None => Ok(64 << 20),
        };
        let segment_bytes = mb(changes.segment_mb, "changes.segment_mb")?;
        let strict = choice(
            self,
            changes.durability.as_ref(),
            "changes.durability".into(),
            &[("overlapped", false), ("strict", true)],
        )?;
        let rotate_bytes = mb(changes.stream_rotate_mb, "changes.stream_rotate_mb")?;
        let stream = match stream {
            StreamKind::Off => None,
            StreamKind::File | StreamKind::Postgres => Some(StreamSettings {
                datasets: match &changes.stream_datasets {
                    Some(patterns) => patterns
                        .iter()
                        .enumerate()
                        .map(|(i, p)| self.pattern(p, format!("changes.stream_datasets[{i}]")))
                        .collect::<Result<_, _>>()?,
                    None => vec!["**".into()],
                },
                rotate_bytes,
                keep_files: match changes.stream_keep_files {
                    Some(0) => {
                        return Err(self.near(
                            "changes.stream_keep_files",
                            "must be at least 1: the file being written".into(),
                        ));
                    }
                    Some(n) => n,
                    None => 8,
                },
                table,
            }),
        };
        Ok(ChangeSettings {
            directory,
            segment_bytes,
            strict,
            stream,
        })
    }

    /// The stream's table for `stream = "postgres"`; a field of the other
    /// kind of stream is refused, so that a setting that would do nothing
    /// is not taken for one that does.
    fn stream_table(
        &self,
        changes: &ChangesConfig,
        kind: StreamKind,
        data_dir: &Path,
    ) -> Result<Option<StreamTable>, ConfigError> {
        let file_fields = [
            (
                "changes.stream_rotate_mb",
                changes.stream_rotate_mb.is_some(),
            ),
            (
                "changes.stream_keep_files",
                changes.stream_keep_files.is_some(),
            ),
        ];
        let table_fields = [
            ("changes.stream_database", changes.stream_database.is_some()),
            ("changes.stream_table", changes.stream_table.is_some()),
            (
                "changes.stream_keep_changes",
                changes.stream_keep_changes.is_some(),
            ),
        ];
        let (unused, kind_name) = match kind {
            StreamKind::Postgres => (&file_fields[..], "postgres"),
            StreamKind::File => (&table_fields[..], "file"),
            StreamKind::Off => return Ok(None),
        };
        if let Some((field, _)) = unused.iter().find(|(_, set)| *set) {
            return Err(self.near(
                field,
                format!("does not apply to stream = \"{kind_name}\": remove it, or choose the stream it belongs to"),
            ));
        }
        if kind != StreamKind::Postgres {
            return Ok(None);
        }
        let Some(url) = &changes.stream_database else {
            return Err(self.near(
                "changes.stream",
                "stream = \"postgres\" needs stream_database = \"postgres://USER:PASSWORD@HOST:PORT/DB\"".into(),
            ));
        };
        let database = match DatabaseUrl::parse(url.get_ref(), data_dir) {
            Ok(database @ DatabaseUrl::Postgres(_)) => database,
            Ok(DatabaseUrl::Sqlite(_)) => {
                return Err(self.at(
                    url.span(),
                    "changes.stream_database".into(),
                    "the stream's table is written to PostgreSQL only: use postgres://USER:PASSWORD@HOST:PORT/DB (or stream = \"file\")".into(),
                ));
            }
            Err(message) => {
                return Err(self.at(url.span(), "changes.stream_database".into(), message));
            }
        };
        let name = match &changes.stream_table {
            None => "_vsamrd_change_stream".to_string(),
            Some(name) => {
                let text = name.get_ref();
                let plain = text
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                    && text
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !plain || text.len() > STREAM_TABLE_MAX {
                    return Err(self.at(
                        name.span(),
                        "changes.stream_table".into(),
                        format!("{text:?} is not a table name the stream takes: lower-case letters, digits and _, starting with a letter or _, at most {STREAM_TABLE_MAX} characters"),
                    ));
                }
                text.clone()
            }
        };
        let keep_changes = match changes.stream_keep_changes {
            Some(0) => {
                return Err(self.near(
                    "changes.stream_keep_changes",
                    "must be at least 1: readers find the table's last change to go on from".into(),
                ));
            }
            Some(n) => n,
            None => 1_000_000,
        };
        Ok(Some(StreamTable {
            database,
            name,
            keep_changes,
        }))
    }

    /// `[[mirrors]]`: each backend known and a mirror in one rule only; no
    /// dataset mirrored to the backend it lives on, directly or through
    /// another mirror (a cycle).
    pub fn resolve_mirrors(
        &self,
        file: &ConfigFile,
        backends: &BTreeMap<String, BackendSettings>,
        routes: &[(String, String)],
        default_backend: Option<&str>,
    ) -> Result<Vec<MirrorRule>, ConfigError> {
        let mut rules: Vec<MirrorRule> = Vec::new();
        let mut taken: BTreeMap<String, usize> = BTreeMap::new();
        for (i, rule) in file.mirrors.iter().enumerate() {
            let field = |f: &str| format!("mirrors[{i}].{f}");
            let datasets = self.pattern(&rule.datasets, field("datasets"))?;
            if rule.backends.get_ref().is_empty() {
                return Err(self.at(
                    rule.backends.span(),
                    field("backends"),
                    "names no backend: list the backends that keep a copy".into(),
                ));
            }
            let mut names = Vec::new();
            for (j, backend) in rule.backends.get_ref().iter().enumerate() {
                let name =
                    self.known_backend(backends, backend, format!("mirrors[{i}].backends[{j}]"))?;
                if let Some(other) = taken.insert(name.clone(), i) {
                    return Err(self.at(
                        backend.span(),
                        format!("mirrors[{i}].backends[{j}]"),
                        format!(
                            "backend {name} is already a mirror of rule mirrors[{other}]: a backend mirrors by one rule"
                        ),
                    ));
                }
                names.push(name);
            }
            let mode = choice(
                self,
                rule.mode.as_ref(),
                field("mode"),
                &[("async", MirrorMode::Async), ("sync", MirrorMode::Sync)],
            )?;
            let on_full = choice(
                self,
                rule.on_full.as_ref(),
                field("on_full"),
                &[("stop", OnFull::Stop), ("refuse", OnFull::Refuse)],
            )?;
            let on_unavailable = choice(
                self,
                rule.on_unavailable.as_ref(),
                field("on_unavailable"),
                &[
                    ("refuse", OnUnavailable::Refuse),
                    ("degrade", OnUnavailable::Degrade),
                ],
            )?;
            if rule.max_queue == Some(0) {
                return Err(self.near(&field("max_queue"), "must be at least 1".into()));
            }
            rules.push(MirrorRule {
                datasets,
                backends: names,
                mode,
                max_queue: rule.max_queue.unwrap_or(1_000_000),
                on_full,
                on_unavailable,
                wait: Duration::from_millis(rule.wait_ms.unwrap_or(5000).max(1)),
            });
        }
        self.refuse_mirror_cycles(file, &rules, routes, default_backend)?;
        Ok(rules)
    }

    /// A backend that holds datasets mirrored to a backend which, in turn,
    /// holds datasets mirrored back to it (or to itself) would end up with
    /// a dataset on both sides the moment one moves (DEFINE routed there,
    /// a migration): refused, naming the rule that closes the circle.
    fn refuse_mirror_cycles(
        &self,
        file: &ConfigFile,
        rules: &[MirrorRule],
        routes: &[(String, String)],
        default_backend: Option<&str>,
    ) -> Result<(), ConfigError> {
        let mut placed: Vec<(String, String)> = routes.to_vec();
        if let Some(default) = default_backend {
            placed.push(("**".into(), default.to_string()));
        }
        // Edges primary -> mirror, each with the rule that makes it: a
        // route leads a rule's datasets to its backend if some of them
        // match it and an earlier route does not take them all.
        let mut edges: BTreeMap<String, BTreeSet<(String, usize)>> = BTreeMap::new();
        for (i, rule) in rules.iter().enumerate() {
            for (k, (pattern, primary)) in placed.iter().enumerate() {
                let taken_before = placed[..k]
                    .iter()
                    .any(|(earlier, _)| pattern_within(&rule.datasets, earlier));
                if !taken_before && patterns_overlap(pattern, &rule.datasets) {
                    for mirror in &rule.backends {
                        edges
                            .entry(primary.clone())
                            .or_default()
                            .insert((mirror.clone(), i));
                    }
                }
            }
        }
        for (primary, mirrors) in &edges {
            if let Some((_, rule)) = mirrors.iter().find(|(mirror, _)| mirror == primary) {
                return Err(self.at(
                    file.mirrors[*rule].backends.span(),
                    format!("mirrors[{rule}].backends"),
                    format!(
                        "datasets matching {} can live on backend {primary}, which this rule makes their mirror too: a dataset cannot mirror to its own backend",
                        rules[*rule].datasets
                    ),
                ));
            }
        }
        for start in edges.keys() {
            // Depth-first from each backend: reaching it again is a cycle.
            let mut stack: Vec<(String, usize)> = edges[start].iter().cloned().collect();
            let mut seen = BTreeSet::new();
            while let Some((backend, rule)) = stack.pop() {
                if backend == *start {
                    return Err(self.at(
                        file.mirrors[rule].backends.span(),
                        format!("mirrors[{rule}].backends"),
                        format!(
                            "backend {start} would mirror, through other mirrors, back to itself (a mirror of a mirror): the datasets matching {} could come to live where their own copies go",
                            rules[rule].datasets
                        ),
                    ));
                }
                if seen.insert(backend.clone())
                    && let Some(next) = edges.get(&backend)
                {
                    stack.extend(next.iter().cloned());
                }
            }
        }
        Ok(())
    }
}

/// True if some dataset name matches both patterns (`*` any run within a
/// qualifier, `**` any run, `%` one character other than a dot).
pub(crate) fn patterns_overlap(a: &str, b: &str) -> bool {
    // The characters that can tell the patterns apart: their literals,
    // the dot, and one character neither names.
    let mut alphabet: BTreeSet<u8> = a
        .bytes()
        .chain(b.bytes())
        .filter(|c| !b"*%".contains(c))
        .collect();
    alphabet.insert(b'.');
    alphabet.insert(b'\x01');
    let (a, b) = (tokens(a), tokens(b));
    let mut seen = BTreeSet::new();
    let mut stack = vec![(0usize, 0usize)];
    while let Some((i, j)) = stack.pop() {
        if !seen.insert((i, j)) {
            continue;
        }
        // A star may match nothing: move past it without a character.
        if let Some(Token::Star(_)) = a.get(i) {
            stack.push((i + 1, j));
        }
        if let Some(Token::Star(_)) = b.get(j) {
            stack.push((i, j + 1));
        }
        if i == a.len() && j == b.len() {
            return true;
        }
        for &c in &alphabet {
            for ni in step(&a, i, c) {
                for nj in step(&b, j, c) {
                    stack.push((ni, nj));
                }
            }
        }
    }
    false
}

/// True if every dataset name matching `inner` matches `outer`.
pub(crate) fn pattern_within(inner: &str, outer: &str) -> bool {
    let mut alphabet: BTreeSet<u8> = inner
        .bytes()
        .chain(outer.bytes())
        .filter(|c| !b"*%".contains(c))
        .collect();
    alphabet.insert(b'.');
    alphabet.insert(b'\x01');
    let (a, b) = (tokens(inner), tokens(outer));
    // Where `outer` can be, as a set: a name `inner` accepts while `outer`
    // cannot is a counterexample.
    let close = |set: BTreeSet<usize>| -> BTreeSet<usize> {
        let mut out = set;
        let mut added = true;
        while added {
            added = false;
            for j in out.clone() {
                if let Some(Token::Star(_)) = b.get(j)
                    && out.insert(j + 1)
                {
                    added = true;
                }
            }
        }
        out
    };
    let mut seen = BTreeSet::new();
    let mut stack = vec![(0usize, close(BTreeSet::from([0usize])))];
    while let Some((i, set)) = stack.pop() {
        if !seen.insert((i, set.clone())) {
            continue;
        }
        if let Some(Token::Star(_)) = a.get(i) {
            stack.push((i + 1, set.clone()));
        }
        if i == a.len() && !set.contains(&b.len()) {
            return false;
        }
        for &c in &alphabet {
            let next_i = step(&a, i, c);
            if next_i.is_empty() {
                continue;
            }
            let next_set = close(set.iter().flat_map(|&j| step(&b, j, c)).collect());
            for ni in next_i {
                stack.push((ni, next_set.clone()));
            }
        }
    }
    true
}

#[derive(Clone, Copy)]
enum Token {
    Literal(u8),
    /// `%`: one character, not a dot.
    One,
    /// `*` (false: not across dots) or `**` (true).
    Star(bool),
}

fn tokens(pattern: &str) -> Vec<Token> {
    let bytes = pattern.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'*' if bytes.get(i + 1) == Some(&b'*') => {
                out.push(Token::Star(true));
                i += 2;
                continue;
            }
            b'*' => out.push(Token::Star(false)),
            b'%' => out.push(Token::One),
            c => out.push(Token::Literal(c)),
        }
        i += 1;
    }
    out
}

/// Where pattern position `i` can be after reading `c`.
fn step(pattern: &[Token], i: usize, c: u8) -> Vec<usize> {
    match pattern.get(i) {
        Some(Token::Literal(l)) if *l == c => vec![i + 1],
        Some(Token::One) if c != b'.' => vec![i + 1],
        Some(Token::Star(across)) if *across || c != b'.' => vec![i],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::{pattern_within, patterns_overlap};
    use crate::catalog::matches;

    #[test]
    fn within_is_what_every_name_shows() {
        let cases = [
            ("HR.**", "HR.**", true),
            ("HR.PAY", "HR.**", true),
            ("HR.*", "HR.**", true),
            ("HR.**", "HR.*", false),
            ("**", "HR.**", false),
            ("A%", "A*", true),
            ("A*", "A%", false),
            ("A.B.C", "*.*.*", true),
            ("*.B", "A.*", false),
        ];
        for (inner, outer, within) in cases {
            assert_eq!(
                pattern_within(inner, outer),
                within,
                "{inner} within {outer}"
            );
        }
        let names: Vec<String> = ["", "A", "B", "."]
            .iter()
            .flat_map(|a| ["", "A", "B", "."].iter().map(move |b| format!("{a}{b}")))
            .flat_map(|ab| ["", "A", ".", "B"].iter().map(move |c| format!("{ab}{c}")))
            .collect();
        let patterns = [
            "A*", "*B", "**", "%", "%.%", "*.*", "A**B", ".*", "**.", "A.**",
        ];
        for a in patterns {
            for b in patterns {
                if pattern_within(a, b) {
                    for name in &names {
                        assert!(
                            !matches(a, name) || matches(b, name),
                            "{a} within {b}: {name}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn overlap_is_what_a_common_name_shows() {
        let cases = [
            ("PAY.**", "**", true),
            ("PAY.**", "HR.**", false),
            ("PAY.*", "PAY.MASTER", true),
            ("PAY.*", "PAY.A.B", false),
            ("PAY.**", "*.MASTER", true),
            ("%%%.X", "PAY.*", true),
            ("%%.X", "PAY.*", false),
            ("%%%.X", "PA*.X", true),
            ("A*", "*B", true),
            ("A.*", "*.B.C", false),
            ("**", "**", true),
        ];
        for (a, b, overlap) in cases {
            assert_eq!(patterns_overlap(a, b), overlap, "{a} and {b}");
            assert_eq!(patterns_overlap(b, a), overlap, "{b} and {a}");
        }
        // Against a brute force over short names.
        let names: Vec<String> = ["", "A", "B", ".", "X"]
            .iter()
            .flat_map(|a| {
                ["", "A", "B", ".", "X"]
                    .iter()
                    .map(move |b| format!("{a}{b}"))
            })
            .flat_map(|ab| ["", "A", ".", "B"].iter().map(move |c| format!("{ab}{c}")))
            .collect();
        let patterns = [
            "A*", "*B", "**", "%", "%.%", "*.*", "A**B", "X", ".*", "**.",
        ];
        for a in patterns {
            for b in patterns {
                let common = names.iter().any(|n| matches(a, n) && matches(b, n));
                if common {
                    assert!(patterns_overlap(a, b), "{a} and {b} share a name");
                }
            }
        }
    }
}
