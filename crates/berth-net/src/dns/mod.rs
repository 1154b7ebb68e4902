//! The embedded DNS server (Docker's 127.0.0.11): container names and aliases on user
//! networks, everything else forwarded to the host's resolvers.

pub(crate) mod server;
pub mod wire;
