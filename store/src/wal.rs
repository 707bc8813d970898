//! The WAL handling the store's two SQLite databases (the stat cache and the pack) share.
//!
//! Both keep their WAL between processes: closing a connection does not checkpoint
//! (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`), since by default the last connection to close copies
//! the WAL into the database, fsyncs both and deletes the WAL and its index, and the next
//! shark process creates them again, so every command paid for files created, flushed and
//! deleted. Left in place, the WAL would grow without bound and every open would re-read all
//! of it to rebuild its index, so a closing connection checkpoints it once it has grown past a
//! limit ([`trim`]), once per many commands.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// The WAL file of the database at `db`.
pub(crate) fn path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Switches to WAL. Two processes creating the database at once can find it locked in a way
/// the busy handler does not cover, so retry for a while.
pub(crate) fn enable(conn: &Connection) -> rusqlite::Result<()> {
    let mut tries = 0;
    loop {
        let res = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0));
        match res {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && tries < 100 =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.map(drop),
        }
    }
}

/// Checkpoints the WAL of `db` and empties it once it has grown past `limit` bytes; best
/// effort, for a connection about to close, and never waiting for another process (a busy
/// checkpoint is left for a later close).
pub(crate) fn trim(conn: &Connection, db: &Path, limit: u64) {
    if fs::metadata(path(db)).map_or(0, |m| m.len()) <= limit {
        return;
    }
    if conn.busy_timeout(Duration::ZERO).is_ok() {
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}
