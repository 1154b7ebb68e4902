//! # berth-client: talking to `berth daemon` over its unix socket
//!
//! HTTP/1.1 on a fresh `UnixStream` per request (hyper's client connection, `Host:
//! api.moby.localhost` like the docker CLI), JSON in and out with berth-api types, streamed
//! bodies for logs/stats/events/pull, and the hijack (`101` upgrade → raw duplex) for attach
//! and exec.
//!
//! ```no_run
//! # async fn demo() -> Result<(), berth_client::ClientError> {
//! let client = berth_client::Client::from_host(None)?; // -H / BERTH_HOST / /run/berth/berth.sock
//! let v: berth_api::system::SystemVersion = client.get_json("/version").await?;
//! println!("{}", v.version);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod client;
mod error;
mod query;
mod stream;

pub use client::{Client, DEFAULT_HOST};
pub use error::ClientError;
pub use query::Query;
pub use stream::{BodyStream, Hijacked};
