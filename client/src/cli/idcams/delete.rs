//! DELETE: clusters, alternate indexes and paths, by name or generic name
//! (`PROD.*.OLD`, `PROD.CUST%`), each type only when it is named.

use super::Context;
use super::listing::cc;
use super::syntax::{Keyword, Params, SyntaxError, kw, names};
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
    let names = names(&first)?;
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
    // The server matches generic names, as LIST and LISTCAT do.
    let matched: Vec<String> = match generic {
        false => vec![name.to_string()],
        true => match vsam_client::listcat(cx.conn, name).await {
            Ok(entries) => entries.into_iter().map(|e| e.spec.name).collect(),
            Err(error) => return cx.listing.client_error(name, &error),
        },
    };
    let mut chosen: Vec<&CatalogEntry> = catalog
        .iter()
        .filter(|entry| matched.contains(&entry.spec.name))
        .collect();
    if chosen.is_empty() {
        return not_found(cx, name, None);
    }
    if !types.is_empty() {
        let (kept, other): (Vec<_>, Vec<_>) = chosen
            .into_iter()
            .partition(|entry| types.contains(&type_of(entry)));
        if !generic && let Some(entry) = other.first() {
            return not_found(cx, name, Some(type_of(entry)));
        }
        chosen = kept;
        if chosen.is_empty() {
            return not_found(cx, name, None);
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

/// Lists that no entry of `name` (of the types named; it is `other`) was
/// deleted: condition code 8.
fn not_found(cx: &mut Context<'_>, name: &str, other: Option<Type>) -> u8 {
    cx.listing
        .message(format!("IDC3012I ENTRY {name} NOT FOUND"));
    if let Some(other) = other {
        cx.listing.message(format!(
            "VSR3012I ** {name} IS {}, AND THE COMMAND NAMES ANOTHER TYPE",
            type_name(other)
        ));
    }
    cx.listing
        .message(format!("IDC0551I ** ENTRY {name} NOT DELETED"));
    cc::BYPASSED
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
}
