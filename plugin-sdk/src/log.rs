//! Logging from a plugin into the host's tracing, tagged with the backend.
//!
//! Inside WebAssembly these call the host's `log` import; compiled natively
//! (tests, in-process baselines) they write nothing.

pub use crate::bindings::vsam::backend::log::Level;

/// How the line a panicking plugin logs (see [`report_panics`]) begins:
/// the host quotes that line in the fault it reports for the call.
pub const PANIC_PREFIX: &str = "panicked at ";

/// Logs every panic at error level before the instance aborts, so the
/// host can say why the call trapped. [`export_backend!`](crate::export_backend)
/// installs it at init.
pub fn report_panics() {
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        error(&format!("{PANIC_PREFIX}{place}: {message}"));
    }));
}

/// Writes one log line at `level`.
pub fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::vsam::backend::log::write(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (level, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    write(Level::Error, message);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}
