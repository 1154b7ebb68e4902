//! # berth-sys: the only crate with `unsafe`
//!
//! Thin, documented wrappers over the few Linux calls that neither `nix` nor `rustix` offer
//! safely: forking a child that runs a closure, cloning into new namespaces with
//! `CLONE_PARENT`, terminal ioctls, passing file descriptors over unix sockets, and marking
//! every inherited descriptor close-on-exec. Every `unsafe` block carries a `// SAFETY:` note.
//!
//! The runtime builds a container's init like this (see `berth-runtime`):
//!
//! ```text
//! caller (maybe multi-threaded) --fork_child--> helper (single-threaded)
//!   helper: setns(...) for joined namespaces
//!   helper --clone_parent(CLONE_NEW*)--> init   (init's parent is the caller)
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

pub mod fd;
pub mod file;
#[cfg(feature = "libm-exports")]
pub mod libm_exports;
pub mod memory;
pub mod mounts;
pub mod process;
pub mod signal;
pub mod term;

pub use fd::{close_fds_except, mark_cloexec_from, recv_fd, recv_with_fds, send_fd};
pub use process::{clone_parent, exit_now, fork_child, set_domainname};
pub use signal::reset_signals;
pub use term::{set_controlling_terminal, set_window_size};
