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
/// its catalog, busy for hours.) A dataset name's rows live on the stack:
/// routing, access rules and the change stream match on every request.
pub fn matches(pattern: &str, name: &str) -> bool {
    const ROW: usize = 64;
    // The literal prefix is compared as it stands, the rest matched in
    // rows (`PROD.**` is `PROD.` then one element).
    let prefix = literal_prefix(pattern);
    let Some(n) = name.as_bytes().strip_prefix(prefix.as_bytes()) else {
        return false;
    };
    let pattern = &pattern[prefix.len()..];
    if n.len() < ROW {
        let (mut rest, mut here) = ([false; ROW], [false; ROW]);
        let width = n.len() + 1;
        match_rows(
            pattern.as_bytes(),
            n,
            &mut rest[..width],
            &mut here[..width],
        )
    } else {
        let (mut rest, mut here) = (vec![false; n.len() + 1], vec![false; n.len() + 1]);
        match_rows(pattern.as_bytes(), n, &mut rest, &mut here)
    }
}

/// One element of a pattern.
enum Element {
    /// `**` (or a longer run of stars): any run of characters, dots
    /// included.
    AnyAcross,
    /// `*` alone: any run of characters within one qualifier.
    AnyWithin,
    /// `%`: one character, not a dot.
    One,
    /// That very byte.
    Byte(u8),
}

/// [`matches`] in rows of `name.len() + 1`: `rest[j]` says whether the
/// elements after the one at hand match `n[j..]`, `here` is filled for it.
fn match_rows(p: &[u8], n: &[u8], rest: &mut [bool], here: &mut [bool]) -> bool {
    rest.fill(false);
    rest[n.len()] = true;
    let (mut rest, mut here) = (rest, here);
    let mut end = p.len();
    while end > 0 {
        // The last element of `p[..end]`. A run of stars is one element:
        // `*` alone stays within a qualifier, any longer run (`**`, and
        // `***` = `**` then `*`) crosses dots.
        let (element, start) = match p[end - 1] {
            b'*' => {
                let start = p[..end]
                    .iter()
                    .rposition(|&c| c != b'*')
                    .map_or(0, |i| i + 1);
                match end - start {
                    1 => (Element::AnyWithin, start),
                    _ => (Element::AnyAcross, start),
                }
            }
            b'%' => (Element::One, end - 1),
            byte => (Element::Byte(byte), end - 1),
        };
        for j in (0..=n.len()).rev() {
            let next = n.get(j).copied();
            here[j] = match element {
                Element::AnyAcross => rest[j] || (next.is_some() && here[j + 1]),
                Element::AnyWithin => rest[j] || (next.is_some_and(|c| c != b'.') && here[j + 1]),
                Element::One => next.is_some_and(|c| c != b'.') && rest[j + 1],
                Element::Byte(b) => next == Some(b) && rest[j + 1],
            };
        }
        std::mem::swap(&mut rest, &mut here);
        end = start;
    }
    rest[0]
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
