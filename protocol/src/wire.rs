//! Big-endian primitives of the frame payloads: integers, strings (u16
//! length + UTF-8) and byte strings (u32 length + bytes).

use bytes::{Buf, BufMut, BytesMut};
use thiserror::Error;

/// Why a payload could not be decoded. The frame itself was intact, so the
/// connection carries on and the request is answered with this reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The payload ended inside a field.
    #[error("payload truncated: {field} needs {needed} more bytes, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// The bytes it needs.
        needed: usize,
        /// The bytes the payload has left.
        available: usize,
    },
    /// Bytes were left after the last field.
    #[error("{0} unexpected bytes after the last field of a {1} message")]
    TrailingBytes(usize, &'static str),
    /// A string field was not UTF-8.
    #[error("field {0} is not valid UTF-8")]
    NotUtf8(&'static str),
    /// The message kind byte names no message.
    #[error("unknown message kind {0:#04x}")]
    UnknownKind(u8),
    /// A field holds a value outside its domain.
    #[error("field {field}: {problem}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// What is wrong with its value.
        problem: String,
    },
}

/// Reads fields off a payload, failing with the field's name.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over a whole payload.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn need(&self, field: &'static str, needed: usize) -> Result<(), DecodeError> {
        if self.buf.len() < needed {
            Err(DecodeError::Truncated {
                field,
                needed,
                available: self.buf.len(),
            })
        } else {
            Ok(())
        }
    }

    /// One byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.need(field, 1)?;
        Ok(self.buf.get_u8())
    }

    /// A big-endian u16.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.need(field, 2)?;
        Ok(self.buf.get_u16())
    }

    /// A big-endian u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.need(field, 4)?;
        Ok(self.buf.get_u32())
    }

    /// A big-endian u64.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.need(field, 8)?;
        Ok(self.buf.get_u64())
    }

    /// A byte string: u32 length then the bytes.
    pub fn bytes(&mut self, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        let len = self.u32(field)? as usize;
        self.need(field, len)?;
        let out = self.buf[..len].to_vec();
        self.buf.advance(len);
        Ok(out)
    }

    /// A string: u16 length then UTF-8.
    pub fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let len = usize::from(self.u16(field)?);
        self.need(field, len)?;
        let out = std::str::from_utf8(&self.buf[..len])
            .map_err(|_| DecodeError::NotUtf8(field))?
            .to_string();
        self.buf.advance(len);
        Ok(out)
    }

    /// A fixed number of raw bytes.
    pub fn raw(&mut self, field: &'static str, len: usize) -> Result<&'a [u8], DecodeError> {
        self.need(field, len)?;
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }

    /// A u32 count, then that many items read by `item`. Each item takes
    /// at least `min_item` bytes, so a count the payload cannot hold never
    /// reserves memory for it: the read fails at the first missing item.
    pub fn list<T>(
        &mut self,
        min_item: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.u32("count")? as usize;
        let mut items = Vec::with_capacity(count.min(self.buf.len() / min_item.max(1)));
        for _ in 0..count {
            items.push(item(self)?);
        }
        Ok(items)
    }

    /// True when the payload is consumed (optional trailing fields).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails if anything is left.
    pub fn finish(self, message: &'static str) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len(), message))
        }
    }
}

/// Writes a byte string: u32 length then the bytes.
pub fn put_bytes(out: &mut BytesMut, value: &[u8]) {
    out.put_u32(value.len() as u32);
    out.put_slice(value);
}

/// Writes a string: u16 length then UTF-8, cut at 65,535 bytes on a
/// character boundary.
pub fn put_string(out: &mut BytesMut, value: &str) {
    let mut end = value.len().min(usize::from(u16::MAX));
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u16(end as u16);
    out.put_slice(&value.as_bytes()[..end]);
}
