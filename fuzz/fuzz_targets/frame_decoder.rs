//! The frame decoder of both sides, on any bytes: it never panics, never
//! reads past a frame, and every message it decodes encodes back to a frame
//! that decodes to the same message.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use vsam_protocol::{Answer, ClientCodec, Message, Request, ServerCodec, encode_frame};

/// Decodes frames from `data` until the decoder needs more or fails, and
/// checks each message survives a round trip.
fn drain<D, M>(mut codec: D, data: &[u8])
where
    D: Decoder<Item = vsam_protocol::codec::Incoming<M>>,
    M: Message + PartialEq + std::fmt::Debug,
{
    let mut buffer = BytesMut::from(data);
    while let Ok(Some(incoming)) = codec.decode(&mut buffer) {
        if let Ok(message) = incoming.message {
            let frame = encode_frame(incoming.id, &message);
            let again =
                M::decode_payload(frame[4], &frame[9..]).expect("an encoded message decodes");
            assert_eq!(again, message);
            assert_eq!(frame[4], incoming.kind);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    drain::<_, Request>(ServerCodec::new(1 << 20), data);
    drain::<_, Answer>(ClientCodec::new(1 << 20), data);
    // Every kind byte with the rest as its payload.
    if let Some((kind, payload)) = data.split_first() {
        let _ = Request::decode_payload(*kind, payload);
        let _ = Answer::decode_payload(*kind, payload);
    }
});
