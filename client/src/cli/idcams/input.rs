//! What REPRO and PRINT read and write: a dataset (INDATASET, OUTDATASET,
//! or a DD naming one) or a local record file (a DD given with --dd),
//! and the records a selection (FROMKEY, TOKEY, SKIP, COUNT) takes.

use super::syntax::{Atom, Keyword, Params, SyntaxError, kw};
use super::{Context, Dd};
use crate::cli::Output;
use crate::cli::records::Codec;
use crate::cli::repro::{
    FileFormat, RecordReader, SelectedRecords, Selection, Verdict, chain_full, open_record_file,
};
use anyhow::{Context as _, Result};
use std::path::PathBuf;
use vsam_client::{Dataset, DatasetSpec, Record};
use vsam_plugin_sdk::codepage::CodePage;

/// A dataset or a file, as INxxx or OUTxxx names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Dataset(String),
    File {
        dd: String,
        path: PathBuf,
        format: FileFormat,
    },
}

impl Place {
    /// Its name in messages: the dataset, or the DD and its file.
    pub fn name(&self) -> String {
        match self {
            Place::Dataset(name) => name.clone(),
            Place::File { dd, path, .. } => format!("{dd} ({})", path.display()),
        }
    }
}

/// The place a DATASET-or-FILE pair of keywords names, if one is given.
pub fn place(
    cx: &Context<'_>,
    params: &mut Params,
    dataset: Keyword,
    file: Keyword,
) -> Result<Option<Place>, SyntaxError> {
    match (params.name(dataset)?, params.name(file)?) {
        (Some(_), Some(_)) => Err(SyntaxError::other(format!(
            "{} AND {} EXCLUDE EACH OTHER",
            dataset.name, file.name
        ))),
        (Some(name), None) => Ok(Some(Place::Dataset(name))),
        (None, Some(dd)) => Ok(Some(match cx.dd(&dd)? {
            Dd::Dataset(name) => Place::Dataset(name.clone()),
            Dd::File { path, format } => Place::File {
                dd,
                path: path.clone(),
                format: *format,
            },
        })),
        (None, None) => Ok(None),
    }
}

/// Lists that `name` could not be opened (IDC3300I and why); returns the
/// condition code.
pub fn open_failed(cx: &mut Context<'_>, name: &str, error: &vsam_client::ClientError) -> u8 {
    cx.listing.message(format!("IDC3300I ERROR OPENING {name}"));
    cx.listing.client_error(name, error)
}

/// Opens the dataset at `place` for input (`None` for a file, which is
/// only checked here: one that cannot be read as its format says fails
/// before a REUSE empties the output); a failure is listed and its
/// condition code returned.
pub async fn open_input(cx: &mut Context<'_>, place: &Place) -> Result<Option<Dataset>, u8> {
    match place {
        Place::Dataset(name) => {
            match Dataset::open(cx.conn, name, vsam_client::OpenIntent::Input, 1).await {
                Ok(dataset) => Ok(Some(dataset)),
                Err(error) => Err(open_failed(cx, name, &error)),
            }
        }
        Place::File { path, format, .. } => match open_record_file(path, *format) {
            Ok(_) => Ok(None),
            Err(error) => {
                cx.listing
                    .message(format!("IDC3300I ERROR OPENING {}", place.name()));
                cx.listing.message(format!("VSR3300I ** {error:#}"));
                Err(super::listing::cc::FAILED)
            }
        },
    }
}

/// The selected records of an input: the open `dataset`'s, or the file's
/// at `place` (text lines in `codepage`); a failure is listed and its
/// condition code returned.
pub async fn records<'a>(
    cx: &mut Context<'_>,
    place: &Place,
    dataset: Option<&'a Dataset>,
    codepage: &str,
    selection: Selection,
) -> Result<Records<'a>, u8> {
    let records = match (place, dataset) {
        (_, Some(dataset)) => Records::of_dataset(dataset, selection).await,
        (Place::File { path, format, .. }, None) => {
            Records::of_file(path, *format, codepage, selection)
        }
        (Place::Dataset(name), None) => Err(anyhow::anyhow!("{name} is not open")),
    };
    records.map_err(|error| {
        cx.listing
            .message(format!("IDC3300I ERROR OPENING {}", place.name()));
        cx.listing.message(format!("VSR3300I ** {error:#}"));
        super::listing::cc::FAILED
    })
}

/// FROMKEY, TOKEY, SKIP and COUNT as written: keys are resolved once the
/// dataset (and its code page) is known.
#[derive(Debug, Default)]
pub struct Select {
    from_key: Option<Atom>,
    to_key: Option<Atom>,
    skip: usize,
    count: Option<usize>,
}

impl Select {
    /// Takes the selection parameters of REPRO and PRINT.
    pub fn take(params: &mut Params) -> Result<Self, SyntaxError> {
        for name in ["FROMADDRESS", "TOADDRESS", "FROMNUMBER", "TONUMBER"] {
            let keyword = Keyword { name, short: &[] };
            if params.take(keyword)?.is_some() {
                return Err(SyntaxError::other(format!(
                    "{name} IS NOT SUPPORTED: SELECT RECORDS OF AN ESDS OR RRDS WITH SKIP AND COUNT"
                )));
            }
        }
        let number = |params: &mut Params, keyword| -> Result<Option<usize>, SyntaxError> {
            Ok(params
                .numbers(keyword, 1)?
                .map(|n| usize::try_from(n[0]).unwrap_or(usize::MAX)))
        };
        Ok(Self {
            from_key: params.constant(kw::FROMKEY)?,
            to_key: params.constant(kw::TOKEY)?,
            skip: number(params, kw::SKIP)?.unwrap_or(0),
            count: number(params, kw::COUNT)?,
        })
    }

    /// True if FROMKEY or TOKEY is given.
    fn by_key(&self) -> bool {
        self.from_key.is_some() || self.to_key.is_some()
    }

    /// The selection on records of `spec` (whose keys FROMKEY and TOKEY
    /// are, in its code page).
    pub fn on(&self, spec: &DatasetSpec) -> Result<Selection, String> {
        let codepage: CodePage = spec.codepage.parse().map_err(|e: String| e)?;
        let key = |atom: &Option<Atom>| -> Result<Option<Vec<u8>>, String> {
            match atom {
                None => Ok(None),
                Some(Atom::Hex(bytes)) => Ok(Some(bytes.clone())),
                Some(Atom::Word(text) | Atom::Quoted(text)) => codepage
                    .encode(text)
                    .map(Some)
                    .map_err(|e| format!("the key {text:?}: {e}")),
            }
        };
        Selection::of(
            spec,
            key(&self.from_key)?,
            key(&self.to_key)?,
            self.skip,
            self.count,
        )
    }

    /// The selection on a file's records: SKIP and COUNT only.
    pub fn plain(&self) -> Result<Selection, String> {
        if self.by_key() {
            return Err("FROMKEY AND TOKEY SELECT BY THE KEYS OF A DATASET; A FILE HAS NONE: USE SKIP AND COUNT".into());
        }
        Selection::of(&file_spec("ascii"), None, None, self.skip, self.count)
    }
}

/// What a file's records are, as a dataset: a sequence without keys, its
/// text in `codepage`.
fn file_spec(codepage: &str) -> DatasetSpec {
    DatasetSpec {
        name: String::new(),
        organization: vsam_client::Organization::Esds,
        key_offset: 0,
        key_length: 0,
        min_record: 0,
        max_record: 0,
        codepage: codepage.to_string(),
        backend: String::new(),
        layout: String::new(),
    }
}

/// A codec for a file's records: text lines in the code page of the
/// dataset they go to or come from.
pub fn file_codec(codepage: &str) -> Result<Codec> {
    Codec::new(
        &file_spec(codepage),
        Output {
            json: false,
            hex: false,
        },
    )
}

/// The records of an input, a batch at a time: a dataset's (read as it
/// goes) or a file's.
pub enum Records<'a> {
    Dataset(SelectedRecords<'a>),
    File(Box<FileRecords>),
}

/// A file's selected records, read as the batches are asked for: a file
/// of any size goes through the memory of one batch.
pub struct FileRecords {
    records: RecordReader,
    /// Its name, for messages.
    path: std::path::PathBuf,
    format: FileFormat,
    selection: Selection,
    /// Records read so far.
    number: u64,
    /// The file or the selection ended: nothing more is read.
    ended: bool,
    /// A read failed after some records of a batch: the batch is answered
    /// first, the failure next.
    failed: Option<anyhow::Error>,
}

impl<'a> Records<'a> {
    /// The selected records of an open dataset.
    pub async fn of_dataset(dataset: &'a Dataset, selection: Selection) -> Result<Self> {
        Ok(Records::Dataset(
            SelectedRecords::new(dataset, selection).await?,
        ))
    }

    /// The selected records of a file (each addressed by its number in it).
    pub fn of_file(
        path: &std::path::Path,
        format: FileFormat,
        codepage: &str,
        selection: Selection,
    ) -> Result<Self> {
        let input = open_record_file(path, format)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Records::File(Box::new(FileRecords {
            records: RecordReader::new(input, format, file_codec(codepage)?),
            path: path.to_path_buf(),
            format,
            selection,
            number: 0,
            ended: false,
            failed: None,
        })))
    }

    /// The next batch; `None` at the end.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<Record>>> {
        match self {
            Records::Dataset(records) => records.next_batch().await,
            Records::File(records) => records.next_batch(),
        }
    }
}

impl FileRecords {
    /// The next batch (as many records as make a load's chain); `None` at
    /// the end.
    fn next_batch(&mut self) -> Result<Option<Vec<Record>>> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while !self.ended && !chain_full(batch.len(), bytes) {
            let data = match self.records.next_record() {
                Ok(Some(data)) => data,
                Ok(None) => {
                    self.ended = true;
                    break;
                }
                Err(error) => {
                    self.ended = true;
                    let error = error.context(format!(
                        "{} is not a record file of format {:?}",
                        self.path.display(),
                        self.format
                    ));
                    if batch.is_empty() {
                        return Err(error);
                    }
                    self.failed = Some(error);
                    break;
                }
            };
            self.number += 1;
            match self.selection.judge(&data, false) {
                Verdict::Take => {
                    bytes += data.len();
                    batch.push(Record {
                        address: self.number,
                        key: Vec::new(),
                        data,
                    });
                }
                Verdict::Pass => {}
                Verdict::Stop => self.ended = true,
            }
        }
        Ok((!batch.is_empty()).then_some(batch))
    }
}
