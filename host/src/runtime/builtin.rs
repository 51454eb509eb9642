//! Plugins compiled into vsamrd, so it runs with no file beside it.

/// The SQL backend component (SQLite or PostgreSQL tables).
pub const SQL: &[u8] = include_bytes!(env!("VSAM_BUILTIN_SQL"));
/// The CSV backend component.
pub const CSV: &[u8] = include_bytes!(env!("VSAM_BUILTIN_CSV"));
/// The object-store backend component (S3-compatible bucket or directory).
pub const S3: &[u8] = include_bytes!(env!("VSAM_BUILTIN_S3"));
/// The in-memory example backend component.
pub const MEMORY: &[u8] = include_bytes!(env!("VSAM_BUILTIN_MEMORY"));

/// Names usable as `builtin:NAME`.
pub fn names() -> [&'static str; 4] {
    ["sql", "csv", "s3", "memory"]
}

/// The component bytes of a builtin plugin.
pub fn bytes(name: &str) -> Option<&'static [u8]> {
    match name {
        "sql" => Some(SQL),
        "csv" => Some(CSV),
        "s3" => Some(S3),
        "memory" => Some(MEMORY),
        _ => None,
    }
}
