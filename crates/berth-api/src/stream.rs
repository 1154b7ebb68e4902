//! The multiplexed stream framing of attach, exec and logs for containers without a TTY.
//!
//! ```text
//! [stream type: 0 stdin, 1 stdout, 2 stderr, 3 systemerr] [0 0 0] [u32 big-endian length] payload
//! ```
//! With a TTY there is no framing: raw bytes.

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    /// An error from the daemon itself; the docker CLI's `StdCopy` returns it as an error.
    SystemErr = 3,
}

impl StreamType {
    pub fn from_byte(b: u8) -> Option<StreamType> {
        Some(match b {
            0 => StreamType::Stdin,
            1 => StreamType::Stdout,
            2 => StreamType::Stderr,
            3 => StreamType::SystemErr,
            _ => return None,
        })
    }
}

/// `application/vnd.docker.multiplexed-stream`.
pub const MULTIPLEXED_CONTENT_TYPE: &str = "application/vnd.docker.multiplexed-stream";
/// `application/vnd.docker.raw-stream`.
pub const RAW_CONTENT_TYPE: &str = "application/vnd.docker.raw-stream";

/// Encodes one frame (header + payload).
pub fn encode_frame(stream: StreamType, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.push(stream as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An incremental decoder: feed bytes as they arrive, take whole frames out.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

/// A frame header that cannot be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream frame header {0:?}: is the container running with a TTY?")]
pub struct FrameError(pub [u8; 8]);

impl FrameDecoder {
    pub fn new() -> Self {
        FrameDecoder::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if buffered.
    pub fn next_frame(&mut self) -> Result<Option<(StreamType, Vec<u8>)>, FrameError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let mut hdr = [0u8; 8];
        hdr.copy_from_slice(&self.buf[..8]);
        let st = StreamType::from_byte(hdr[0]).ok_or(FrameError(hdr))?;
        let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let payload = self.buf[8..8 + len].to_vec();
        self.buf.drain(..8 + len);
        Ok(Some((st, payload)))
    }

    /// Bytes buffered but not yet a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_across_split_reads() {
        let mut wire = encode_frame(StreamType::Stdout, b"hello\n");
        wire.extend(encode_frame(StreamType::Stderr, b"oops"));
        assert_eq!(&wire[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
        let mut d = FrameDecoder::new();
        let mut got = vec![];
        for chunk in wire.chunks(3) {
            d.push(chunk);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(
            got,
            vec![
                (StreamType::Stdout, b"hello\n".to_vec()),
                (StreamType::Stderr, b"oops".to_vec())
            ]
        );
        assert_eq!(d.pending(), 0);
        let mut bad = FrameDecoder::new();
        bad.push(b"hello wo");
        assert!(bad.next_frame().is_err());
    }
}
