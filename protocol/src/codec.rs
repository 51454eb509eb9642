//! Framing: `length:u32 kind:u8 id:u32 payload`, as a tokio-util codec.
//!
//! Framing errors (a length below 5 or above the limit) lose the stream and
//! close the connection; a payload that does not decode only fails its own
//! request, so the decoder hands it up as an [`Incoming`] with an error.

use crate::message::{Answer, Message};
use crate::wire::DecodeError;
use bytes::{Buf, BufMut, BytesMut};
use std::marker::PhantomData;
use thiserror::Error;
use tokio_util::codec::{Decoder, Encoder};

/// Bytes of the length field.
pub const LENGTH_BYTES: usize = 4;
/// Bytes of kind and id that every frame has after its length.
pub const HEADER_BYTES: usize = 5;

/// A frame whose framing was intact; the payload may still be bad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming<M> {
    /// Request id, echoed in the answer.
    pub id: u32,
    /// Kind byte.
    pub kind: u8,
    /// The decoded message, or why it did not decode.
    pub message: Result<M, DecodeError>,
}

/// Why the byte stream cannot be read any further.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The length field exceeds the negotiated maximum.
    #[error("frame of {length} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The frame's length field.
        length: usize,
        /// The largest frame the connection accepts.
        max: usize,
    },
    /// The length field is too small to hold kind and id.
    #[error("frame length {0} is below the minimum of 5 bytes")]
    TooShort(usize),
    /// The frame would take the receiver past its memory budget for frames
    /// being received (a server's budget shared by all its connections).
    #[error(
        "a frame of {length} bytes does not fit the server's memory budget for frames being received ({budget_mib} MiB, [server] frame_memory_mb) now; send it again later"
    )]
    OverBudget {
        /// The frame's length field.
        length: usize,
        /// The budget, `[server] frame_memory_mb`.
        budget_mib: u64,
    },
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Codec that decodes `In` messages and encodes `Out` messages.
#[derive(Debug)]
pub struct FrameCodec<In, Out> {
    max_frame: usize,
    _types: PhantomData<fn() -> (In, Out)>,
}

impl<In, Out> FrameCodec<In, Out> {
    /// A codec that refuses frames longer than `max_frame` bytes (length
    /// field value, i.e. without the 4 length bytes).
    pub fn new(max_frame: usize) -> Self {
        Self {
            max_frame,
            _types: PhantomData,
        }
    }

    /// Changes the limit, e.g. after the handshake.
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    /// The current limit.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }
}

impl<In: Message, Out> Decoder for FrameCodec<In, Out> {
    type Item = Incoming<In>;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, FrameError> {
        if src.len() < LENGTH_BYTES {
            return Ok(None);
        }
        let length = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if length < HEADER_BYTES {
            return Err(FrameError::TooShort(length));
        }
        if length > self.max_frame {
            return Err(FrameError::TooLarge {
                length,
                max: self.max_frame,
            });
        }
        if src.len() < LENGTH_BYTES + length {
            src.reserve(LENGTH_BYTES + length - src.len());
            return Ok(None);
        }
        src.advance(LENGTH_BYTES);
        let frame = src.split_to(length);
        let kind = frame[0];
        let id = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
        let message = In::decode_payload(kind, &frame[HEADER_BYTES..]);
        Ok(Some(Incoming { id, kind, message }))
    }
}

impl<In, Out: Message> Encoder<(u32, Out)> for FrameCodec<In, Out> {
    type Error = FrameError;

    fn encode(&mut self, (id, message): (u32, Out), dst: &mut BytesMut) -> Result<(), FrameError> {
        let start = dst.len();
        dst.put_u32(0);
        dst.put_u8(message.kind());
        dst.put_u32(id);
        message.encode_payload(dst);
        let length = dst.len() - start - LENGTH_BYTES;
        dst[start..start + LENGTH_BYTES].copy_from_slice(&(length as u32).to_be_bytes());
        Ok(())
    }
}

/// Encodes one frame into a fresh buffer (tests, examples, documentation).
pub fn encode_frame<M: Message>(id: u32, message: &M) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u32(0);
    out.put_u8(message.kind());
    out.put_u32(id);
    message.encode_payload(&mut out);
    let length = (out.len() - LENGTH_BYTES) as u32;
    out[..LENGTH_BYTES].copy_from_slice(&length.to_be_bytes());
    out.to_vec()
}

/// The length of this answer's frame, length prefix included: what the
/// client's `max_frame` must hold. Counted, not encoded, for record
/// results (the answers that grow large).
pub fn answer_frame_len(answer: &Answer) -> usize {
    match answer {
        Answer::Result { status, records } => {
            let mut message = status.message.len().min(usize::from(u16::MAX));
            while !status.message.is_char_boundary(message) {
                message -= 1;
            }
            LENGTH_BYTES
                + HEADER_BYTES
                + 3
                + 2
                + message
                + 4
                + records
                    .iter()
                    .map(|r| 8 + 4 + r.key.len() + 4 + r.data.len())
                    .sum::<usize>()
        }
        other => encode_frame(0, other).len(),
    }
}
