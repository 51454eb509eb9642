//! Changes that leave the server: every committed change of the datasets
//! that mirrors or the change stream follow, recorded in commit order in a
//! durable log ([`log`]) by the backends' serving tasks ([`capture`]),
//! applied to mirror backends ([`mirror`]) and written as JSON lines for
//! programs outside ([`stream`]); [`followers`] runs them. A backend with
//! a database of its own records its groups there too ([`outboxes`]), so
//! the log needs no sync of its own for them.

pub mod capture;
pub mod change;
pub mod followers;
pub mod log;
pub mod mirror;
pub mod outboxes;
pub mod stream;

pub use capture::Capture;
pub use change::{Change, Operation};
pub use followers::{ChangeHub, Followers};
pub use log::ChangeLog;
