//! Damaged databases: telling damage from other failures, keeping a copy, starting afresh.
//!
//! Shark keeps three SQLite databases: the stat cache (only a cache), the pack of small blobs
//! (content, but content that can be put again by running what produced it) and the lineage
//! database (the user's history). A disk error, a bad sector or a stray write can damage any
//! of them; SQLite notices when it reads a damaged page (`SQLITE_CORRUPT`, or
//! `SQLITE_NOTADB` for a damaged header) or when asked to check (`PRAGMA integrity_check`).
//! What this module provides, for the store and the lineage crate alike:
//!
//! - [`is_damage`]: whether an error means damage rather than, say, a busy or read-only
//!   database, which must never be "healed".
//! - [`keep_copy`]: the damaged bytes copied aside, next to the database, as
//!   `NAME.damaged-YYYYMMDDTHHMMSSZ` (with `-wal` for its write-ahead log), for inspection or
//!   recovery by hand. A copy rather than a rename: other processes may have the database
//!   open, and a file renamed under them (or a stale `-wal` left for a new file of the old
//!   name) would lose or mix up their writes.
//! - [`start_afresh`]: the database emptied in place through SQLite itself
//!   (`SQLITE_DBCONFIG_RESET_DATABASE` and `VACUUM`, [`reset`]), which works on a badly
//!   damaged file, takes SQLite's locks like any write, and leaves every other connection
//!   valid (they see an empty database, whose tables the owner then creates again); or, when
//!   other connections block that (a damaged header makes the reset need the file to
//!   itself), the files removed.
//!
//! The stat cache is reset when found damaged (a cache rebuilds itself); the pack is reset and
//! the rows that can still be read from the copy, and whose content still matches its digest,
//! are put back (see [`crate::pack`]). Either way a [`Healed`] report goes to the store's or
//! cache's `on_heal` callback, once, so that the user hears of it. The lineage database is
//! only ever copied here; what to do with it is the caller's decision.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode};

use crate::Digest;

/// Whether `e` means the database file is damaged (`SQLITE_CORRUPT`, `SQLITE_NOTADB`).
pub fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Whether `e` or any error in its chain of sources means a damaged database (see
/// [`is_damage`]): for callers that hold errors of other crates wrapping SQLite's.
pub fn is_damage_chain(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err.downcast_ref::<rusqlite::Error>().is_some_and(is_damage) {
            return true;
        }
        next = err.source();
    }
    false
}

/// How damage was found.
#[derive(Debug, thiserror::Error)]
pub enum Damage {
    /// SQLite reported it while the database was being used.
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    /// `PRAGMA integrity_check` reported it (its first message here; all in `messages`).
    #[error("integrity check: {}", messages.first().map_or("failed", String::as_str))]
    Check {
        /// Every message of the check.
        messages: Vec<String>,
    },
}

/// What was recovered from a damaged pack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Salvage {
    /// Rows read back from the damaged copy, checked against their digests and put back.
    pub recovered: u64,
    /// Blobs the damaged pack named that could not be recovered. Runs that recorded one of
    /// them cannot be reused any more and run again instead.
    pub lost: Vec<Digest>,
    /// Whether every row the pack held could be accounted for; if not, some lost blobs are
    /// not in `lost` (`shark store verify` finds which recorded blobs are missing).
    pub complete: bool,
}

/// A damaged database that was set aside and started afresh.
#[derive(Debug)]
pub struct Healed {
    /// The database file.
    pub path: PathBuf,
    /// What was wrong with it.
    pub damage: Damage,
    /// Where a copy of the damaged file was kept (or why none could be made).
    pub copy: Result<PathBuf, io::Error>,
    /// For the pack: what was recovered and what was lost.
    pub salvage: Option<Salvage>,
}

impl fmt::Display for Healed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} was damaged ({})", self.path.display(), self.damage)?;
        match &self.copy {
            Ok(copy) => write!(f, "; a copy is kept at {}", copy.display())?,
            Err(e) => write!(f, "; no copy could be kept ({e})")?,
        }
        match &self.salvage {
            None => write!(f, "; rebuilt empty"),
            Some(s) if s.complete && s.lost.is_empty() => {
                write!(f, "; all {} blobs in it were recovered", s.recovered)
            }
            Some(s) => {
                write!(
                    f,
                    "; {} blobs recovered, {} lost",
                    s.recovered,
                    s.lost.len()
                )?;
                if !s.complete {
                    write!(f, " and others it held could not be listed")?;
                }
                write!(f, " (runs that need them will run again)")
            }
        }
    }
}

/// Called once for every database the store or the stat cache heals.
pub type OnHeal = Arc<dyn Fn(&Healed) + Send + Sync>;

/// An optional [`OnHeal`], printable for `Debug`.
#[derive(Clone, Default)]
pub(crate) struct Notify(pub Option<OnHeal>);

impl Notify {
    pub(crate) fn send(&self, healed: &Healed) {
        if let Some(f) = &self.0 {
            f(healed);
        }
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Notify(..)"
        } else {
            "Notify(none)"
        })
    }
}

/// Copies the damaged database at `db` (and its `-wal`, if any) to
/// `DB.damaged-YYYYMMDDTHHMMSSZ` beside it; the copy's path.
pub fn keep_copy(db: &Path) -> io::Result<PathBuf> {
    let stamp = stamp(SystemTime::now());
    let name = db.file_name().unwrap_or_default().to_string_lossy();
    let mut copy = db.with_file_name(format!("{name}.damaged-{stamp}"));
    for n in 2.. {
        if fs::symlink_metadata(&copy).is_err() {
            break;
        }
        copy = db.with_file_name(format!("{name}.damaged-{stamp}-{n}"));
    }
    fs::copy(db, &copy)?;
    let wal = crate::wal::path(db);
    if fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        if let Err(e) = fs::copy(&wal, crate::wal::path(&copy)) {
            let _ = fs::remove_file(&copy);
            return Err(e);
        }
    }
    Ok(copy)
}

/// Like [`keep_copy`], unless the newest copy already kept of `db` holds the same bytes
/// (the same damage, reported again): then that copy's path.
pub fn keep_copy_once(db: &Path) -> io::Result<PathBuf> {
    let name = db
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let prefix = format!("{name}.damaged-");
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let newest = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix) && !n.ends_with("-wal") && !n.ends_with("-shm"))
        .max_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
    if let Some(newest) = newest.map(|n| dir.join(n)) {
        let wal = crate::wal::path;
        if same_bytes(db, &newest)? && same_bytes(&wal(db), &wal(&newest))? {
            return Ok(newest);
        }
    }
    keep_copy(db)
}

/// Whether two files hold the same bytes (a missing file holds none).
fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    use std::io::Read;
    let open = |p: &Path| match fs::File::open(p) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    };
    let len = |f: &Option<fs::File>| f.as_ref().map_or(Ok(0), |f| f.metadata().map(|m| m.len()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    if len(&fa)? != len(&fb)? {
        return Ok(false);
    }
    let (Some(fa), Some(fb)) = (fa.as_mut(), fb.as_mut()) else {
        return Ok(true); // both empty or missing
    };
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// How long [`start_afresh`] waits for other connections before removing the files instead.
pub const RESET_WAIT: Duration = Duration::from_secs(2);

/// Empties the damaged database at `db` so that its owner can create its tables again: in
/// place through SQLite ([`reset`]) when that can be done within `wait`, else (another
/// process holds it in a way that blocks the reset, which happens when the header is
/// damaged) by removing the file, its `-wal` and its `-shm`. A process that still has the
/// removed file open goes on with it until it notices the damage itself; for a file whose
/// header is damaged that is its next transaction. Keep a copy first ([`keep_copy`]).
pub fn start_afresh(db: &Path, wait: Duration) -> io::Result<()> {
    let reset_in_place = || -> rusqlite::Result<()> {
        let conn = Connection::open(db)?;
        conn.busy_timeout(wait)?;
        reset(&conn)
    };
    match reset_in_place() {
        Ok(()) => return Ok(()),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {}
        Err(e) => return Err(io::Error::other(e)),
    }
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    for file in [crate::wal::path(db), PathBuf::from(shm), db.to_owned()] {
        match fs::remove_file(&file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Empties the database `conn` is connected to, whatever state its file is in, and puts it
/// back in WAL mode; its tables must then be created again.
pub fn reset(conn: &Connection) -> rusqlite::Result<()> {
    // SQLite's recipe: read the schema first (ignoring errors), so WAL mode is kept.
    let _ = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    });
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_RESET_DATABASE, true)?;
    let vacuumed = conn.execute_batch("VACUUM");
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_RESET_DATABASE, false)?;
    vacuumed?;
    crate::wal::enable(conn)
}

/// Runs `PRAGMA integrity_check` on `conn`: `None` when sound, else the damage.
pub fn check(conn: &Connection) -> rusqlite::Result<Option<Damage>> {
    let messages: Vec<String> = match conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
    {
        Ok(messages) => messages,
        Err(e) if is_damage(&e) => return Ok(Some(Damage::Sqlite(e))),
        Err(e) => return Err(e),
    };
    Ok((messages != ["ok"]).then_some(Damage::Check { messages }))
}

/// `t` as `YYYYMMDDTHHMMSSZ` (UTC).
fn stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (days, in_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (in_day / 3600, in_day / 60 % 60, in_day % 60);
    format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_calendar_times() {
        assert_eq!(stamp(UNIX_EPOCH), "19700101T000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_772_323_199); // 2026-02-28 23:59:59
        assert_eq!(stamp(t), "20260228T235959Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(stamp(leap), "20000229T000000Z");
    }
}
