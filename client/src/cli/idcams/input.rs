//! What REPRO and PRINT read and write: a dataset (INDATASET, OUTDATASET,
//! or a DD naming one) or a local record file (a DD given with --dd),
//! and the records a selection (FROMKEY, TOKEY, SKIP, COUNT) takes.

use super::syntax::{Atom, Keyword, Params, SyntaxError, kw};
use super::{Context, Dd};
use crate::cli::Output;
use crate::cli::records::Codec;
use crate::cli::repro::{FileFormat, SelectedRecords, Selection, Verdict, read_records};
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
    pub fn by_key(&self) -> bool {
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
        let spec = DatasetSpec {
            name: String::new(),
            organization: vsam_client::Organization::Esds,
            key_offset: 0,
            key_length: 0,
            min_record: 0,
            max_record: 0,
            codepage: "ascii".into(),
            backend: String::new(),
            layout: String::new(),
        };
        Selection::of(&spec, None, None, self.skip, self.count)
    }
}

/// A codec for a file's records: text lines in the code page of the
/// dataset they go to or come from.
pub fn file_codec(codepage: &str) -> Result<Codec> {
    let spec = DatasetSpec {
        name: String::new(),
        organization: vsam_client::Organization::Esds,
        key_offset: 0,
        key_length: 0,
        min_record: 0,
        max_record: 0,
        codepage: codepage.to_string(),
        backend: String::new(),
        layout: String::new(),
    };
    Codec::new(
        &spec,
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
    File {
        records: std::vec::IntoIter<Vec<u8>>,
        selection: Selection,
        number: u64,
    },
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
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let records = read_records(&bytes, format, &file_codec(codepage)?).with_context(|| {
            format!(
                "{} is not a record file of format {format:?}",
                path.display()
            )
        })?;
        Ok(Records::File {
            records: records.into_iter(),
            selection,
            number: 0,
        })
    }

    /// The next batch; `None` at the end.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<Record>>> {
        match self {
            Records::Dataset(records) => records.next_batch().await,
            Records::File {
                records,
                selection,
                number,
            } => {
                let mut batch = Vec::new();
                for data in records.by_ref() {
                    *number += 1;
                    match selection.judge(&data, false) {
                        Verdict::Take => batch.push(Record {
                            address: *number,
                            key: Vec::new(),
                            data,
                        }),
                        Verdict::Pass => continue,
                        Verdict::Stop => {
                            records.by_ref().for_each(drop);
                            break;
                        }
                    }
                    if batch.len() == 1000 {
                        break;
                    }
                }
                Ok((!batch.is_empty()).then_some(batch))
            }
        }
    }
}
