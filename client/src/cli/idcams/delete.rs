//! DELETE: clusters, alternate indexes and paths, by name or generic name
//! (`PROD.*.OLD`, `PROD.CUST%`), each type only when it is named.

use super::Context;
use super::listing::cc;
use super::syntax::{Atom, Item, Keyword, Params, SyntaxError, kw};
use vsam_client::{CatalogEntry, EntryType};

/// The entry types DELETE can be limited to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Type {
    Cluster,
    Aix,
    Path,
}

/// Parameters that change nothing here: no retention period to override
/// (PURGE), records are removed with their dataset (ERASE, SCRATCH).
const QUIET: &[Keyword] = &[
    Keyword {
        name: "PURGE",
        short: &["PRG"],
    },
    Keyword {
        name: "NOPURGE",
        short: &["NPRG"],
    },
    Keyword {
        name: "ERASE",
        short: &["ERAS"],
    },
    Keyword {
        name: "NOERASE",
        short: &["NERAS"],
    },
    Keyword {
        name: "SCRATCH",
        short: &["SCR"],
    },
    Keyword {
        name: "NOSCRATCH",
        short: &["NSCR"],
    },
    Keyword {
        name: "FORCE",
        short: &["FRC"],
    },
    Keyword {
        name: "NOFORCE",
        short: &["NFRC"],
    },
    Keyword {
        name: "MASK",
        short: &[],
    },
];

/// Types of entry this server has none of.
const NOT_HERE: &[&str] = &[
    "NONVSAM",
    "NVSAM",
    "GENERATIONDATAGROUP",
    "GDG",
    "USERCATALOG",
    "UCAT",
    "ALIAS",
    "PAGESPACE",
    "PGSPC",
    "SPACE",
    "SPC",
    "LIBRARYENTRY",
    "LIBENTRY",
    "VOLUMEENTRY",
    "VOLENTRY",
    "TRUENAME",
    "TNAME",
    "NVR",
    "VVR",
];

struct Delete {
    names: Vec<String>,
    types: Vec<Type>,
}

fn parse(mut params: Params) -> Result<Delete, SyntaxError> {
    let Some(first) = params.first() else {
        return Err(SyntaxError::missing("ENTRYNAME", "DELETE"));
    };
    let names = match first {
        Item {
            atom: Some(Atom::Word(name)),
            args: None,
        } => vec![name.to_ascii_uppercase()],
        Item {
            atom: None,
            args: Some(names),
        } => names
            .iter()
            .map(|item| match item {
                Item {
                    atom: Some(Atom::Word(name)),
                    args: None,
                } => Ok(name.to_ascii_uppercase()),
                other => Err(SyntaxError::item(other, "AN ENTRY NAME IS EXPECTED")),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(SyntaxError::item(other, "AN ENTRY NAME IS EXPECTED")),
    };
    let mut types = Vec::new();
    for (keyword, kind) in [
        (kw::CLUSTER, Type::Cluster),
        (kw::ALTERNATEINDEX, Type::Aix),
        (kw::PATH, Type::Path),
    ] {
        if params.flag(keyword)? {
            types.push(kind);
        }
    }
    for keyword in QUIET {
        params.flag(*keyword)?;
    }
    if let Some(word) = params
        .rest_words()
        .into_iter()
        .find(|w| NOT_HERE.contains(&w.as_str()))
    {
        return Err(SyntaxError::other(format!(
            "{word} ENTRIES ARE NOT KEPT BY THIS SERVER: IT DELETES CLUSTERS, ALTERNATE INDEXES AND PATHS"
        )));
    }
    params.take(Keyword {
        name: "CATALOG",
        short: &["CAT"],
    })?;
    params.finish()?;
    Ok(Delete { names, types })
}

/// DELETE.
pub async fn run(cx: &mut Context<'_>, params: Params) -> Result<u8, SyntaxError> {
    let delete = parse(params)?;
    let catalog = match vsam_client::listcat(cx.conn, "**").await {
        Ok(entries) => entries,
        Err(error) => return Ok(cx.listing.client_error("**", &error)),
    };
    let mut code = cc::OK;
    for name in &delete.names {
        code = code.max(delete_named(cx, &catalog, name, &delete.types).await);
        if code >= cc::SEVERE {
            break;
        }
    }
    Ok(code)
}

fn type_of(entry: &CatalogEntry) -> Type {
    match entry.entry_type {
        EntryType::Cluster => Type::Cluster,
        EntryType::Aix { .. } => Type::Aix,
        EntryType::Path { .. } => Type::Path,
    }
}

/// The letter IDC0550I gives a type.
fn letter(kind: Type) -> char {
    match kind {
        Type::Cluster => 'C',
        Type::Aix => 'G',
        Type::Path => 'R',
    }
}

fn type_name(kind: Type) -> &'static str {
    match kind {
        Type::Cluster => "A CLUSTER",
        Type::Aix => "AN ALTERNATE INDEX",
        Type::Path => "A PATH",
    }
}

/// Deletes the entries one name (or generic name) gives.
async fn delete_named(
    cx: &mut Context<'_>,
    catalog: &[CatalogEntry],
    name: &str,
    types: &[Type],
) -> u8 {
    let generic = name.contains(['*', '%']);
    let mut chosen: Vec<&CatalogEntry> = catalog
        .iter()
        .filter(|entry| match generic {
            true => matches(name, &entry.spec.name),
            false => entry.spec.name == name,
        })
        .collect();
    if chosen.is_empty() {
        cx.listing
            .message(format!("IDC3012I ENTRY {name} NOT FOUND"));
        cx.listing
            .message(format!("IDC0551I ** ENTRY {name} NOT DELETED"));
        return cc::BYPASSED;
    }
    if !types.is_empty() {
        let (kept, other): (Vec<_>, Vec<_>) = chosen
            .into_iter()
            .partition(|entry| types.contains(&type_of(entry)));
        if !generic && let Some(entry) = other.first() {
            cx.listing
                .message(format!("IDC3012I ENTRY {name} NOT FOUND"));
            cx.listing.message(format!(
                "VSR3012I ** {name} IS {}, AND THE COMMAND NAMES ANOTHER TYPE",
                type_name(type_of(entry))
            ));
            cx.listing
                .message(format!("IDC0551I ** ENTRY {name} NOT DELETED"));
            return cc::BYPASSED;
        }
        chosen = kept;
        if chosen.is_empty() {
            cx.listing
                .message(format!("IDC3012I ENTRY {name} NOT FOUND"));
            cx.listing
                .message(format!("IDC0551I ** ENTRY {name} NOT DELETED"));
            return cc::BYPASSED;
        }
    }
    // Paths, then indexes, then clusters: deleting a cluster takes its
    // indexes and paths with it.
    chosen.sort_by_key(|entry| match type_of(entry) {
        Type::Path => 0,
        Type::Aix => 1,
        Type::Cluster => 2,
    });
    let mut gone: Vec<String> = Vec::new();
    let mut code = cc::OK;
    for entry in chosen {
        let entry_name = &entry.spec.name;
        if gone.contains(entry_name) {
            continue;
        }
        match vsam_client::delete(cx.conn, entry_name).await {
            Ok(()) => {
                for related in related(catalog, entry) {
                    if !gone.contains(&related.spec.name) {
                        cx.listing.message(format!(
                            "IDC0550I ENTRY ({}) {} DELETED",
                            letter(type_of(related)),
                            related.spec.name
                        ));
                        gone.push(related.spec.name.clone());
                    }
                }
                cx.listing.message(format!(
                    "IDC0550I ENTRY ({}) {entry_name} DELETED",
                    letter(type_of(entry))
                ));
                gone.push(entry_name.clone());
            }
            Err(error) => {
                code = code.max(
                    cx.listing
                        .client_error(entry_name, &error)
                        .max(cc::BYPASSED),
                );
                cx.listing
                    .message(format!("IDC0551I ** ENTRY {entry_name} NOT DELETED"));
                if code >= cc::SEVERE {
                    break;
                }
            }
        }
    }
    code
}

/// What goes with an entry when it is deleted: a cluster's alternate
/// indexes and their paths, an index's paths.
fn related<'c>(catalog: &'c [CatalogEntry], entry: &CatalogEntry) -> Vec<&'c CatalogEntry> {
    let name = &entry.spec.name;
    let indexes: Vec<&CatalogEntry> = catalog
        .iter()
        .filter(|e| matches!(&e.entry_type, EntryType::Aix { base, .. } if base == name))
        .collect();
    let mut out = Vec::new();
    for index in indexes
        .iter()
        .copied()
        .chain(matches!(entry.entry_type, EntryType::Aix { .. }).then_some(entry))
    {
        out.extend(catalog.iter().filter(
            |e| matches!(&e.entry_type, EntryType::Path { aix } if *aix == index.spec.name),
        ));
    }
    out.extend(indexes);
    out
}

/// IDCAMS generic names: `*` is one qualifier (or the rest of one after
/// a prefix), `%` one character, `**` any number of qualifiers.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::idcams::syntax::{items, tokens};

    fn parsed(text: &str) -> Result<Delete, SyntaxError> {
        parse(Params::new(items(&tokens(text).unwrap()).unwrap()))
    }

    #[test]
    fn names_come_first_then_types() {
        let one = parsed("PROD.CUST CLUSTER PURGE").unwrap();
        assert_eq!(one.names, ["PROD.CUST"]);
        assert!(one.types == [Type::Cluster]);
        let several = parsed("(PROD.A PROD.B) AIX PATH").unwrap();
        assert_eq!(several.names, ["PROD.A", "PROD.B"]);
        assert_eq!(several.types.len(), 2);
        let named_like_a_type = parsed("CL").unwrap();
        assert_eq!(named_like_a_type.names, ["CL"]);
        assert!(parsed("PROD.A NONVSAM").is_err());
        assert!(parsed("PROD.A BOGUS").is_err());
    }

    #[test]
    fn generic_names_match_as_idcams_does() {
        assert!(matches("PROD.*.OLD", "PROD.CUST.OLD"));
        assert!(!matches("PROD.*.OLD", "PROD.CUST.X.OLD"));
        assert!(!matches("PROD.*", "PROD.CUST.OLD"));
        assert!(matches("PROD.CU*", "PROD.CUST"));
        assert!(matches("PROD.CUST%", "PROD.CUST1"));
        assert!(!matches("PROD.CUST%", "PROD.CUST12"));
        assert!(matches("PROD.**", "PROD.A.B.C"));
    }
}
