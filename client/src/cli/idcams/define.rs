//! DEFINE CLUSTER, DEFINE ALTERNATEINDEX, DEFINE PATH and BLDINDEX.

use super::Context;
use super::input::{Place, place};
use super::listing::cc;
use super::syntax::{Item, Keyword, Params, SyntaxError, kw};
use vsam_client::{AixSpec, DatasetSpec, EntryType, Organization, PathSpec};

/// IDCAMS's default KEYS of an INDEXED cluster or an alternate index.
const DEFAULT_KEYS: (u64, u64) = (64, 0);
/// IDCAMS's default RECORDSIZE of a cluster (non-spanned).
const DEFAULT_RECORDSIZE: u64 = 4089;

/// DEFINE: CLUSTER, ALTERNATEINDEX or PATH, with DATA and INDEX
/// components (whose space attributes mean nothing here).
pub async fn run(cx: &mut Context<'_>, mut params: Params) -> Result<u8, SyntaxError> {
    let mut notes = Vec::new();
    let what = if let Some(args) = params.values(kw::CLUSTER)? {
        What::Cluster(args)
    } else if let Some(args) = params.values(kw::ALTERNATEINDEX)? {
        What::Aix(args)
    } else if let Some(args) = params.values(kw::PATH)? {
        What::Path(args)
    } else {
        return Err(SyntaxError::other(
            "DEFINE TAKES CLUSTER(...), ALTERNATEINDEX(...) OR PATH(...) HERE",
        ));
    };
    // Listed after the cluster's own, in the order they are written.
    let mut component_notes = Vec::new();
    let data = component(&mut params, kw::DATA, &mut component_notes)?;
    let index = component(&mut params, kw::INDEX, &mut component_notes)?;
    if matches!(what, What::Path(_)) && (data.is_some() || index.is_some()) {
        return Err(SyntaxError::other("A PATH HAS NO DATA OR INDEX COMPONENT"));
    }
    params.drop_ignored(&[]);
    let top_notes = params.finish()?;
    let request = match what {
        What::Cluster(args) => {
            Request::Cluster(cluster(args, data, index, cx.codepage, &mut notes)?)
        }
        What::Aix(args) => Request::Aix(aix(args, data, &mut notes)?),
        What::Path(args) => Request::Path(path(args, &mut notes)?),
    };
    notes.extend(component_notes);
    notes.extend(top_notes);
    for note in &notes {
        cx.listing.message(note);
    }
    let (name, result) = match request {
        Request::Cluster(spec) => {
            let name = spec.name.clone();
            (name, vsam_client::define(cx.conn, spec).await)
        }
        Request::Aix(spec) => {
            let name = spec.name.clone();
            (name, vsam_client::define_aix(cx.conn, spec).await)
        }
        Request::Path(spec) => {
            let name = spec.name.clone();
            (name, vsam_client::define_path(cx.conn, spec).await)
        }
    };
    match result {
        Ok(entry) => {
            cx.listing.message(format!(
                "VSR0010I {name} DEFINED: {} ON BACKEND {}",
                describe(&entry),
                entry.backend
            ));
            Ok(cc::OK)
        }
        Err(error) => Ok(cx.listing.client_error(&name, &error)),
    }
}

enum What {
    Cluster(Vec<Item>),
    Aix(Vec<Item>),
    Path(Vec<Item>),
}

enum Request {
    Cluster(DatasetSpec),
    Aix(AixSpec),
    Path(PathSpec),
}

/// A DATA or INDEX component: its parameters (NAME and what the cluster
/// could say) are kept; its space attributes are noted as ignored.
fn component(
    params: &mut Params,
    keyword: Keyword,
    notes: &mut Vec<String>,
) -> Result<Option<Params>, SyntaxError> {
    let Some(args) = params.values(keyword)? else {
        return Ok(None);
    };
    let mut component = Params::new(args);
    component.name(kw::NAME)?;
    component.drop_ignored(&[]);
    notes.append(&mut component.ignored);
    Ok(Some(component))
}

/// A parameter given on the cluster or on its DATA component.
fn on_either<T>(
    cluster: &mut Params,
    data: &mut Option<Params>,
    take: impl Fn(&mut Params) -> Result<Option<T>, SyntaxError>,
) -> Result<Option<T>, SyntaxError> {
    let on_cluster = take(cluster)?;
    let on_data = match data {
        Some(data) => take(data)?,
        None => None,
    };
    Ok(on_cluster.or(on_data))
}

fn cluster(
    args: Vec<Item>,
    mut data: Option<Params>,
    index: Option<Params>,
    codepage: &str,
    notes: &mut Vec<String>,
) -> Result<DatasetSpec, SyntaxError> {
    let mut params = Params::new(args);
    let name = params
        .name(kw::NAME)?
        .ok_or_else(|| SyntaxError::missing("NAME", "DEFINE CLUSTER"))?;
    let indexed = params.flag(kw::INDEXED)?;
    let nonindexed = params.flag(kw::NONINDEXED)?;
    let numbered = params.flag(kw::NUMBERED)?;
    if params.flag(kw::LINEAR)? {
        return Err(SyntaxError::other(
            "LINEAR DATASETS (LDS) ARE NOT SERVED: DEFINE AN INDEXED, NONINDEXED OR NUMBERED CLUSTER",
        ));
    }
    if [indexed, nonindexed, numbered]
        .iter()
        .filter(|x| **x)
        .count()
        > 1
    {
        return Err(SyntaxError::other(
            "INDEXED, NONINDEXED AND NUMBERED EXCLUDE EACH OTHER",
        ));
    }
    let keys = on_either(&mut params, &mut data, |p| p.numbers(kw::KEYS, 2))?;
    let sizes = on_either(&mut params, &mut data, |p| p.numbers(kw::RECORDSIZE, 2))?;
    params.drop_ignored(&[]);
    notes.append(&mut params.ignored);
    params.finish()?;
    if let Some(data) = data {
        data.finish()?;
    }
    if let Some(index) = index {
        if nonindexed || numbered {
            return Err(SyntaxError::other(
                "ONLY AN INDEXED CLUSTER HAS AN INDEX COMPONENT",
            ));
        }
        index.finish()?;
    }
    let (average, maximum) = match sizes.as_deref() {
        Some([average, maximum]) => (*average, *maximum),
        _ => (DEFAULT_RECORDSIZE, DEFAULT_RECORDSIZE),
    };
    if average > maximum || maximum == 0 {
        return Err(SyntaxError::item(
            format!("RECORDSIZE({average} {maximum})"),
            "THE AVERAGE MAY NOT EXCEED THE MAXIMUM, WHICH MUST BE AT LEAST 1",
        ));
    }
    let maximum = u32::try_from(maximum)
        .map_err(|_| SyntaxError::item(format!("RECORDSIZE({average} {maximum})"), "TOO LARGE"))?;
    let organization = if numbered {
        // VSAM's variable-length RRDS is NUMBERED with an average below
        // the maximum.
        if average < u64::from(maximum) {
            Organization::Vrrds
        } else {
            Organization::Rrds
        }
    } else if nonindexed {
        Organization::Esds
    } else {
        Organization::Ksds
    };
    let (key_length, key_offset) = match (organization, keys.as_deref()) {
        (Organization::Ksds, Some([length, offset])) => (*length, *offset),
        (Organization::Ksds, _) => DEFAULT_KEYS,
        (_, Some(_)) => {
            return Err(SyntaxError::other("KEYS BELONGS TO AN INDEXED CLUSTER"));
        }
        (_, None) => (0, 0),
    };
    let key_length = u16::try_from(key_length)
        .ok()
        .filter(|length| (1..=255).contains(length) || organization != Organization::Ksds)
        .ok_or_else(|| {
            SyntaxError::item(
                format!("KEYS({key_length} {key_offset})"),
                "THE KEY LENGTH IS 1 TO 255",
            )
        })?;
    let key_offset = u32::try_from(key_offset)
        .map_err(|_| SyntaxError::item(format!("KEYS({key_length} {key_offset})"), "TOO LARGE"))?;
    Ok(DatasetSpec {
        name,
        organization,
        key_offset,
        key_length,
        min_record: 0,
        max_record: maximum,
        codepage: codepage.to_string(),
        backend: String::new(),
        layout: String::new(),
    })
}

fn aix(
    args: Vec<Item>,
    mut data: Option<Params>,
    notes: &mut Vec<String>,
) -> Result<AixSpec, SyntaxError> {
    let mut params = Params::new(args);
    let name = params
        .name(kw::NAME)?
        .ok_or_else(|| SyntaxError::missing("NAME", "DEFINE ALTERNATEINDEX"))?;
    let base = params
        .name(kw::RELATE)?
        .ok_or_else(|| SyntaxError::missing("RELATE", "DEFINE ALTERNATEINDEX"))?;
    let keys = on_either(&mut params, &mut data, |p| p.numbers(kw::KEYS, 2))?;
    let unique = params
        .either(kw::UNIQUEKEY, kw::NONUNIQUEKEY)?
        .unwrap_or(true);
    let upgrade = params.either(kw::UPGRADE, kw::NOUPGRADE)?.unwrap_or(true);
    // An index entry's size follows from its keys.
    let sizes = on_either(&mut params, &mut data, |p| p.numbers(kw::RECORDSIZE, 2))?;
    if let Some(sizes) = sizes {
        notes.push(format!(
            "VSR0001I RECORDSIZE({} {}) IGNORED: AN INDEX ENTRY IS AS LONG AS ITS KEYS",
            sizes[0], sizes[1]
        ));
    }
    params.drop_ignored(&[]);
    notes.append(&mut params.ignored);
    params.finish()?;
    if let Some(data) = data {
        data.finish()?;
    }
    let (length, offset) = match keys.as_deref() {
        Some([length, offset]) => (*length, *offset),
        _ => DEFAULT_KEYS,
    };
    let bad = || {
        SyntaxError::item(
            format!("KEYS({length} {offset})"),
            "THE KEY LENGTH IS 1 TO 255",
        )
    };
    let key_length = u16::try_from(length)
        .ok()
        .filter(|length| (1..=255).contains(length))
        .ok_or_else(bad)?;
    Ok(AixSpec {
        name,
        base,
        key_offset: u32::try_from(offset).map_err(|_| bad())?,
        key_length,
        unique,
        upgrade,
    })
}

fn path(args: Vec<Item>, notes: &mut Vec<String>) -> Result<PathSpec, SyntaxError> {
    let mut params = Params::new(args);
    let name = params
        .name(kw::NAME)?
        .ok_or_else(|| SyntaxError::missing("NAME", "DEFINE PATH"))?;
    let aix = params
        .name(kw::PATHENTRY)?
        .ok_or_else(|| SyntaxError::missing("PATHENTRY", "DEFINE PATH"))?;
    for keyword in [
        Keyword {
            name: "UPDATE",
            short: &["UPD"],
        },
        Keyword {
            name: "NOUPDATE",
            short: &["NUPD"],
        },
    ] {
        if params.flag(keyword)? {
            notes.push(format!(
                "VSR0001I {} IGNORED: WRITES THROUGH A PATH ALWAYS KEEP THE UPGRADE SET IN STEP",
                keyword.name
            ));
        }
    }
    params.drop_ignored(&[]);
    notes.append(&mut params.ignored);
    params.finish()?;
    Ok(PathSpec { name, aix })
}

/// How LISTCAT and DEFINE describe an entry's organization and keys.
pub fn describe(spec: &DatasetSpec) -> String {
    match spec.organization {
        Organization::Ksds => format!(
            "INDEXED KEYS({} {}) RECORDSIZE MAXIMUM {}",
            spec.key_length, spec.key_offset, spec.max_record
        ),
        Organization::Esds => format!("NONINDEXED RECORDSIZE MAXIMUM {}", spec.max_record),
        Organization::Rrds => format!("NUMBERED RECORDSIZE {}", spec.max_record),
        Organization::Vrrds => {
            format!("NUMBERED (VARIABLE) RECORDSIZE MAXIMUM {}", spec.max_record)
        }
    }
}

/// BLDINDEX: builds an alternate index from its base's records.
/// INDATASET/INFILE names the base, OUTDATASET/OUTFILE the index.
pub async fn bldindex(cx: &mut Context<'_>, mut params: Params) -> Result<u8, SyntaxError> {
    let base = dataset_of(cx, &mut params, kw::INDATASET, kw::INFILE, "BLDINDEX")?;
    let aix = dataset_of(cx, &mut params, kw::OUTDATASET, kw::OUTFILE, "BLDINDEX")?;
    for keyword in [
        "INTERNALSORT",
        "EXTERNALSORT",
        "WORKFILES",
        "SORTCALL",
        "NOSORTCALL",
        "SORTDEVICETYPE",
        "SORTFILENUMBER",
        "SORTMESSAGEDD",
        "SORTMESSAGELEVEL",
    ] {
        let keyword = Keyword {
            name: keyword,
            short: &[],
        };
        if let Some(item) = params.take(keyword)? {
            params.ignored.push(format!(
                "VSR0001I {item} IGNORED: THE SERVER BUILDS THE INDEX ITSELF"
            ));
        }
    }
    let notes = params.finish()?;
    for note in notes {
        cx.listing.message(note);
    }
    let entries = match vsam_client::listcat(cx.conn, &aix).await {
        Ok(entries) => entries,
        Err(error) => return Ok(cx.listing.client_error(&aix, &error)),
    };
    match entries
        .iter()
        .find(|e| e.spec.name == aix)
        .map(|e| &e.entry_type)
    {
        Some(EntryType::Aix { base: related, .. }) if *related == base => {}
        Some(EntryType::Aix { base: related, .. }) => {
            cx.listing.message(format!(
                "VSR3016I {aix} IS AN ALTERNATE INDEX OVER {related}, NOT OVER {base}"
            ));
            return Ok(cc::FAILED);
        }
        Some(_) => {
            cx.listing.message(format!(
                "VSR3016I {aix} IS NOT AN ALTERNATE INDEX: BLDINDEX BUILDS ONE FROM ITS BASE CLUSTER"
            ));
            return Ok(cc::FAILED);
        }
        None => {
            cx.listing
                .message(format!("IDC3012I ENTRY {aix} NOT FOUND"));
            return Ok(cc::FAILED);
        }
    }
    match vsam_client::bldindex(cx.conn, &aix).await {
        Ok(summary) => {
            if !summary.is_empty() {
                cx.listing.message(format!("VSR0652I {summary}"));
            }
            cx.listing
                .message(format!("IDC0652I {aix} SUCCESSFULLY BUILT"));
            Ok(cc::OK)
        }
        Err(error) => Ok(cx.listing.client_error(&aix, &error)),
    }
}

/// The dataset a DATASET-or-FILE pair of keywords names (a FILE's DD must
/// name a dataset).
pub fn dataset_of(
    cx: &Context<'_>,
    params: &mut Params,
    dataset: Keyword,
    file: Keyword,
    command: &str,
) -> Result<String, SyntaxError> {
    match place(cx, params, dataset, file)? {
        Some(Place::Dataset(name)) => Ok(name),
        Some(Place::File { dd, path, .. }) => Err(SyntaxError::other(format!(
            "DD {dd} IS THE FILE {}; {command} NEEDS A DATASET THERE (--dd {dd}=DSN=NAME)",
            path.display()
        ))),
        None => Err(SyntaxError::missing(
            &format!("{} OR {}", dataset.name, file.name),
            command,
        )),
    }
}
