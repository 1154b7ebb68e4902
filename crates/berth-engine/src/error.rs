//! The engine's error: a small set of kinds the daemon maps to HTTP status codes in one
//! function (containerd's errdefs), plus Docker's own message text.

use std::fmt;

/// What went wrong, in the terms a client branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// No such container, image, volume or exec (HTTP 404).
    NotFound,
    /// The object exists in a state that forbids the operation, or a name is taken (HTTP 409).
    Conflict,
    /// Bad input from the caller (HTTP 400).
    InvalidArgument,
    /// Nothing to do: start of a running container, stop of a stopped one (HTTP 304).
    NotModified,
    /// A dependency is missing or not ready (HTTP 503).
    Unavailable,
    /// A registry refused the credentials of a login (HTTP 401).
    Unauthorized,
    /// Anything else: I/O failures, runtime errors (HTTP 500).
    Internal,
}

/// An engine error: a kind plus a message in Docker's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EngineError {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EngineError {
            kind,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_modified() -> Self {
        Self::new(ErrorKind::NotModified, "")
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// `No such container: foo` (Docker's exact wording; the CLI prints it verbatim).
    pub fn no_such_container(name: &str) -> Self {
        Self::not_found(format!("No such container: {name}"))
    }
    /// `No such image: foo:latest`.
    pub fn no_such_image(name: &str) -> Self {
        Self::not_found(format!("No such image: {name}"))
    }
    /// `get foo: no such volume`.
    pub fn no_such_volume(name: &str) -> Self {
        Self::not_found(format!("get {name}: no such volume"))
    }
    /// `No such exec instance: <id>`.
    pub fn no_such_exec(id: &str) -> Self {
        Self::not_found(format!("No such exec instance: {id}"))
    }
    /// Docker's name-conflict message.
    pub fn name_in_use(name: &str, id: &str) -> Self {
        Self::conflict(format!(
            "Conflict. The container name \"{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
        ))
    }
    /// An operation that is not built yet; never returned by a finished method.
    pub fn not_implemented(what: &str) -> Self {
        Self::unavailable(format!("{what}: not implemented yet"))
    }
    /// Wrap an I/O error with what was being done.
    pub fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        Self::internal(format!("{context}: {err}"))
    }
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, EngineError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_messages() {
        let e = EngineError::no_such_container("foo");
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(e.to_string(), "No such container: foo");
        let e = EngineError::name_in_use("/web", "abc");
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert!(e.message.starts_with(
            "Conflict. The container name \"/web\" is already in use by container \"abc\"."
        ));
    }
}
