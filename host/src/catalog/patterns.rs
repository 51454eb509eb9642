//! Dataset name patterns as IDCAMS writes them, and the routing of a new
//! dataset to a backend by them.

/// True if `name` matches `pattern`: `*` is any run of characters within one
/// qualifier, `**` any run including dots, `%` exactly one character.
///
/// Matched from the pattern's end back, one row of "does the rest of the
/// pattern match the rest of the name from here" per pattern element: time
/// in the pattern's length times the name's, whatever the pattern. (Trying
/// each way a wildcard could match, as a recursive matcher does, takes
/// time exponential in the number of `**`: a LIST of
/// `**A**A**A**A**A**A**A**A**A**A**A**A**B` kept a server's thread, and
/// its catalog, busy for hours.)
pub fn matches(pattern: &str, name: &str) -> bool {
    let n = name.as_bytes();
    // rest[j]: the elements after the one at hand match `n[j..]`.
    let mut rest = vec![false; n.len() + 1];
    rest[n.len()] = true;
    let mut here = vec![false; n.len() + 1];
    for element in elements(pattern.as_bytes()).iter().rev() {
        for j in (0..=n.len()).rev() {
            let next = n.get(j).copied();
            here[j] = match element {
                Element::AnyAcross => rest[j] || (next.is_some() && here[j + 1]),
                Element::AnyWithin => rest[j] || (next.is_some_and(|c| c != b'.') && here[j + 1]),
                Element::One => next.is_some_and(|c| c != b'.') && rest[j + 1],
                Element::Byte(b) => next == Some(*b) && rest[j + 1],
            };
        }
        std::mem::swap(&mut rest, &mut here);
    }
    rest[0]
}

/// One element of a pattern.
enum Element {
    /// `**`: any run of characters, dots included.
    AnyAcross,
    /// `*`: any run of characters within one qualifier.
    AnyWithin,
    /// `%`: one character, not a dot.
    One,
    /// That very byte.
    Byte(u8),
}

/// A pattern's elements, read from its start (`***` is `**` then `*`).
fn elements(pattern: &[u8]) -> Vec<Element> {
    let mut elements = Vec::with_capacity(pattern.len());
    let mut at = 0;
    while at < pattern.len() {
        let (element, width) = match &pattern[at..] {
            [b'*', b'*', ..] => (Element::AnyAcross, 2),
            [b'*', ..] => (Element::AnyWithin, 1),
            [b'%', ..] => (Element::One, 1),
            [b, ..] => (Element::Byte(*b), 1),
            [] => unreachable!("inside the pattern"),
        };
        elements.push(element);
        at += width;
    }
    elements
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
