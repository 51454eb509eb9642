//! LISTCAT: the catalog's entries (ENTRIES, generic names, LEVEL), by
//! name or with ALL their attributes and associations, counted at the end.

use super::Context;
use super::define::describe;
use super::listing::cc;
use super::syntax::{Item, Keyword, Params, SyntaxError, kw, names};
use vsam_client::{CatalogEntry, EntryType, Organization};

/// Which entries.
enum Scope {
    All,
    Entries(Vec<String>),
    Level(String),
}

struct Listcat {
    scope: Scope,
    /// CLUSTER, ALTERNATEINDEX, PATH named: only those types.
    types: Vec<&'static str>,
    all: bool,
}

fn parse(mut params: Params, notes: &mut Vec<String>) -> Result<Listcat, SyntaxError> {
    let entries = params.values(kw::ENTRIES)?;
    let level = params.name(kw::LEVEL)?;
    let scope = match (entries, level) {
        (Some(_), Some(_)) => {
            return Err(SyntaxError::other("ENTRIES AND LEVEL EXCLUDE EACH OTHER"));
        }
        (Some(entries), None) => Scope::Entries(names(&Item {
            atom: None,
            args: Some(entries),
        })?),
        (None, Some(level)) => Scope::Level(level),
        (None, None) => Scope::All,
    };
    let mut types = Vec::new();
    for (keyword, name) in [
        (kw::CLUSTER, "CLUSTER"),
        (kw::ALTERNATEINDEX, "AIX"),
        (kw::PATH, "PATH"),
    ] {
        if params.flag(keyword)? {
            types.push(name);
        }
    }
    for keyword in [kw::DATA, kw::INDEX] {
        if params.flag(keyword)? {
            notes.push(format!(
                "VSR0001I {} IGNORED: COMPONENTS ARE NOT CATALOGED APART FROM THEIR CLUSTER",
                keyword.name
            ));
        }
    }
    let all = params.flag(kw::ALL)?;
    params.flag(kw::NAME)?;
    for name in ["HISTORY", "VOLUME", "ALLOCATION"] {
        let keyword = Keyword { name, short: &[] };
        if params.flag(keyword)? {
            notes.push(format!(
                "VSR0001I {name} IGNORED: THE SERVER KEEPS NO SUCH INFORMATION; ALL LISTS WHAT IT KEEPS"
            ));
        }
    }
    params.take(Keyword {
        name: "CATALOG",
        short: &["CAT"],
    })?;
    params.finish()?;
    Ok(Listcat { scope, types, all })
}

fn type_name(entry: &CatalogEntry) -> &'static str {
    match entry.entry_type {
        EntryType::Cluster => "CLUSTER",
        EntryType::Aix { .. } => "AIX",
        EntryType::Path { .. } => "PATH",
    }
}

/// LISTCAT.
pub async fn run(cx: &mut Context<'_>, params: Params) -> Result<u8, SyntaxError> {
    let mut notes = Vec::new();
    let listcat = parse(params, &mut notes)?;
    for note in notes {
        cx.listing.message(note);
    }
    let catalog = match vsam_client::listcat(cx.conn, "**").await {
        Ok(entries) => entries,
        Err(error) => return Ok(cx.listing.client_error("**", &error)),
    };
    let of_type = |entry: &&CatalogEntry| {
        listcat.types.is_empty() || listcat.types.contains(&type_name(entry))
    };
    let mut code = cc::OK;
    let mut listed: Vec<&CatalogEntry> = Vec::new();
    // The server matches generic names and levels, as for LIST.
    let asked: Vec<(String, String)> = match &listcat.scope {
        Scope::All => vec![("**".into(), "**".into())],
        Scope::Level(level) => vec![(level.clone(), format!("{level}.**"))],
        Scope::Entries(names) => names.iter().map(|n| (n.clone(), n.clone())).collect(),
    };
    for (name, pattern) in asked {
        let matched: Vec<String> = match vsam_client::listcat(cx.conn, &pattern).await {
            Ok(entries) => entries.into_iter().map(|e| e.spec.name).collect(),
            Err(error) => return Ok(cx.listing.client_error(&name, &error)),
        };
        let found: Vec<&CatalogEntry> = catalog
            .iter()
            .filter(|e| matched.contains(&e.spec.name))
            .filter(of_type)
            .filter(|e| !listed.iter().any(|l| l.spec.name == e.spec.name))
            .collect();
        if found.is_empty() && !matches!(listcat.scope, Scope::All) {
            cx.listing
                .message(format!("IDC3012I ENTRY {name} NOT FOUND"));
            cx.listing.message(format!("IDC1566I ** {name} NOT LISTED"));
            code = cc::WARNING;
        }
        listed.extend(found);
    }
    let server = cx.conn.welcome().server.clone();
    cx.listing.line("");
    cx.listing
        .line(&format!("LISTING FROM CATALOG -- {server}"));
    for entry in &listed {
        cx.listing.line("");
        let kind = type_name(entry);
        cx.listing.line(&format!(
            "{kind} {} {}",
            "-".repeat(14 - kind.len()),
            entry.spec.name
        ));
        if listcat.all {
            for line in attributes(entry, &catalog, &server) {
                cx.listing.line(&line);
            }
        }
    }
    let count = |name: &str| listed.iter().filter(|e| type_name(e) == name).count();
    cx.listing.line("");
    cx.listing
        .line("          THE NUMBER OF ENTRIES PROCESSED WAS:");
    for (name, n) in [
        ("AIX", count("AIX")),
        ("CLUSTER", count("CLUSTER")),
        ("PATH", count("PATH")),
        ("TOTAL", listed.len()),
    ] {
        cx.listing.line(&format!(
            "                    {name} {:-<width$}{n}",
            "",
            width = 22 - name.len()
        ));
    }
    cx.listing.line("");
    cx.listing
        .line("          THE NUMBER OF PROTECTED ENTRIES SUPPRESSED WAS 0");
    Ok(code)
}

/// LISTCAT ALL: what the catalog keeps of an entry, and what it is
/// associated with.
fn attributes(entry: &CatalogEntry, catalog: &[CatalogEntry], server: &str) -> Vec<String> {
    let spec = &entry.spec;
    let mut lines = vec![
        format!("     IN-CAT --- {server}"),
        "     ATTRIBUTES".to_string(),
    ];
    let field =
        |name: &str, value: String| format!("{name}{value:->width$}", width = 19 - name.len());
    let mut associations: Vec<(&str, &str)> = Vec::new();
    match &entry.entry_type {
        EntryType::Cluster => {
            let mut row = Vec::new();
            if spec.organization == Organization::Ksds {
                row.push(field("KEYLEN", spec.key_length.to_string()));
                row.push(field("RKP", spec.key_offset.to_string()));
            }
            row.push(field("MAXLRECL", spec.max_record.to_string()));
            row.push(field("MINLRECL", spec.min_record.to_string()));
            lines.push(format!("       {}", row.join("     ")));
            lines.push(format!("       {}", describe(spec)));
            for index in catalog.iter().filter(
                |e| matches!(&e.entry_type, EntryType::Aix { base, .. } if *base == spec.name),
            ) {
                associations.push(("AIX", &index.spec.name));
            }
        }
        EntryType::Aix {
            base,
            unique,
            upgrade,
        } => {
            lines.push(format!(
                "       {}     {}",
                field("KEYLEN", spec.key_length.to_string()),
                field("RKP", spec.key_offset.to_string())
            ));
            lines.push(format!(
                "       {}     {}",
                if *unique { "UNIQKEY" } else { "NONUNIQKEY" },
                if *upgrade { "UPGRADE" } else { "NOUPGRADE" }
            ));
            associations.push(("CLUSTER", base));
            for path in catalog
                .iter()
                .filter(|e| matches!(&e.entry_type, EntryType::Path { aix } if *aix == spec.name))
            {
                associations.push(("PATH", &path.spec.name));
            }
        }
        EntryType::Path { aix } => {
            associations.push(("AIX", aix));
            if let Some(EntryType::Aix { base, .. }) = catalog
                .iter()
                .find(|e| e.spec.name == *aix)
                .map(|e| &e.entry_type)
            {
                associations.push(("CLUSTER", base));
            }
        }
    }
    lines.push(format!(
        "       CODEPAGE {}     BACKEND {}",
        spec.codepage, spec.backend
    ));
    if !associations.is_empty() {
        lines.push("     ASSOCIATIONS".to_string());
        for (kind, name) in associations {
            lines.push(format!("       {kind:-<9}{name}"));
        }
    }
    lines
}
