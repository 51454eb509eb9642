//! A server-wide memory budget for frames being received: a client that
//! announces a large frame and sends it slowly (or never finishes it) holds
//! memory for it, and many such clients must not exhaust the machine.
//!
//! A frame of more than [`FREE_FRAME`] bytes takes its size from the budget
//! as soon as its length is read, and gives it back when it is whole (or
//! the connection closes). One that does not fit is refused: the
//! connection is closed with `PROTOCOL_ERROR` 9 saying so. Small frames,
//! every ordinary request, are not counted (at most `max_connections` x
//! 64 KiB).

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::Decoder;
use vsam_protocol::{FrameError, Incoming, Request, ServerCodec};

/// Frames up to this size are not counted.
pub const FREE_FRAME: usize = 64 * 1024;

/// The budget, in KiB.
pub struct FrameBudget {
    kib: Arc<Semaphore>,
    mib: u64,
}

impl FrameBudget {
    /// A budget of `mib` MiB.
    pub fn new(mib: u64) -> Arc<Self> {
        let kib = (mib * 1024).min(Semaphore::MAX_PERMITS as u64) as usize;
        Arc::new(Self {
            kib: Arc::new(Semaphore::new(kib)),
            mib,
        })
    }

    /// The default for this machine: a sixteenth of its memory, between
    /// 64 MiB and 2 GiB.
    pub fn default_mib() -> u64 {
        (crate::machine::memory_mib() / 16).clamp(64, 2048)
    }
}

/// The server's frame decoder, with frames over [`FREE_FRAME`] counted
/// against the budget while they arrive.
pub struct BudgetedCodec {
    inner: ServerCodec,
    budget: Arc<FrameBudget>,
    held: Option<OwnedSemaphorePermit>,
}

impl BudgetedCodec {
    /// Frames up to `max_frame` bytes, large ones within `budget`.
    pub fn new(max_frame: usize, budget: Arc<FrameBudget>) -> Self {
        Self {
            inner: ServerCodec::new(max_frame),
            budget,
            held: None,
        }
    }
}

impl Decoder for BudgetedCodec {
    type Item = Incoming<Request>;
    type Error = FrameError;

    fn decode(&mut self, src: &mut bytes::BytesMut) -> Result<Option<Self::Item>, FrameError> {
        if self.held.is_none() && src.len() >= 4 {
            let length = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
            if length > FREE_FRAME && length <= self.inner.max_frame() {
                let kib = length.div_ceil(1024) as u32;
                match self.budget.kib.clone().try_acquire_many_owned(kib) {
                    Ok(permit) => self.held = Some(permit),
                    Err(_) => {
                        return Err(FrameError::OverBudget {
                            length,
                            budget_mib: self.budget.mib,
                        });
                    }
                }
            }
        }
        let decoded = self.inner.decode(src)?;
        if decoded.is_some() {
            self.held = None;
        }
        Ok(decoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn large_frames_take_from_the_budget_until_they_are_whole() {
        let budget = FrameBudget::new(1);
        let mut first = BudgetedCodec::new(16 << 20, budget.clone());
        let mut second = BudgetedCodec::new(16 << 20, budget.clone());
        let mut buffer = BytesMut::from(&(600u32 * 1024).to_be_bytes()[..]);
        assert!(first.decode(&mut buffer).unwrap().is_none());
        // 600 KiB of the 1 MiB are held: a second such frame does not fit.
        let mut other = BytesMut::from(&(600u32 * 1024).to_be_bytes()[..]);
        let refused = second.decode(&mut other).unwrap_err();
        assert!(refused.to_string().contains("memory budget"), "{refused}");
        // A small frame is never counted.
        let mut small = BytesMut::from(&1000u32.to_be_bytes()[..]);
        assert!(second.decode(&mut small).unwrap().is_none());
        // The first frame completes: its share comes back.
        buffer.extend_from_slice(&vec![0u8; 600 * 1024]);
        assert!(first.decode(&mut buffer).unwrap().is_some());
        assert!(first.held.is_none());
        let mut third = BudgetedCodec::new(16 << 20, budget);
        let mut again = BytesMut::from(&(600u32 * 1024).to_be_bytes()[..]);
        assert!(third.decode(&mut again).unwrap().is_none());
    }
}
