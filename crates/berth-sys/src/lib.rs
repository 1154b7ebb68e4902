//! The only crate with `unsafe`: thin, documented syscall wrappers.
