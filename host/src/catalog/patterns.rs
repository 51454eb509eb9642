//! Dataset name patterns as IDCAMS writes them, and the routing of a new
//! dataset to a backend by them.

/// True if `name` matches `pattern`: `*` is any run of characters within one
/// qualifier, `**` any run including dots, `%` exactly one character.
pub fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p {
            [] => n.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=n.len()).any(|i| go(rest, &n[i..])),
            [b'*', rest @ ..] => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'.')
                .any(|i| go(rest, &n[i..])),
            [b'%', rest @ ..] => n.first().is_some_and(|&c| c != b'.') && go(rest, &n[1..]),
            [c, rest @ ..] => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// What every name `pattern` matches starts with: the pattern up to its
/// first wildcard. A listing starts there in name order and ends at the
/// first name without it, instead of reading the whole catalog.
pub fn literal_prefix(pattern: &str) -> &str {
    let end = pattern.find(['*', '%']).unwrap_or(pattern.len());
    &pattern[..end]
}

/// The backend a new dataset goes to: the first matching rule, else the default.
pub fn route(name: &str, rules: &[(String, String)], default: Option<&str>) -> Option<String> {
    rules
        .iter()
        .find(|(pattern, _)| matches(pattern, name))
        .map(|(_, backend)| backend.clone())
        .or_else(|| default.map(str::to_string))
}
