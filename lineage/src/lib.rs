//! `shark-lineage`: the lineage database, a SQLite file recording every run shark makes.
//!
//! A *run* is one command line executed (or reused) by shark: its command, working
//! directory, environment digest, timings and exit status, plus what it read ([`Input`]s),
//! what it changed ([`Output`]s, in the order to apply them), the processes it started and
//! which of them touched which path. The executor records a [`NewRun`] with [`Db::record`]
//! in one transaction and gets a [`RunId`] back; queries return [`Run`]s.
//!
//! The database answers three kinds of question:
//!
//! - **Cache lookup**: [`Db::candidates`] lists earlier successful, reusable runs with the
//!   same *weak key* (command, cwd, environment, sandbox policy), newest first, with the
//!   inputs the executor must check against the filesystem.
//! - **History**: [`Db::recent`], [`Db::run`], [`Db::last_run_of`], [`Db::previous_run_of`],
//!   [`Db::stats`], and [`Db::referenced_digests`] for the store's garbage collection.
//! - **Undo**: [`Db::record_undo`] keeps what a run's changed paths held before it (in the
//!   store or a snapshot), [`Db::undo_data`] reads it back, within a budget
//!   ([`Db::drop_undo_over`]).
//! - **Browsing**: [`Db::runs_where`] (a filtered page of the log), [`Db::versions_of`]
//!   (what each run left at a path), [`Db::reuses_of`].
//! - **Lineage**: [`Db::producer_of`] and [`Db::producers_of`] find the runs that wrote some
//!   content; [`Db::lineage`] follows producers upstream into a [`LineageNode`] tree.
//!
//! Several processes may record into one database at once (WAL, a busy timeout, immediate
//! transactions), and a process killed at any point leaves no half-recorded run. The schema
//! is versioned ([`SCHEMA_VERSION`]); `src/schema.rs` documents the tables and the
//! migration rule.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use shark_lineage::{Db, NewRun};
//! use shark_store::Digest;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut db = Db::open(&dir.path().join("lineage.db")).unwrap();
//! let (env, key) = (Digest::of_bytes(b"env"), Digest::of_bytes(b"echo hi"));
//! let run = NewRun {
//!     exit_code: Some(0),
//!     reusable: true,
//!     duration: Duration::from_millis(3),
//!     ..NewRun::new("echo hi", "/home/me", env, key, SystemTime::now())
//! };
//! let id = db.record(&run).unwrap();
//! assert_eq!(db.candidates(&key, 5).unwrap()[0].id, id);
//! assert_eq!(db.run(id).unwrap().command, "echo hi");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod browse;
mod error;
mod graph;
mod load;
mod model;
mod query;
mod record;
mod refs;
mod salvage;
mod schema;
mod serial;
mod sql;
mod stamps;
mod time;
mod undo;

use std::path::Path;

use rusqlite::Connection;

pub use browse::{RunFilter, RunOutcome};
pub use error::LineageError;
pub use graph::{LineageNode, LineageOptions};
pub use model::{
    Access, AsLeft, Input, InputKind, NewRun, Output, OutputKind, PathState, ProcessRecord, Run,
    RunId, RunIdParseError, Stats, UnitState,
};
pub use salvage::Rebuilt;
pub use stamps::FileStamp;
pub use time::rfc3339;
pub use undo::{Prior, PriorKind, SnapshotRecord, UndoData, UndoRecord, UndoTotals};

/// The newest schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = schema::CURRENT;

/// An open lineage database. Each process (or thread) opens its own; they coordinate
/// through SQLite's locks.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// A database written by a newer shark is refused with [`LineageError::NewerSchema`].
    pub fn open(path: &Path) -> Result<Db, LineageError> {
        let open_err = |source| LineageError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        schema::configure(&conn).map_err(open_err)?;
        schema::migrate(&mut conn, path)?;
        Ok(Db { conn })
    }

    /// Runs SQLite's `PRAGMA integrity_check`; returns its messages, `["ok"]` when sound.
    pub fn integrity_check(&self) -> Result<Vec<String>, LineageError> {
        let check = || -> rusqlite::Result<Vec<String>> {
            let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            rows.collect()
        };
        check().map_err(error::query("check integrity"))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        schema::trim_wal(&self.conn);
    }
}
