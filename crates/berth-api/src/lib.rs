//! # berth-api: the Docker Engine API v1.47 on the wire
//!
//! Serde types for the JSON bodies the docker CLI, docker-py and other SDKs send and read,
//! with Docker's exact field names (`PascalCase`, a few exceptions like `scope`/`time` in
//! events and the snake_case stats object). No I/O lives here: the daemon (server side) and
//! berth-client (client side) both speak through these types.
//!
//! Vocabulary:
//! - a *request* type is lenient: every field has a default, unknown fields are ignored
//!   (newer clients send more), `null` is accepted where Go would send it;
//! - a *reply* type serializes every field Docker serializes, including zero values, because
//!   clients (and SDKs generated from the swagger) index into them without checking.
//!
//! Worked example: the daemon answers `GET /v1.47/version` with
//! ```
//! let v = berth_api::system::SystemVersion { version: "28.2.2".into(), ..Default::default() };
//! let json = serde_json::to_value(&v).unwrap();
//! assert_eq!(json["Version"], "28.2.2");
//! ```
//!
//! Streams: [`stream`] has the 8-byte multiplexed framing of attach/exec/logs for non-TTY
//! containers; [`progress`] the newline-separated JSON messages of pull/push/load.

#![forbid(unsafe_code)]

pub mod container;
pub mod detach;
pub mod error;
pub mod events;
pub mod exec;
pub mod filters;
pub mod host_config;
pub mod image;
pub mod network;
pub mod progress;
pub mod stats;
pub mod stream;
pub mod strslice;
pub mod system;
pub mod version;
pub mod volume;

pub use error::ErrorResponse;
pub use version::{ApiVersion, MAX_API_VERSION, MIN_API_VERSION};
