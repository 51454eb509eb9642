//! Logging from a plugin into the host's tracing, tagged with the backend.
//!
//! Inside WebAssembly these call the host's `log` import; compiled natively
//! (tests, in-process baselines) they write nothing.

pub use crate::bindings::vsam::backend::log::Level;

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
