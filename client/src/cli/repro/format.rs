//! Record files: text lines, fixed-length binary records, or records
//! after a record descriptor word (RDW), as REPRO reads and writes them.

use crate::cli::records::Codec;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use vsam_protocol::MAX_RECORD_LENGTH;

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
            Some(Ok(length)) if length > 0 && length <= MAX_RECORD_LENGTH as usize => {
                Ok(FileFormat::Fixed(length))
            }
            _ => Err(format!(
                "{text:?} is not lines, fixed:LEN (LEN from 1 to {MAX_RECORD_LENGTH}, the longest record) or rdw"
            )),
        },
    }
}

/// The longest line read as one record: a record of the longest length
/// written as `\xHH` escapes, and room for a line end. A longer one is
/// not a line of a record file (a binary file read as lines).
const MAX_LINE: u64 = 4 * MAX_RECORD_LENGTH as u64 + 2;

/// Opens a record file (`-`: standard input) to read it with a
/// [`RecordReader`]. A regular file in `fixed:LEN` must be a whole number
/// of records: a wrong LEN is found before anything is loaded (or a
/// dataset emptied for the load), not after records cut at the wrong
/// place were.
pub fn open_record_file(path: &Path, format: FileFormat) -> Result<Box<dyn BufRead + Send>> {
    if crate::cli::stdout::is_standard_stream(path) {
        return Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            std::io::stdin(),
        )));
    }
    let file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let metadata = file.metadata()?;
    if let FileFormat::Fixed(length) = format
        && metadata.is_file()
        && !metadata.len().is_multiple_of(length as u64)
    {
        bail!(
            "the file is {} bytes, not a multiple of the record length {length}",
            metadata.len()
        );
    }
    Ok(Box::new(BufReader::with_capacity(1 << 20, file)))
}

/// The UTF-8 byte order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a record file one record at a time, so that a file of any size
/// goes through a load in the memory of a few chains.
pub struct RecordReader {
    input: Box<dyn BufRead + Send>,
    format: FileFormat,
    codec: Codec,
    /// Records read so far.
    count: usize,
}

impl RecordReader {
    /// The records of `input`, in `format`; `codec` reads the text of
    /// lines.
    pub fn new(input: impl BufRead + Send + 'static, format: FileFormat, codec: Codec) -> Self {
        Self {
            input: Box::new(input),
            format,
            codec,
            count: 0,
        }
    }

    /// The next record; `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>> {
        let record = match self.format {
            FileFormat::Lines => self.next_line()?,
            FileFormat::Fixed(length) => self.next_fixed(length)?,
            FileFormat::Rdw => self.next_rdw()?,
        };
        self.count += usize::from(record.is_some());
        Ok(record)
    }

    fn next_line(&mut self) -> Result<Option<Vec<u8>>> {
        let number = self.count + 1;
        let mut line = Vec::new();
        (&mut self.input)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        } else if line.len() as u64 == MAX_LINE {
            bail!(
                "line {number} is longer than {MAX_LINE} bytes: is the file made of lines of text?"
            );
        }
        // A byte order mark (Windows editors write one) says how the text
        // is encoded; it is no part of the first record.
        if number == 1 && line.starts_with(UTF8_BOM) {
            line.drain(..UTF8_BOM.len());
        }
        let line =
            String::from_utf8(line).map_err(|_| anyhow!("line {number} is not UTF-8 text"))?;
        self.codec
            .parse(&line, "record")
            .with_context(|| format!("line {number}"))
            .map(Some)
    }

    fn next_fixed(&mut self, length: usize) -> Result<Option<Vec<u8>>> {
        let mut record = vec![0; length];
        let got = self.fill(&mut record)?;
        match got {
            0 => Ok(None),
            _ if got == length => Ok(Some(record)),
            _ => bail!(
                "the file ends with {got} bytes after its {} records: not a whole record of {length} bytes (is {length} its record length?)",
                self.count
            ),
        }
    }

    fn next_rdw(&mut self) -> Result<Option<Vec<u8>>> {
        let mut descriptor = [0; 4];
        match self.fill(&mut descriptor)? {
            0 => return Ok(None),
            4 => {}
            _ => bail!(
                "truncated record descriptor word after {} records",
                self.count
            ),
        }
        let length = usize::from(u16::from_be_bytes([descriptor[0], descriptor[1]]));
        let number = self.count + 1;
        if length < 4 {
            bail!(
                "record {number} has a bad descriptor length {length} (at least 4: the descriptor itself)"
            );
        }
        let mut record = vec![0; length - 4];
        let got = self.fill(&mut record)?;
        if got < record.len() {
            bail!(
                "record {number} has a bad descriptor length {length}: the file ends {} bytes into it",
                got + 4
            );
        }
        Ok(Some(record))
    }

    /// Reads into `buffer` until it is full or the file ends; how many
    /// bytes it read.
    fn fill(&mut self, buffer: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while got < buffer.len() {
            match self.input.read(&mut buffer[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(got)
    }
}

impl Iterator for RecordReader {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Where an unload writes its records: the file (created, or emptied) or
/// standard output for `-`, buffered.
pub fn create_output(path: &Path) -> Result<Box<dyn Write + Send>> {
    if crate::cli::stdout::is_standard_stream(path) {
        return Ok(Box::new(crate::cli::stdout::Records::new()));
    }
    let file = File::create(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 20, file)))
}

/// Appends one record to a file in the given format.
pub fn write_record(
    out: &mut dyn Write,
    record: &[u8],
    format: FileFormat,
    codec: &Codec,
) -> Result<()> {
    match format {
        FileFormat::Lines => {
            out.write_all(codec.show(record).as_bytes())?;
            out.write_all(b"\n")?;
        }
        FileFormat::Fixed(length) => {
            if record.len() != length {
                bail!(
                    "a record of {} bytes does not fit fixed:{length}; use rdw for variable-length records",
                    record.len()
                );
            }
            out.write_all(record)?;
        }
        FileFormat::Rdw => {
            let Ok(total) = u16::try_from(record.len() + 4) else {
                bail!("a record of {} bytes is too long for an RDW", record.len());
            };
            out.write_all(&total.to_be_bytes())?;
            out.write_all(&[0, 0])?;
            out.write_all(record)?;
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

    /// Every record of `bytes` read in `format`, or the first error.
    fn read(bytes: &[u8], format: FileFormat) -> Result<Vec<Vec<u8>>> {
        RecordReader::new(std::io::Cursor::new(bytes.to_vec()), format, codec()).collect()
    }

    #[test]
    fn every_format_round_trips() {
        let records = vec![b"abc".to_vec(), vec![0, 1, 0xFF], b"x\\y".to_vec()];
        for format in [FileFormat::Lines, FileFormat::Rdw] {
            let mut out = Vec::new();
            for record in &records {
                write_record(&mut out, record, format, &codec()).unwrap();
            }
            assert_eq!(read(&out, format).unwrap(), records, "{format:?}");
        }
        let fixed = vec![b"ab".to_vec(), b"cd".to_vec()];
        assert_eq!(read(b"abcd", FileFormat::Fixed(2)).unwrap(), fixed);
        assert_eq!(parse_format("fixed:80").unwrap(), FileFormat::Fixed(80));
        assert!(parse_format("fixed:0").is_err());
        // A length no record has is refused before a buffer of it is made.
        assert!(parse_format("fixed:99999999999").is_err());
    }

    #[test]
    fn lines_end_in_lf_or_crlf_and_the_last_may_have_no_end() {
        assert_eq!(
            read(b"ab\r\ncd\nef", FileFormat::Lines).unwrap(),
            [b"ab".to_vec(), b"cd".to_vec(), b"ef".to_vec()]
        );
        // A byte order mark opens a file; it is no part of a record.
        assert_eq!(
            read(b"\xEF\xBB\xBFab\r\ncd\r\n", FileFormat::Lines).unwrap(),
            [b"ab".to_vec(), b"cd".to_vec()]
        );
        assert!(read(b"", FileFormat::Lines).unwrap().is_empty());
        assert_eq!(read(b"\n", FileFormat::Lines).unwrap(), [Vec::<u8>::new()]);
    }

    /// A file cut short or malformed says where, after the records before
    /// it were read.
    #[test]
    fn a_malformed_file_says_which_record() {
        let error = |bytes: &[u8], format| {
            let mut reader =
                RecordReader::new(std::io::Cursor::new(bytes.to_vec()), format, codec());
            let mut read = 0;
            loop {
                match reader.next_record() {
                    Ok(Some(_)) => read += 1,
                    Ok(None) => panic!("{format:?}: no error after {read} records"),
                    Err(error) => return (read, format!("{error:#}")),
                }
            }
        };
        let (read, message) = error(b"abcde", FileFormat::Fixed(2));
        assert_eq!(read, 2);
        assert!(
            message.contains("ends with 1 bytes after its 2 records"),
            "{message}"
        );
        let (read, message) = error(&[0, 6, 0, 0, b'a', b'b', 0, 9, 0, 0, 1], FileFormat::Rdw);
        assert_eq!(read, 1);
        assert!(
            message
                .contains("record 2 has a bad descriptor length 9: the file ends 5 bytes into it"),
            "{message}"
        );
        let (_, message) = error(&[0, 2, 0, 0], FileFormat::Rdw);
        assert!(
            message.contains("record 1 has a bad descriptor length 2"),
            "{message}"
        );
        let (_, message) = error(&[0, 6, 0, 0, b'a', b'b', 0], FileFormat::Rdw);
        assert!(
            message.contains("truncated record descriptor word after 1 records"),
            "{message}"
        );
        let (read, message) = error(b"ok\n\xff\xfe\n", FileFormat::Lines);
        assert_eq!(read, 1);
        assert!(message.contains("line 2 is not UTF-8 text"), "{message}");
        let (_, message) = error(b"ok\nbad \\xZZ\n", FileFormat::Lines);
        assert!(message.starts_with("line 2: "), "{message}");
    }

    /// A regular file in fixed:LEN that is no whole number of records is
    /// refused at open, before a record is read.
    #[test]
    fn a_fixed_file_of_the_wrong_length_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.dat");
        std::fs::write(&path, b"abcde").unwrap();
        let error = open_record_file(&path, FileFormat::Fixed(2))
            .err()
            .expect("refused");
        assert!(
            error
                .to_string()
                .contains("the file is 5 bytes, not a multiple of the record length 2"),
            "{error}"
        );
        assert!(open_record_file(&path, FileFormat::Fixed(5)).is_ok());
    }
}
