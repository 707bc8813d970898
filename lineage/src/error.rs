//! The one error type of this crate.

use std::path::PathBuf;

use crate::RunId;

/// Something the lineage database could not do.
#[derive(Debug, thiserror::Error)]
pub enum LineageError {
    /// The database file could not be opened or configured.
    #[error("cannot open the lineage database {}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A schema migration failed; the database is left at its previous version.
    #[error("cannot upgrade the lineage database {} to schema version {version}", path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The version that could not be reached.
        version: u32,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer shark.
    #[error(
        "the lineage database {} has schema version {found}, but this shark understands \
         versions up to {supported}; use a newer shark",
        path.display()
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A damaged database could not be emptied to be rebuilt; it is left as it was.
    #[error("cannot empty the damaged lineage database {} to rebuild it", path.display())]
    Reset {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Rebuilding a damaged database from its copy failed midway; the copy is intact.
    #[error("cannot rebuild the lineage database {}", path.display())]
    Rebuild {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// No run has that id.
    #[error("no run {id} in the lineage database")]
    NoSuchRun {
        /// The id asked for.
        id: RunId,
    },
    /// Recording a run failed; nothing of it was stored.
    #[error("cannot record the run of {command:?}")]
    Record {
        /// The command text of the run.
        command: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A query failed, or a stored row could not be read back.
    #[error("cannot {what} in the lineage database")]
    Query {
        /// What was being done, e.g. `"load run 42"`.
        what: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
}

/// Wraps a SQLite error from a query described by `what`.
pub(crate) fn query(what: &str) -> impl FnOnce(rusqlite::Error) -> LineageError + '_ {
    move |source| LineageError::Query {
        what: what.to_owned(),
        source,
    }
}
