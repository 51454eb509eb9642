//! `vsamr load` and `vsamr unload` (IDCAMS REPRO in and out).

use super::Output;
use super::browse::next_batch;
use super::records::Codec;
use anyhow::{Context, Result, bail};
use clap::Args;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::time::Instant;
use vsam_client::{ChainedRecord, Connection, Dataset, OpenIntent, Organization, RplOptions};
use vsam_protocol::Processing;

/// Arguments of load and unload.
#[derive(Args)]
pub struct ReproArgs {
    /// Dataset name.
    name: String,
    /// File to read or write (`-` for standard input or output).
    file: PathBuf,
    /// lines (text, one record per line), fixed:LEN (binary records of LEN
    /// bytes) or rdw (binary records, each after a 4-byte record descriptor
    /// word).
    #[arg(long, default_value = "lines", value_parser = parse_format)]
    format: FileFormat,
}

/// A record file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Lines,
    Fixed(usize),
    Rdw,
}

fn parse_format(text: &str) -> Result<FileFormat, String> {
    match text {
        "lines" => Ok(FileFormat::Lines),
        "rdw" => Ok(FileFormat::Rdw),
        _ => match text.strip_prefix("fixed:").map(str::parse::<usize>) {
            Some(Ok(length)) if length > 0 => Ok(FileFormat::Fixed(length)),
            _ => Err(format!("{text:?} is not lines, fixed:LEN (LEN > 0) or rdw")),
        },
    }
}

/// Splits file contents into records.
pub fn read_records(bytes: &[u8], format: FileFormat, codec: &Codec) -> Result<Vec<Vec<u8>>> {
    match format {
        FileFormat::Lines => bytes
            .lines()
            .enumerate()
            .map(|(i, line)| {
                let line = line.with_context(|| format!("line {} is not UTF-8 text", i + 1))?;
                codec
                    .parse(&line, "record")
                    .with_context(|| format!("line {}", i + 1))
            })
            .collect(),
        FileFormat::Fixed(length) => {
            if !bytes.len().is_multiple_of(length) {
                bail!(
                    "the file is {} bytes, not a multiple of the record length {length}",
                    bytes.len()
                );
            }
            Ok(bytes.chunks(length).map(<[u8]>::to_vec).collect())
        }
        FileFormat::Rdw => {
            let mut records = Vec::new();
            let mut rest = bytes;
            while !rest.is_empty() {
                if rest.len() < 4 {
                    bail!(
                        "truncated record descriptor word after {} records",
                        records.len()
                    );
                }
                let length = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                if length < 4 || rest.len() < length {
                    bail!(
                        "record {} has a bad descriptor length {length}",
                        records.len() + 1
                    );
                }
                records.push(rest[4..length].to_vec());
                rest = &rest[length..];
            }
            Ok(records)
        }
    }
}

/// Appends one record to a file in the given format.
pub fn write_record(
    out: &mut Vec<u8>,
    record: &[u8],
    format: FileFormat,
    codec: &Codec,
) -> Result<()> {
    match format {
        FileFormat::Lines => {
            out.extend_from_slice(codec.show(record).as_bytes());
            out.push(b'\n');
        }
        FileFormat::Fixed(length) => {
            if record.len() != length {
                bail!(
                    "a record of {} bytes does not fit fixed:{length}; use rdw for variable-length records",
                    record.len()
                );
            }
            out.extend_from_slice(record);
        }
        FileFormat::Rdw => {
            let Ok(total) = u16::try_from(record.len() + 4) else {
                bail!("a record of {} bytes is too long for an RDW", record.len());
            };
            out.extend_from_slice(&total.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(record);
        }
    }
    Ok(())
}

/// Records per PUT CHAIN during a load (one commit each on the server).
const CHAIN: usize = 2048;
/// Chains in flight during a load, so that the server never waits for the
/// client.
const CHAINS_IN_FLIGHT: usize = 4;

pub async fn load(conn: &Connection, args: ReproArgs) -> Result<()> {
    let dataset =
        Dataset::open(conn, &args.name.to_ascii_uppercase(), OpenIntent::Output, 1).await?;
    let codec = Codec::new(
        dataset.spec(),
        Output {
            json: false,
            hex: false,
        },
    )?;
    let mut bytes = Vec::new();
    if args.file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?;
    }
    let records = read_records(&bytes, args.format, &codec)?;
    drop(bytes);
    let organization = dataset.spec().organization;
    let options = match organization {
        Organization::Esds => RplOptions::addressed(Processing::Sequential),
        Organization::Ksds | Organization::Rrds => RplOptions::direct(),
    };
    let started = Instant::now();
    let total = records.len();
    let mut chained = records
        .into_iter()
        .enumerate()
        .map(|(i, record)| ChainedRecord {
            address: match organization {
                Organization::Rrds => i as u64 + 1,
                _ => 0,
            },
            record,
        });
    let mut chains = std::iter::from_fn(|| {
        let chain: Vec<ChainedRecord> = chained.by_ref().take(CHAIN).collect();
        (!chain.is_empty()).then_some(chain)
    });
    // Chains in flight, in order; each answer says how many of its records
    // are stored and why the chain stopped, if it did.
    let mut in_flight = FuturesOrdered::new();
    let send = |chain: Vec<ChainedRecord>| {
        let dataset = dataset.clone();
        let length = chain.len();
        async move { (length, dataset.put_chain(0, options, chain).await) }
    };
    for chain in chains.by_ref().take(CHAINS_IN_FLIGHT) {
        in_flight.push_back(send(chain));
    }
    let mut loaded = 0usize;
    let mut failed: Option<(usize, String)> = None;
    let mut loaded_after_failure = 0usize;
    while let Some((length, outcome)) = in_flight.next().await {
        let outcome = match outcome {
            Ok(outcome) => outcome,
            // The connection went (a server crash): what was acknowledged
            // is stored, the chains in flight are in doubt.
            Err(error) => bail!(
                "{error}: {} of {total} records of {} were loaded and acknowledged; the rest were not (those in flight when it failed may be stored): read the dataset before loading the rest",
                loaded + loaded_after_failure,
                args.file.display()
            ),
        };
        let written = outcome.written.len();
        match (&failed, outcome.failure) {
            (Some(_), _) => loaded_after_failure += written,
            (None, Some(failure)) => {
                failed = Some((loaded + written + 1, failure.to_string()));
                loaded += written;
            }
            (None, None) if written == length => {
                loaded += written;
                if let Some(chain) = chains.next() {
                    in_flight.push_back(send(chain));
                }
            }
            (None, None) => bail!(
                "the server stored {written} of a chain of {length} records without saying why it stopped"
            ),
        }
    }
    if let Some((record, error)) = failed {
        let after = if loaded_after_failure > 0 {
            format!(
                ", and {loaded_after_failure} records after it that were already sent when it failed"
            )
        } else {
            String::new()
        };
        bail!(
            "record {record} of {}: {error}; loaded: the {loaded} records before it{after}",
            args.file.display()
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "loaded {loaded} of {total} records into {} in {seconds:.2} s ({:.0} records/s)",
        dataset.spec().name,
        loaded as f64 / seconds.max(1e-9)
    );
    dataset.close().await?;
    Ok(())
}

pub async fn unload(conn: &Connection, args: ReproArgs, output: Output) -> Result<()> {
    let dataset =
        Dataset::open(conn, &args.name.to_ascii_uppercase(), OpenIntent::Input, 1).await?;
    let codec = Codec::new(
        dataset.spec(),
        Output {
            json: false,
            hex: output.hex,
        },
    )?;
    let options = match dataset.spec().organization {
        Organization::Esds => RplOptions::addressed(Processing::Sequential),
        _ => RplOptions::sequential(),
    };
    let mut out = Vec::new();
    let mut count = 0usize;
    loop {
        let records = next_batch(&dataset, options, 1000).await?;
        if records.is_empty() {
            break;
        }
        for record in &records {
            write_record(&mut out, &record.data, args.format, &codec)
                .with_context(|| format!("record {}", count + 1))?;
            count += 1;
        }
    }
    if args.file.as_os_str() == "-" {
        std::io::stdout().write_all(&out)?;
    } else {
        std::fs::write(&args.file, &out)
            .with_context(|| format!("writing {}", args.file.display()))?;
        println!(
            "unloaded {count} records from {} to {}",
            dataset.spec().name,
            args.file.display()
        );
    }
    dataset.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsam_protocol::DatasetSpec;

    fn codec() -> Codec {
        let spec = DatasetSpec {
            name: "T".into(),
            organization: Organization::Esds,
            key_offset: 0,
            key_length: 0,
            min_record: 1,
            max_record: 100,
            codepage: "ascii".into(),
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
        .unwrap()
    }

    #[test]
    fn every_format_round_trips() {
        let records = vec![b"abc".to_vec(), vec![0, 1, 0xFF], b"x\\y".to_vec()];
        for format in [FileFormat::Lines, FileFormat::Rdw] {
            let mut out = Vec::new();
            for record in &records {
                write_record(&mut out, record, format, &codec()).unwrap();
            }
            assert_eq!(
                read_records(&out, format, &codec()).unwrap(),
                records,
                "{format:?}"
            );
        }
        let fixed = vec![b"ab".to_vec(), b"cd".to_vec()];
        assert_eq!(
            read_records(b"abcd", FileFormat::Fixed(2), &codec()).unwrap(),
            fixed
        );
        assert!(read_records(b"abc", FileFormat::Fixed(2), &codec()).is_err());
        assert!(read_records(&[0, 9, 0, 0, 1], FileFormat::Rdw, &codec()).is_err());
        assert_eq!(parse_format("fixed:80").unwrap(), FileFormat::Fixed(80));
        assert!(parse_format("fixed:0").is_err());
    }
}
