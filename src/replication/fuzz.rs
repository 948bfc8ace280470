//! The fuzz entry point for the bytes a replica accepts from the network:
//! the log-shipping decoder (`wire`), the TCP framing both transports read
//! with (`tcp::read_frame`), and the multi-active decoder
//! (`multi::tcp::decode_message`), with the properties it checks.

use std::io::Cursor;

use super::multi::tcp::{decode_message, encode_message};
use super::tcp::{FrameRead, read_frame};
use super::wire;

/// The frame limit used on fuzzed streams: small, so a forged length is
/// refused as it would be by a real transport, without a fuzz input
/// having to be megabytes long to reach past it.
const FUZZ_FRAME_BYTES_MAX: usize = 1 << 16;

/// Feeds `data` to every decoder. Panics only if one breaks a promise:
/// - no decoder panics (malformed input is an error);
/// - a log-shipping message that decodes re-encodes to exactly the same
///   bytes (the encoding is canonical) and decodes to the same message;
/// - a multi-active message that decodes re-encodes to bytes that decode
///   to the same message;
/// - read as a TCP stream, `data` splits into frames each no longer than
///   the limit and exactly as long as declared, and every frame goes
///   through the decoders above.
#[doc(hidden)]
pub fn fuzz_replication_wire(data: &[u8]) {
    check_messages(data);
    let mut stream = Cursor::new(data);
    loop {
        let before = stream.position();
        match read_frame(&mut stream, FUZZ_FRAME_BYTES_MAX) {
            FrameRead::Frame(frame) => {
                assert!(frame.len() <= FUZZ_FRAME_BYTES_MAX);
                let consumed = stream.position() - before;
                assert_eq!(consumed, 4 + frame.len() as u64, "frame length mismatch");
                check_messages(&frame);
            }
            FrameRead::Oversized => {
                // Nothing past the length is read: the connection closes.
                assert_eq!(stream.position() - before, 4);
                return;
            }
            FrameRead::Ended => return,
        }
    }
}

fn check_messages(bytes: &[u8]) {
    if let Ok((from, to, message)) = wire::decode(bytes) {
        let mut again = Vec::new();
        wire::encode(from, to, &message, &mut again);
        assert_eq!(again, bytes, "log-shipping encoding is not canonical");
        assert_eq!(wire::decode(&again), Ok((from, to, message)));
    }
    if let Ok(message) = decode_message(bytes) {
        let again = encode_message(&message);
        match decode_message(&again) {
            Ok(decoded) => assert_eq!(decoded, message, "multi-active round trip"),
            Err(e) => panic!("a decoded multi-active message re-encodes badly: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::frame::Message;

    #[test]
    fn well_formed_streams_and_junk_pass_the_fuzz_checks() {
        let mut stream = Vec::new();
        for message in [
            Message::Fenced { epoch: 3 },
            Message::SnapshotRequest {
                id: 1,
                file: 2,
                offset: 3,
            },
        ] {
            let mut bytes = Vec::new();
            wire::encode(1, 2, &message, &mut bytes);
            stream.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
            stream.extend_from_slice(&bytes);
        }
        fuzz_replication_wire(&stream);
        fuzz_replication_wire(&[0xff; 64]);
        fuzz_replication_wire(&[]);
        // A count field claiming 4 billion entries: refused, not reserved.
        let mut huge = vec![0u8; 17];
        huge.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        fuzz_replication_wire(&huge);
    }
}
