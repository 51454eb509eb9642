//! What vsamrd tells a plugin instance about itself, through the only
//! three environment variables it sets.
//!
//! A plugin that keeps a record of work in progress in shared storage (an
//! undo record in a bucket, a lock row) must tell, after a failure, whose
//! record it finds: one a crash of an earlier start of vsamrd left (put it
//! right at `init`), one its own backend's failed sync left in this start
//! (put it right in the writer, before it serves anything), or one a sync
//! under way is writing now (leave it alone). These say which.

/// This start of vsamrd: the same for every instance it runs (a swap's, a
/// reader's, one made after a fault), different after a restart. Empty
/// where the host does not say (then take every record found for an
/// earlier start's).
pub fn boot() -> String {
    std::env::var("VSAMRD_BOOT").unwrap_or_default()
}

/// The backend this instance serves: two backends of one server may share
/// a store, and one's record must not be taken for the other's. Empty
/// where the host does not say.
pub fn backend() -> String {
    std::env::var("VSAMRD_BACKEND").unwrap_or_default()
}

/// Whether this instance runs its backend's writes: the one instance of a
/// backend that writes and syncs in a start of vsamrd, which makes its
/// first call once the writer before it is gone. Any other (a backend's
/// readers, a reload's health check) runs beside the writer and must not
/// act on a record a sync under way may be writing. False where the host
/// does not say.
pub fn is_writer() -> bool {
    std::env::var("VSAMRD_ROLE").is_ok_and(|role| role == "writer")
}
