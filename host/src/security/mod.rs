//! Who may connect and what they may do: TLS on the listening ports
//! ([`tls`]), and clients with their access rules ([`access`]).
//!
//! A client is named by a token it sends in HELLO or by the certificate it
//! shows in the TLS handshake; the access rules say which dataset patterns
//! each client may read, update or alter (RACF's levels). Without
//! `[[access]]` rules every client may do everything, as on a trusted
//! network; vsamrd says so in its log.

pub mod access;
pub mod exposed;
pub mod tls;

pub use access::{AccessPolicy, Identity, Level};
pub use tls::TlsSettings;
