//! Where vsamrd's log goes and in what form: text for a terminal, or one
//! JSON object per line (`VSAMRD_LOG_FORMAT=json`) for a log shipper,
//! each line carrying the connection (its id, the client's address, name
//! and identity) and, for what happens while a request is served, the
//! request (its id, kind, dataset and backend). `VSAMRD_LOG` filters
//! (`info` by default; `debug`, `vsam_host=debug,warn`...).
//!
//! Request context costs a span per request, so it is kept only in the
//! JSON form; text lines carry the connection.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The environment variables the log reads: its filter and its form.
pub const VARIABLES: [&str; 2] = ["VSAMRD_LOG", "VSAMRD_LOG_FORMAT"];

/// Whether requests get a span of their own (the JSON form).
static REQUEST_SPANS: AtomicBool = AtomicBool::new(false);

/// Panics met since the process started (see [`log_panics`]).
static PANICS: AtomicU64 = AtomicU64::new(0);

/// How many panics of vsamrd's own code the log has reported, for the
/// `vsamrd_panics_total` series.
pub fn panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

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

/// Sends a panic of vsamrd's own code (a bug) to the log, in the log's
/// form and with the connection and request it happened in, instead of
/// the plain text Rust writes on standard error, which a log shipper
/// reading JSON cannot parse and which names no connection. A thread with
/// no subscriber (before [`init`], in tests) keeps Rust's own report.
pub fn log_panics() {
    let rust_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let logged = tracing::dispatcher::get_default(|dispatch| {
            !dispatch.is::<tracing::subscriber::NoSubscriber>()
        });
        if !logged {
            return rust_report(info);
        }
        PANICS.fetch_add(1, Ordering::Relaxed);
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let place = info
            .location()
            .map(|place| format!("{}:{}", place.file(), place.line()))
            .unwrap_or_else(|| "an unknown place".to_string());
        let backtrace = std::backtrace::Backtrace::capture();
        let backtrace = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
            _ => String::new(),
        };
        tracing::error!(
            panic.place = %place,
            "a bug in vsamrd: panicked at {place}: {message}. The task it happened in ended: a connection's closes, its unit of work rolled back and its records released; a backend's reads fail and its instance starts again; others go on (if it may have left shared state half-changed, vsamrd stops next, saying so). Report this line with `vsamrd --version` (RUST_BACKTRACE=1 adds a backtrace){backtrace}"
        );
    }));
}

/// True if requests are logged with a span of their own.
pub fn request_spans() -> bool {
    REQUEST_SPANS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer into memory, for the log a test reads back.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_panic_is_logged_in_the_log_form_with_its_connection() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(log_panics);
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_span_list(true)
            .flatten_event(true)
            .with_writer(move || writer.clone())
            .finish();
        let caught = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("connection", session = 7);
            let _entered = span.enter();
            std::panic::catch_unwind(|| panic!("an index {} out of bounds", 9))
        });
        assert!(caught.is_err());
        assert!(panics() >= 1);
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(log.trim()).expect(&log);
        assert_eq!(line["level"], "ERROR", "{log}");
        let message = line["message"].as_str().unwrap();
        assert!(
            message.starts_with("a bug in vsamrd: panicked at host/src/logging.rs:")
                && message.contains(": an index 9 out of bounds. The task it happened in ended"),
            "{message}"
        );
        assert_eq!(line["spans"][0]["session"], 7, "{log}");
        // Without a subscriber, Rust's own report (the test harness's).
        assert!(std::panic::catch_unwind(|| panic!("unlogged")).is_err());
    }

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
