//! Where vsamrd's log goes and in what form: text for a terminal, or one
//! JSON object per line (`VSAMRD_LOG_FORMAT=json`) for a log shipper,
//! each line carrying the connection (its id, the client's address, name
//! and identity) and, for what happens while a request is served, the
//! request (its id, kind, dataset and backend). `VSAMRD_LOG` filters
//! (`info` by default; `debug`, `vsam_host=debug,warn`...).
//!
//! Request context costs a span per request, so it is kept only in the
//! JSON form; text lines carry the connection.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether requests get a span of their own (the JSON form).
static REQUEST_SPANS: AtomicBool = AtomicBool::new(false);

/// The log's forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines (colored on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

impl Format {
    /// The form `VSAMRD_LOG_FORMAT` asks for (`text` or `json`; text when
    /// unset), or why the value is not one.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("VSAMRD_LOG_FORMAT") {
            Err(_) => Ok(Self::Text),
            Ok(value) => match value.to_ascii_lowercase().as_str() {
                "" | "text" => Ok(Self::Text),
                "json" => Ok(Self::Json),
                other => Err(format!("VSAMRD_LOG_FORMAT={other:?} is not text or json")),
            },
        }
    }
}

/// Sends the log to standard error in `format`, filtered by `VSAMRD_LOG`.
pub fn init(format: Format) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VSAMRD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        Format::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        Format::Json => {
            REQUEST_SPANS.store(true, Ordering::Relaxed);
            builder
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .flatten_event(true)
                .init()
        }
    }
}

/// True if requests are logged with a span of their own.
pub fn request_spans() -> bool {
    REQUEST_SPANS.load(Ordering::Relaxed)
}
