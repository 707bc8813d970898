//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Something a snapshot operation could not do.
#[derive(Debug, thiserror::Error)]
pub enum ZfsError {
    /// A snapshot of that name exists already.
    #[error("a snapshot named {name} exists already")]
    Exists {
        /// The name.
        name: String,
    },
    /// A tool (`zfs`, `btrfs`) could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A tool ran and failed.
    #[error("`{program} {args}` failed: {stderr}")]
    Command {
        /// The program.
        program: String,
        /// Its arguments, space-separated.
        args: String,
        /// What it printed on standard error (trimmed).
        stderr: String,
    },
    /// A file or directory could not be read or written.
    #[error("cannot use {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A tool printed something this crate does not understand.
    #[error("unexpected output from {program}: {line:?}")]
    Parse {
        /// The program.
        program: String,
        /// The line.
        line: String,
    },
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> ZfsError {
    let path = path.into();
    move |source| ZfsError::Io { path, source }
}
