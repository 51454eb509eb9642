//! Standard output, whose reader may go away: `vsamr list | head -1`,
//! `vsamr browse DS | grep -m1 ...`. Then vsamr ends quietly with status
//! 141, as a tool that a closed pipe stops does (128 + SIGPIPE), instead
//! of failing on every later line. vsamr keeps SIGPIPE ignored, so that a
//! connection the server closed is an error it reports, not a death.

use std::io::{self, BufWriter, Stdout, Write};

/// True for the path `-`, which names standard input or output where a
/// file is asked for (`vsamr unload DS -`, `vsamr unit -`).
pub fn is_standard_stream(path: &std::path::Path) -> bool {
    path.as_os_str() == "-"
}

/// Status of a process a closed pipe stopped.
const PIPE_CLOSED: i32 = 128 + 13;

/// Ends vsamr if `error` says standard output's reader went away; any
/// other error goes back to the caller.
fn unless_closed(error: io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(PIPE_CLOSED);
    }
    error
}

/// Writes one line of `text` (what `println!` would); a reader that went
/// away ends vsamr, another failure (a full disk behind a redirection)
/// ends it with the reason.
pub fn line(text: std::fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(error) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        let error = unless_closed(error);
        eprintln!("vsamr: cannot write standard output: {error}");
        std::process::exit(1);
    }
}

/// Standard output for many records, buffered: a reader that went away
/// ends vsamr, any other failure is the write's error.
pub struct Records(BufWriter<Stdout>);

impl Records {
    /// Standard output, buffered by 1 MB.
    pub fn new() -> Self {
        Self(BufWriter::with_capacity(1 << 20, io::stdout()))
    }
}

impl Write for Records {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(unless_closed)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(unless_closed)
    }
}
