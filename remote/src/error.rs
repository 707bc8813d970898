//! The one error type of the remote cache.

use std::path::PathBuf;

/// What went wrong with the remote cache. Only configuration errors reach the user as
/// errors; everything else makes shark warn once and work locally.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// A remote URL that cannot be used.
    #[error("bad remote URL {url:?}: {why}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The config file cannot be read or parsed.
    #[error("cannot read the config file {}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The remote settings contradict each other.
    #[error("bad remote settings: {what}")]
    Config {
        /// What is wrong.
        what: String,
    },
    /// A credential file (token, certificate, key, CA) cannot be read.
    #[error("cannot read {}", path.display())]
    Credential {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The connection cannot be set up or was lost.
    #[error("cannot connect to {url}")]
    Connect {
        /// The server.
        url: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A call failed (after its retries) or timed out.
    #[error("{call} failed: {status}")]
    Call {
        /// Which call.
        call: &'static str,
        /// The server's (or the transport's) status.
        status: Box<tonic::Status>,
    },
    /// The server speaks no digest function shark can use.
    #[error("the server offers no digest function shark can use (it needs SHA-256 or BLAKE3)")]
    NoDigestFunction,
    /// The server answered with something malformed.
    #[error("the server sent a malformed {what}")]
    Malformed {
        /// What was malformed.
        what: String,
    },
    /// A blob from the server does not match its digest.
    #[error("remote blob {digest} is corrupt: its content does not match its digest")]
    Corrupt {
        /// The blob's digest (as the server names it).
        digest: String,
    },
    /// The local store failed while a blob went to or came from the server.
    #[error("local store")]
    Store(#[from] shark_store::StoreError),
    /// The digest map (`remote.db`) failed.
    #[error("cannot use the digest map {}", path.display())]
    Map {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// A local file failed while a blob went to or came from the server.
    #[error("cannot read or write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl RemoteError {
    /// Whether this error means the server cannot be used for now (down, slow, refusing),
    /// as opposed to one bad blob or entry.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            RemoteError::Connect { .. } | RemoteError::Call { .. } | RemoteError::NoDigestFunction
        )
    }
}
