//! Record files: text lines, fixed-length binary records, or records
//! after a record descriptor word (RDW), as REPRO reads and writes them.

use crate::cli::records::Codec;
use anyhow::{Context, Result, bail};
use clap::Args;
use std::io::BufRead;
use std::path::PathBuf;

/// The dataset and the file a REPRO copies between, and the file's format.
#[derive(Args)]
pub struct FileArgs {
    /// Dataset name.
    pub name: String,
    /// The file (`-` for standard input or output).
    pub file: PathBuf,
    /// lines (text, one record per line), fixed:LEN (binary records of LEN
    /// bytes) or rdw (binary records, each after a 4-byte record descriptor
    /// word).
    #[arg(long, default_value = "lines", value_parser = parse_format)]
    pub format: FileFormat,
}

/// A record file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Lines,
    Fixed(usize),
    Rdw,
}

pub fn parse_format(text: &str) -> Result<FileFormat, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Output;
    use vsam_client::Organization;
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
