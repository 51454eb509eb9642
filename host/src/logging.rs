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

/// The environment variables the log reads: its filter and its form.
pub const VARIABLES: [&str; 2] = ["VSAMRD_LOG", "VSAMRD_LOG_FORMAT"];

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

/// Added to the filter unless `VSAMRD_LOG` names the crate: PostgreSQL's
/// notices (a `CREATE TABLE IF NOT EXISTS` that found its table says so on
/// every new connection) are shown from warnings up.
const QUIET_POSTGRES_NOTICES: &str = "tokio_postgres::connection=warn";

/// The log's filter: `setting` (`VSAMRD_LOG`), `info` without one, and
/// PostgreSQL's notices quiet unless the setting names them.
fn filter(setting: Option<&str>) -> tracing_subscriber::EnvFilter {
    let mut filter = setting
        .and_then(|text| tracing_subscriber::EnvFilter::try_new(text).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    if !setting.is_some_and(|text| text.contains("tokio_postgres")) {
        filter = filter.add_directive(
            QUIET_POSTGRES_NOTICES
                .parse()
                .expect("a valid filter directive"),
        );
    }
    filter
}

/// Sends the log to standard error in `format`, filtered by `VSAMRD_LOG`.
pub fn init(format: Format) {
    let setting = std::env::var("VSAMRD_LOG").ok();
    let filter = filter(setting.as_deref());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_notices_are_quiet_unless_the_setting_names_them() {
        for setting in [None, Some("debug"), Some("vsam_host=trace,info")] {
            let shown = filter(setting).to_string();
            assert!(
                shown.contains(QUIET_POSTGRES_NOTICES),
                "{setting:?}: {shown}"
            );
        }
        let shown = filter(Some("info,tokio_postgres=debug")).to_string();
        assert!(!shown.contains(QUIET_POSTGRES_NOTICES), "{shown}");
        assert!(shown.contains("tokio_postgres=debug"), "{shown}");
        // An unreadable setting falls back to info, as before.
        assert!(filter(Some("=")).to_string().contains("info"));
    }
}
