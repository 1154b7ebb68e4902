//! Client errors, with the messages the CLI prints.

/// What can go wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot connect to the berth daemon at {host}: is it running? start it with `berth daemon`"
    )]
    Connect {
        host: String,
        source: std::io::Error,
    },
    /// The daemon answered an error status with `{"message"}`.
    #[error("Error response from daemon: {message}")]
    Api { status: u16, message: String },
    #[error("invalid daemon address {0:?}: use unix:///path/to/berth.sock")]
    BadHost(String),
    #[error("talking to the berth daemon: {0}")]
    Http(String),
    #[error("unexpected reply from the berth daemon: {0}")]
    Decode(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// The HTTP status for [`ClientError::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The daemon's message without the "Error response from daemon" prefix.
    pub fn message(&self) -> String {
        match self {
            ClientError::Api { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}
