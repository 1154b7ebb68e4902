//! The compression of a tar a client uploads (`PUT /containers/{id}/archive`).
//!
//! Docker's API: "the input stream must be a tar archive compressed with one of the following
//! algorithms: identity (no compression), gzip, bzip2, or xz". As moby's
//! `archive.DecompressStream`, the format is told by the stream's first bytes, not by a header.
//!
//! Hostile input: every decoder streams (a few MiB of memory at most, whatever the archive
//! expands to; what it expands to lands on the container's filesystem, bounded by its space,
//! as with dockerd). An xz stream names its own dictionary size (up to 4 GiB), so its decoder
//! gets a memory limit, checked by liblzma before it allocates. A stream that fails to decode
//! is a [`DecodeError`] (a 400), never an I/O error of the daemon.

use std::io::{self, BufReader, Read};

/// How a tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
}

/// The first bytes needed to tell the formats apart.
const HEAD: usize = 6;

impl Compression {
    /// The format whose magic bytes `head` starts with (moby's `DetectCompression`).
    pub(crate) fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }
}

/// The most memory an xz stream may make its decoder take. `xz -9` (64 MiB dictionary) needs
/// 65 MiB to decompress, so every preset of the xz tool fits.
pub(crate) const XZ_MEMLIMIT: u64 = 128 << 20;
const _: () = assert!(XZ_MEMLIMIT >= 65 << 20, "xz -9 archives must decompress");

/// Why a compressed archive could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the archive is not a valid {format} stream: {reason}")]
    Corrupt {
        format: &'static str,
        reason: String,
    },
    #[error(
        "the archive's xz stream needs more than {} MiB of memory to decompress; \
         compress it with a preset of xz -9 or lower",
        limit >> 20
    )]
    MemLimit { limit: u64 },
}

/// Takes the [`DecodeError`] out of an I/O error of [`decompress`]'s reader, or gives the
/// error back.
pub(crate) fn into_decode_error(e: io::Error) -> Result<DecodeError, io::Error> {
    take_inner::<DecodeError>(e)
}

/// The error of type `T` that `e` wraps, or `e` itself.
fn take_inner<T: std::error::Error + Send + Sync + 'static>(e: io::Error) -> Result<T, io::Error> {
    if !e.get_ref().is_some_and(|i| i.is::<T>()) {
        return Err(e);
    }
    let kind = e.kind();
    match e.into_inner().map(|b| b.downcast::<T>()) {
        Some(Ok(t)) => Ok(*t),
        Some(Err(other)) => Err(io::Error::new(kind, other)),
        None => Err(io::Error::from(kind)),
    }
}

/// `input`, decompressed as its first bytes say.
pub(crate) fn decompress<'a, R: Read + 'a>(input: R) -> io::Result<Box<dyn Read + 'a>> {
    decompress_limited(input, XZ_MEMLIMIT)
}

fn decompress_limited<'a, R: Read + 'a>(
    mut input: R,
    xz_memlimit: u64,
) -> io::Result<Box<dyn Read + 'a>> {
    // The head in full: a short first read (a small chunk of the body) must not hide a magic.
    let mut head = Vec::with_capacity(HEAD);
    (&mut input).take(HEAD as u64).read_to_end(&mut head)?;
    let format = Compression::detect(&head);
    let br = BufReader::with_capacity(128 << 10, io::Cursor::new(head).chain(Input(input)));
    let decoder: Box<dyn Read + 'a> = match format {
        Compression::None => return Ok(Box::new(br)),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(br)),
        Compression::Xz => {
            let stream = liblzma::stream::Stream::new_stream_decoder(
                xz_memlimit,
                liblzma::stream::CONCATENATED,
            )
            .map_err(io::Error::from)?;
            Box::new(liblzma::bufread::XzDecoder::new_stream(br, stream))
        }
    };
    Ok(Box::new(Decoder {
        inner: decoder,
        format,
        xz_memlimit,
    }))
}

/// An error of the client's stream itself (not of its decoding), passed through as it is.
#[derive(Debug)]
struct InputError(io::Error);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for InputError {}

/// Marks the errors of the compressed input, so the decoder's own can be told from them.
struct Input<R>(R);

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), InputError(e)))
    }
}

/// A decoder whose failures are [`DecodeError`]s.
struct Decoder<'a> {
    inner: Box<dyn Read + 'a>,
    format: Compression,
    xz_memlimit: u64,
}

impl Read for Decoder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| self.classify(e))
    }
}

impl Decoder<'_> {
    fn classify(&self, e: io::Error) -> io::Error {
        let e = match take_inner::<InputError>(e) {
            Ok(input) => return input.0,
            Err(e) => e,
        };
        let inner = e.get_ref();
        let memlimit = inner
            .and_then(|i| i.downcast_ref::<liblzma::stream::Error>())
            .is_some_and(|x| matches!(x, liblzma::stream::Error::MemLimit));
        let d = if memlimit {
            DecodeError::MemLimit {
                limit: self.xz_memlimit,
            }
        } else {
            let reason = match e.kind() {
                io::ErrorKind::UnexpectedEof => format!("it ends too early ({e})"),
                _ => e.to_string(),
            };
            DecodeError::Corrupt {
                format: self.format.name(),
                reason,
            }
        };
        io::Error::new(io::ErrorKind::InvalidData, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const DATA: &[u8] = b"the quick brown fox jumps over the lazy dog\n";

    /// The [`DecodeError`] an I/O error of [`decompress`]'s reader carries, if it is one.
    fn decode_error(e: &io::Error) -> Option<&DecodeError> {
        e.get_ref()?.downcast_ref::<DecodeError>()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn bzip2(data: &[u8]) -> Vec<u8> {
        let mut w = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn xz(data: &[u8], preset: u32) -> Vec<u8> {
        let mut w = liblzma::write::XzEncoder::new(Vec::new(), preset);
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn all(r: io::Result<Box<dyn Read + '_>>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r?.read_to_end(&mut out)?;
        Ok(out)
    }

    /// One byte at a time: the magic must still be seen.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&b, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = b;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn every_format_is_detected_and_decoded_even_from_short_reads() {
        let cases = [
            (Compression::None, DATA.to_vec()),
            (Compression::Gzip, gzip(DATA)),
            (Compression::Bzip2, bzip2(DATA)),
            (Compression::Xz, xz(DATA, 1)),
        ];
        for (format, bytes) in cases {
            assert_eq!(Compression::detect(&bytes), format);
            assert_eq!(
                all(decompress(bytes.as_slice())).unwrap(),
                DATA,
                "{format:?}"
            );
            assert_eq!(
                all(decompress(Trickle(&bytes))).unwrap(),
                DATA,
                "{format:?}"
            );
        }
        // Shorter than any magic, and empty: plain.
        assert_eq!(all(decompress(&b"BZ"[..])).unwrap(), b"BZ");
        assert_eq!(all(decompress(io::empty())).unwrap(), b"");
    }

    #[test]
    fn concatenated_streams_are_one_archive() {
        for (a, b) in [
            (bzip2(b"one "), bzip2(b"two")),
            (xz(b"one ", 0), xz(b"two", 0)),
            (gzip(b"one "), gzip(b"two")),
        ] {
            let joined = [a, b].concat();
            assert_eq!(all(decompress(joined.as_slice())).unwrap(), b"one two");
        }
    }

    #[test]
    fn corrupt_and_truncated_streams_are_decode_errors() {
        let big: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for (name, mut bytes) in [
            ("gzip", gzip(&big)),
            ("bzip2", bzip2(&big)),
            ("xz", xz(&big, 1)),
        ] {
            let truncated = bytes[..bytes.len() / 2].to_vec();
            let e = all(decompress(truncated.as_slice())).unwrap_err();
            let d = decode_error(&e).unwrap_or_else(|| panic!("{name}: {e}"));
            assert!(
                d.to_string()
                    .starts_with(&format!("the archive is not a valid {name} stream")),
                "{d}"
            );
            let mid = bytes.len() / 2;
            for b in &mut bytes[mid..mid + 16] {
                *b ^= 0x5a;
            }
            let e = all(decompress(bytes.as_slice())).unwrap_err();
            assert!(
                matches!(decode_error(&e), Some(DecodeError::Corrupt { format, .. }) if *format == name),
                "{name}: {e}"
            );
        }
    }

    #[test]
    fn an_xz_dictionary_over_the_limit_is_refused_before_decoding() {
        // Preset 6: an 8 MiB dictionary, ~9 MiB to decode; a 1 MiB limit refuses it.
        let bytes = xz(DATA, 6);
        let e = all(decompress_limited(bytes.as_slice(), 1 << 20)).unwrap_err();
        let d = into_decode_error(e).unwrap();
        assert!(
            matches!(d, DecodeError::MemLimit { limit } if limit == 1 << 20),
            "{d}"
        );
        assert!(d.to_string().contains("more than 1 MiB"), "{d}");
        // And the real limit takes every preset of the xz tool.
        assert_eq!(all(decompress(bytes.as_slice())).unwrap(), DATA);
    }

    #[test]
    fn errors_of_the_input_itself_pass_through() {
        /// The bytes one at a time, then an error of the connection.
        struct Failing(Vec<u8>);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "client went away",
                    ));
                }
                buf[0] = self.0.remove(0);
                Ok(1)
            }
        }
        // Past the magic, inside the decoder.
        let head = bzip2(DATA)[..20].to_vec();
        let e = all(decompress(Failing(head))).unwrap_err();
        assert!(decode_error(&e).is_none(), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(e.to_string(), "client went away");
    }
}
