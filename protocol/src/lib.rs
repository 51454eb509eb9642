//! # vsam-protocol
//!
//! The wire protocol between VSAM redirector clients and `vsamrd`: binary,
//! length-prefixed, big-endian frames that carry VSAM requests (OPEN, CLOSE,
//! GET, PUT, ERASE, POINT, ENDREQ) with their RPL options, catalog requests
//! (DEFINE, DELETE, INFO, LIST), and answers with R15, FDBK and records.
//! Host and clients share this crate so they cannot disagree on a byte.
//! `docs/protocol.md` specifies every frame. [`admin`] is the operator's
//! protocol (reload, status, migrations) on its own port.
#![warn(missing_docs)]

pub mod admin;
pub mod codec;
pub mod codes;
pub mod environment;
#[cfg(feature = "net")]
pub mod keepalive;
pub mod message;
pub mod options;
pub mod wire;

pub use codec::{FrameCodec, FrameError, Incoming, answer_frame_len, encode_frame};
pub use codes::{Fdbk, OpenError, Status, fdbk, file_status, open_error, r15};
pub use message::{
    AixSpec, Answer, CatalogEntry, ChainedRecord, DatasetSpec, EntryType, Get, Hello,
    MIN_CLIENT_FRAME, Message, Open, OpenIntent, Organization, PathSpec, Point, Put, PutChain,
    Record, Request, StringRef, Verb, Welcome, access, kind, protocol_error,
};
pub use options::{Access, Intent, OptionConflict, Processing, RplOptions};
pub use wire::DecodeError;

/// Protocol major version: a different major is refused at the handshake.
pub const PROTOCOL_MAJOR: u16 = 1;
/// Protocol minor version: the session uses the lower of both sides' minors.
pub const PROTOCOL_MINOR: u16 = 7;
/// IANA port of the VSAM Redirector.
pub const DEFAULT_PORT: u16 = 2387;
/// Frame limit before and unless the handshake agrees on another (16 MiB).
pub const DEFAULT_MAX_FRAME: u32 = 16 * 1024 * 1024;
/// Largest record length a dataset may define (VSAM's spanned maximum is
/// about 2 GiB; the redirector keeps a record inside one frame).
pub const MAX_RECORD_LENGTH: u32 = 8 * 1024 * 1024;

/// The one line a server answers to a stray text probe (an HTTP request, a
/// line typed into telnet) before closing, and that `vsamr ping` prints:
/// administrators probing port 2387 learn what answers there.
pub fn identification(server: &str, major: u16, minor: u16) -> String {
    format!(
        "{server} speaking the binary VSAM redirector protocol {major}.{minor}; use vsamr or a redirector client (see docs/protocol.md)"
    )
}

/// The codec a server uses: reads requests, writes answers.
pub type ServerCodec = FrameCodec<Request, Answer>;
/// The codec a client uses: reads answers, writes requests.
pub type ClientCodec = FrameCodec<Answer, Request>;

#[cfg(test)]
mod tests;
