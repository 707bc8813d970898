//! The stat cache: an unchanged file is never hashed twice, across processes.
//!
//! # Design
//!
//! A SQLite database (WAL journal, 5 s busy timeout, so concurrent shark processes share it;
//! the WAL stays between processes and is checkpointed only once it is large, see
//! [`StatCache`]'s `Drop`) with one table, `stat_v1`, keyed by `(dev, ino)` and holding the `size`, `mtime_ns`,
//! `ctime_ns` the file had when it was hashed, its digest, and its path for humans. A lookup
//! trusts a row only when all five stat fields are equal to the file's now. SQLite makes every
//! write atomic, so a crash loses at most recent entries (which only costs a re-hash), never
//! leaves a wrong one.
//!
//! # Racily clean files
//!
//! A file can be modified again within the same timestamp tick as the moment it was hashed,
//! keeping its size: its stat would then match a digest of the old content. Linux stamps files
//! from a clock that lags by up to a tick, and some filesystems keep whole seconds (ext3) or
//! two seconds (FAT). So, as git does with its index, an entry is recorded only when the file's
//! `mtime` and `ctime` are both older than the moment hashing began minus a window of
//! [`RACY_WINDOW`]; a file touched within that window is hashed every time until it settles.
//! `ctime` cannot be set by users, so `touch -d` cannot make a changed file look old.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use shark_store::{Digest, StatCache};
//! let file = dir.path().join("data.csv");
//! std::fs::write(&file, "a,b\n").unwrap();
//! let cache = StatCache::open(&dir.path().join("stat.db")).unwrap();
//! assert_eq!(cache.digest_file(&file).unwrap(), Digest::of_bytes(b"a,b\n"));
//! ```

use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OptionalExtension};

use crate::heal::{self, Damage, Healed, Notify, OnHeal};
use crate::{Digest, StoreError};

/// Files modified less than this long before they were hashed are not cached.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

const SCHEMA: &str = "PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS stat_v1 (
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    digest BLOB NOT NULL,
    path BLOB NOT NULL,
    PRIMARY KEY (dev, ino)
) WITHOUT ROWID;";

/// A persistent map from a file's identity and stat to its content digest.
#[derive(Debug)]
pub struct StatCache {
    path: PathBuf,
    conn: Mutex<Connection>,
    window: Duration,
    hashed: AtomicU64,
    notify: Notify,
}

/// The stat fields a cache entry must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: i64,
    ino: i64,
    size: i64,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        // SQLite integers are signed; these casts keep every bit, which is all equality needs.
        Stamp {
            dev: meta.dev() as i64,
            ino: meta.ino() as i64,
            size: meta.size() as i64,
            mtime_ns: nanos(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: nanos(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file was touched too close to `hashed_at_ns` to be trusted later.
    fn is_racy(&self, hashed_at_ns: i64, window: Duration) -> bool {
        let window = window.as_nanos().min(i64::MAX as u128) as i64;
        self.mtime_ns.max(self.ctime_ns) >= hashed_at_ns.saturating_sub(window)
    }
}

fn nanos(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

fn now_ns() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    d.as_nanos().min(i64::MAX as u128) as i64
}

impl StatCache {
    /// Opens (creating if needed) the cache database at `path`. A damaged database is
    /// rebuilt empty (see [`StatCache::open_with`]).
    pub fn open(path: &Path) -> Result<StatCache, StoreError> {
        StatCache::open_with(path, None)
    }

    /// Like [`StatCache::open`], and calls `on_heal` whenever the database is found damaged
    /// (when opened, or later in use): it is only a cache, so a copy of it is kept beside it
    /// (see [`crate::heal`]), it is emptied, and work goes on with every file hashed afresh.
    pub fn open_with(path: &Path, on_heal: Option<OnHeal>) -> Result<StatCache, StoreError> {
        let notify = Notify(on_heal);
        let conn = match connect(path) {
            Ok(conn) => conn,
            Err(e) if heal::is_damage(&e) => rebuild(path, Damage::Sqlite(e), &notify)?,
            Err(source) => {
                return Err(StoreError::StatCache {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        Ok(StatCache {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            window: RACY_WINDOW,
            hashed: AtomicU64::new(0),
            notify,
        })
    }

    /// Runs SQLite's integrity check on the cache, and rebuilds it if it is damaged; what
    /// was rebuilt, if anything.
    pub fn check(&self) -> Result<Option<Healed>, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let Some(damage) = heal::check(&conn).map_err(|e| self.db_err(e))? else {
            return Ok(None);
        };
        let (fresh, healed) = reset_and_open(&self.path, damage)?;
        *conn = fresh;
        self.notify.send(&healed);
        Ok(Some(healed))
    }

    /// The same cache with another racy window. Shorter windows are safe only on filesystems
    /// with fine timestamps (ext4, xfs, btrfs, tmpfs); tests use them to avoid sleeping.
    pub fn with_racy_window(mut self, window: Duration) -> StatCache {
        self.window = window;
        self
    }

    /// How many files this handle has hashed (cache misses), for tests and statistics.
    pub fn hashed(&self) -> u64 {
        self.hashed.load(Ordering::Relaxed)
    }

    /// The digest of the regular file at `path` (symlinks followed): from the cache when its
    /// stat is unchanged, else by hashing it (and remembering it if it is not racily clean).
    pub fn digest_file(&self, path: &Path) -> Result<Digest, StoreError> {
        let read_err = |source| StoreError::ReadSource {
            path: path.to_owned(),
            source,
        };
        let meta = fs::metadata(path).map_err(read_err)?;
        if !meta.is_file() {
            return Err(StoreError::NotAFile {
                path: path.to_owned(),
            });
        }
        let before = Stamp::of(&meta);
        if let Some(digest) = self.lookup(&before)? {
            return Ok(digest);
        }
        let started = now_ns();
        let digest = Digest::of_file(path).map_err(read_err)?;
        self.hashed.fetch_add(1, Ordering::Relaxed);
        let after = fs::metadata(path).map(|m| Stamp::of(&m)).ok();
        // A file that changed (or was replaced) while we read it is not remembered.
        if after == Some(before) && !before.is_racy(started, self.window) {
            self.store(path, &before, &digest)?;
        }
        Ok(digest)
    }

    /// Records that the file at `path`, whose stat is `meta`, has content `digest` (after a
    /// restore, say). Ignored when the file is racily clean.
    pub fn remember(&self, path: &Path, meta: &Metadata, digest: Digest) -> Result<(), StoreError> {
        let stamp = Stamp::of(meta);
        if !meta.is_file() || stamp.is_racy(now_ns(), self.window) {
            return Ok(());
        }
        self.store(path, &stamp, &digest)
    }

    fn lookup(&self, s: &Stamp) -> Result<Option<Digest>, StoreError> {
        // A damaged cache is rebuilt, empty: the answer is a miss.
        let row = self.query(|conn| {
            // Prepared once per connection: a run looks up every file it read.
            conn.prepare_cached(
                "SELECT digest FROM stat_v1 WHERE dev = ?1 AND ino = ?2 AND size = ?3
                 AND mtime_ns = ?4 AND ctime_ns = ?5",
            )?
            .query_row(
                params![s.dev, s.ino, s.size, s.mtime_ns, s.ctime_ns],
                |row| row.get::<_, Vec<u8>>(0),
            )
            .optional()
        })?;
        // A row of the wrong length cannot come from us; treat it as a miss.
        Ok(row
            .flatten()
            .and_then(|b| <[u8; 32]>::try_from(b).ok().map(Digest::from_bytes)))
    }

    fn store(&self, path: &Path, s: &Stamp, digest: &Digest) -> Result<(), StoreError> {
        self.query(|conn| {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO stat_v1 (dev, ino, size, mtime_ns, ctime_ns, digest, path)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                s.dev,
                s.ino,
                s.size,
                s.mtime_ns,
                s.ctime_ns,
                digest.as_bytes().as_slice(),
                path.as_os_str().as_bytes()
            ])
        })?;
        Ok(())
    }

    /// Runs `f` on the connection; if the database turns out damaged, rebuilds it and
    /// answers `None` (the empty cache knows nothing).
    fn query<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        match f(&conn) {
            Ok(v) => Ok(Some(v)),
            Err(e) if heal::is_damage(&e) => {
                *conn = rebuild(&self.path, Damage::Sqlite(e), &self.notify)?;
                Ok(None)
            }
            Err(e) => Err(self.db_err(e)),
        }
    }

    fn db_err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::StatCache {
            path: self.path.clone(),
            source,
        }
    }
}

/// Opens the cache database at `path`, creating its table if need be.
fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    crate::wal::enable(&conn)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Keeps a copy of the damaged cache at `path` (best effort: it is only a cache), empties it
/// and opens it afresh, and tells `notify`.
fn rebuild(path: &Path, damage: Damage, notify: &Notify) -> Result<Connection, StoreError> {
    let (conn, healed) = reset_and_open(path, damage)?;
    notify.send(&healed);
    Ok(conn)
}

/// [`rebuild`], returning the report instead of sending it.
fn reset_and_open(path: &Path, damage: Damage) -> Result<(Connection, Healed), StoreError> {
    let err = |source| StoreError::StatCache {
        path: path.to_owned(),
        source,
    };
    let copy = heal::keep_copy(path);
    heal::start_afresh(path, heal::RESET_WAIT).map_err(|source| StoreError::Heal {
        path: path.to_owned(),
        source,
    })?;
    let conn = connect(path).map_err(err)?;
    let healed = Healed {
        path: path.to_owned(),
        damage,
        copy,
        salvage: None,
    };
    Ok((conn, healed))
}

impl Drop for StatCache {
    fn drop(&mut self) {
        let conn = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        crate::wal::trim(conn, &self.path, WAL_LIMIT);
    }
}

/// The WAL size past which closing the cache checkpoints it (see [`crate::wal`]). Each process
/// that opens the cache first re-reads the whole WAL to rebuild its index (about 8 µs a 4 KiB
/// frame here), so the limit trades that per-command cost against how often a checkpoint's
/// fsyncs are paid: a miss adds a few frames, so this is a checkpoint every few dozen misses.
const WAL_LIMIT: u64 = 256 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(mtime_ns: i64, ctime_ns: i64) -> Stamp {
        Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns,
            ctime_ns,
        }
    }

    #[test]
    fn racy_means_touched_within_the_window_before_hashing() {
        let w = Duration::from_nanos(100);
        assert!(!stamp(899, 899).is_racy(1000, w));
        assert!(stamp(900, 0).is_racy(1000, w), "mtime on the window's edge");
        assert!(stamp(0, 900).is_racy(1000, w), "ctime on the window's edge");
        assert!(
            stamp(0, 2000).is_racy(1000, w),
            "changed after hashing began"
        );
        assert!(!stamp(0, 0).is_racy(1000, w));
    }

    #[test]
    fn the_wal_outlives_a_close_until_it_grows_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("stat.db");
        let wal = dir.path().join("stat.db-wal");
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        let meta = fs::metadata(&file).unwrap();
        let open = || {
            StatCache::open(&db)
                .unwrap()
                .with_racy_window(Duration::ZERO)
        };
        let cache = open();
        cache
            .remember(&file, &meta, Digest::of_bytes(b"x"))
            .unwrap();
        drop(cache);
        // Not checkpointed and deleted on close, so the next process need not recreate it.
        assert!(fs::metadata(&wal).unwrap().len() > 0);
        let cache = open();
        assert_eq!(cache.digest_file(&file).unwrap(), Digest::of_bytes(b"x"));
        assert_eq!(cache.hashed(), 0, "the entry in the WAL was found");
        // Every insert is a transaction of at least one page: grow the WAL past the limit.
        let mut n = 0i64;
        while fs::metadata(&wal).unwrap().len() <= WAL_LIMIT {
            n += 1;
            let other = Stamp {
                ino: -n,
                ..Stamp::of(&meta)
            };
            cache
                .store(&file, &other, &Digest::of_bytes(&n.to_le_bytes()))
                .unwrap();
        }
        drop(cache);
        assert_eq!(
            fs::metadata(&wal).unwrap().len(),
            0,
            "checkpointed and emptied"
        );
        let cache = open();
        assert_eq!(cache.digest_file(&file).unwrap(), Digest::of_bytes(b"x"));
        assert_eq!(cache.hashed(), 0, "the entry survived the checkpoint");
    }

    #[test]
    fn nanos_combine_seconds_and_fraction() {
        assert_eq!(nanos(2, 5), 2_000_000_005);
        assert_eq!(nanos(i64::MAX, 5), i64::MAX);
    }
}
