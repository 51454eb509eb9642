//! `vsamr idcams`: runs IDCAMS decks as they are written in JCL (DEFINE,
//! REPRO, PRINT, LISTCAT, DELETE, ALTER, VERIFY, BLDINDEX; IF/SET/DO),
//! against the server, with IDCAMS's messages and condition codes. The
//! exit status is the deck's MAXCC.
//!
//! - [`deck`]: SYSIN records (or a job's JCL) to commands;
//! - [`program`]: IF-THEN-ELSE, DO-END and SET around them;
//! - [`syntax`]: a command's parameters and keywords;
//! - one module per function; [`listing`]: SYSPRINT.

mod alter;
mod deck;
mod define;
mod delete;
mod input;
mod listcat;
mod listing;
mod print;
mod program;
mod repro;
#[cfg(test)]
mod robustness;
mod syntax;

use super::repro::{FileFormat, parse_format};
use anyhow::{Context as _, Result, bail};
use clap::Args;
use listing::{Listing, cc};
use program::{Code, Step};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read;
use std::path::PathBuf;
use std::pin::Pin;
use syntax::{Params, SyntaxError};
use vsam_client::Connection;

/// `vsamr idcams`.
#[derive(Args)]
pub struct IdcamsArgs {
    /// The deck: IDCAMS SYSIN records, or a job's JCL with an in-stream
    /// `//SYSIN DD *` (standard input when not given, or `-`).
    file: Option<PathBuf>,
    /// Maps a DD name used by INFILE, OUTFILE or FILE: NAME=FILE for a
    /// local file (NAME=FILE,rdw or NAME=FILE,fixed:80 for binary records;
    /// text lines by default), NAME=DSN=DATASET for a dataset. DD
    /// statements of the JCL with DSN= are mapped already.
    #[arg(long, value_name = "NAME=FILE", value_parser = parse_dd)]
    dd: Vec<(String, Dd)>,
    /// The JCL step to run, when the JCL has several with an in-stream
    /// SYSIN.
    #[arg(long)]
    step: Option<String>,
    /// Code page of the clusters DEFINE creates, and of record files' text.
    #[arg(long, default_value = "cp037", value_parser = ["cp037", "cp1047", "cp500", "cp273", "cp1140", "ascii"])]
    codepage: String,
}

/// What a DD name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dd {
    /// A dataset of the catalog.
    Dataset(String),
    /// A local record file, in a format.
    File { path: PathBuf, format: FileFormat },
}

fn parse_dd(text: &str) -> Result<(String, Dd), String> {
    let Some((name, target)) = text.split_once('=') else {
        return Err(format!("{text:?} is not NAME=FILE or NAME=DSN=DATASET"));
    };
    let name = name.trim().to_ascii_uppercase();
    if name.is_empty() || name.len() > 8 {
        return Err(format!("{name:?} is not a DD name (1 to 8 characters)"));
    }
    if let Some(dataset) = target.strip_prefix("DSN=").or(target.strip_prefix("dsn=")) {
        return Ok((name, Dd::Dataset(dataset.to_ascii_uppercase())));
    }
    let (path, format) = match target.rsplit_once(',') {
        Some((path, format)) => match parse_format(format) {
            Ok(format) => (path, format),
            Err(_) => (target, FileFormat::Lines),
        },
        None => (target, FileFormat::Lines),
    };
    Ok((
        name,
        Dd::File {
            path: PathBuf::from(path),
            format,
        },
    ))
}

/// What every function is given.
pub struct Context<'a> {
    pub conn: &'a Connection,
    pub dds: &'a BTreeMap<String, Dd>,
    pub codepage: &'a str,
    pub listing: Listing,
}

impl Context<'_> {
    /// The DD a FILE, INFILE or OUTFILE names.
    pub fn dd(&self, name: &str) -> Result<&Dd, SyntaxError> {
        self.dds.get(name).ok_or_else(|| {
            SyntaxError::other(format!(
                "DD {name} IS NOT GIVEN: MAP IT WITH --dd {name}=FILE OR --dd {name}=DSN=DATASET"
            ))
        })
    }
}

/// Runs a deck; returns its MAXCC.
pub async fn run(conn: &Connection, args: IdcamsArgs) -> Result<u8> {
    let mut text = String::new();
    match args
        .file
        .as_deref()
        .filter(|path| !crate::cli::stdout::is_standard_stream(path))
    {
        Some(path) => {
            text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the deck {}", path.display()))?;
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the deck from standard input")?;
        }
    }
    let deck = match deck::read(&text, args.step.as_deref()) {
        Ok(deck) => deck,
        Err(problem) => bail!("the deck cannot be read: {problem}"),
    };
    let mut dds: BTreeMap<String, Dd> = deck
        .dds
        .into_iter()
        .map(|(name, dataset)| (name, Dd::Dataset(dataset)))
        .collect();
    dds.extend(args.dd);
    let mut runner = Runner {
        cx: Context {
            conn,
            dds: &dds,
            codepage: &args.codepage,
            listing: Listing::stdout(),
        },
        lastcc: 0,
        maxcc: 0,
    };
    let steps = program::steps(deck.commands);
    runner.steps(&steps).await;
    runner.cx.listing.processing_complete(runner.maxcc);
    Ok(runner.maxcc)
}

/// Runs steps, keeping LASTCC and MAXCC.
struct Runner<'a> {
    cx: Context<'a>,
    lastcc: u8,
    maxcc: u8,
}

/// Whether the deck goes on.
#[derive(PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

impl<'a> Runner<'a> {
    fn steps<'s>(&'s mut self, steps: &'s [Step]) -> Pin<Box<dyn Future<Output = Flow> + 's>> {
        Box::pin(async move {
            for step in steps {
                if self.step(step).await == Flow::Stop {
                    return Flow::Stop;
                }
            }
            Flow::Go
        })
    }

    async fn step(&mut self, step: &Step) -> Flow {
        match step {
            Step::Function(command) => {
                self.cx.listing.echo(command);
                let code = self.function(&command.text).await;
                self.cx.listing.function_completed(code);
                self.lastcc = code;
                self.maxcc = self.maxcc.max(code);
            }
            Step::Set {
                source,
                code,
                value,
            } => {
                self.list(source);
                match code {
                    Code::Last => {
                        self.lastcc = *value;
                        self.maxcc = self.maxcc.max(*value);
                    }
                    Code::Max => self.maxcc = *value,
                }
            }
            Step::If {
                source,
                test,
                then,
                else_source,
                otherwise,
            } => {
                self.list(source);
                let holds = test.holds(self.lastcc, self.maxcc);
                let flow = if holds {
                    self.steps(then).await
                } else {
                    self.skip(then);
                    Flow::Go
                };
                if flow == Flow::Stop {
                    return Flow::Stop;
                }
                self.list(else_source);
                if holds {
                    self.skip(otherwise);
                } else if self.steps(otherwise).await == Flow::Stop {
                    return Flow::Stop;
                }
            }
            Step::Listed(source) => self.list(source),
            Step::Broken { source, message } => {
                self.list(source);
                self.cx.listing.message(message);
                self.cx
                    .listing
                    .message("VSR3205I THE REST OF THE DECK IS NOT RUN");
                self.lastcc = cc::SEVERE;
                self.maxcc = cc::SEVERE;
            }
        }
        // MAXCC 16 ends the deck, as it ends IDCAMS.
        if self.maxcc >= cc::SEVERE {
            Flow::Stop
        } else {
            Flow::Go
        }
    }

    fn list(&mut self, source: &[String]) {
        for record in source {
            self.cx.listing.line(record);
        }
    }

    /// Lists the commands of a clause not taken.
    fn skip(&mut self, steps: &[Step]) {
        for step in steps {
            match step {
                Step::Function(command) => self.cx.listing.echo(command),
                Step::Set { source, .. } | Step::Listed(source) | Step::Broken { source, .. } => {
                    self.list(source)
                }
                Step::If {
                    source,
                    then,
                    else_source,
                    otherwise,
                    ..
                } => {
                    self.list(source);
                    self.skip(then);
                    self.list(else_source);
                    self.skip(otherwise);
                }
            }
        }
    }

    /// Runs one functional command; returns its condition code.
    async fn function(&mut self, text: &str) -> u8 {
        match self.parse_and_run(text).await {
            Ok(code) => code,
            Err(error) => {
                self.cx.listing.message(&error.message);
                self.cx
                    .listing
                    .message("IDC3202I ABOVE TEXT BYPASSED UNTIL END OF COMMAND");
                cc::FAILED
            }
        }
    }

    async fn parse_and_run(&mut self, text: &str) -> Result<u8, SyntaxError> {
        let tokens = syntax::tokens(text)?;
        let mut items = syntax::items(&tokens)?;
        if items.is_empty() {
            return Ok(cc::OK);
        }
        let verb_item = items.remove(0);
        let Some(verb) = verb_item.word().filter(|_| verb_item.args.is_none()) else {
            return Err(SyntaxError {
                message: format!("IDC3219I VERB NAME '{verb_item}' UNKNOWN"),
            });
        };
        let params = Params::new(items);
        let cx = &mut self.cx;
        match verb.as_str() {
            "DEFINE" | "DEF" => define::run(cx, params).await,
            "DELETE" | "DEL" => delete::run(cx, params).await,
            "LISTCAT" | "LISTC" => listcat::run(cx, params).await,
            "PRINT" => print::run(cx, params).await,
            "REPRO" => repro::run(cx, params).await,
            "BLDINDEX" | "BIX" => define::bldindex(cx, params).await,
            "ALTER" => alter::run(cx, params).await,
            "VERIFY" | "VFY" => alter::verify(cx, params).await,
            _ => Err(SyntaxError {
                message: format!("IDC3219I VERB NAME '{verb}' UNKNOWN"),
            }),
        }
    }
}
