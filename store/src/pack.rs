//! The pack: small blobs as rows of one SQLite database, `<root>/pack.db`.
//!
//! A blob file costs an inode, a directory entry and a whole filesystem block however small
//! its content, and creating the inode is the dearest part of storing a small file (on ext4,
//! a millisecond or more of kernel time when recently freed inodes are around). A pipeline
//! step that reads a thousand small inputs and writes a thousand small outputs would pay that
//! two thousand times. So content of fewer than [`PACK_MAX`] bytes is stored as a row of one
//! database instead; larger content stays a file (see [`crate::blob`]), where it can be
//! streamed and restored by reflink.
//!
//! # Format (pack version 1)
//!
//! `pack.db` is a SQLite database in WAL mode whose `user_version` is the pack version
//! ([`PACK_VERSION`]), with one table:
//!
//! ```sql
//! CREATE TABLE blobs (
//!     digest   BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
//!     encoding INTEGER NOT NULL CHECK (encoding IN (0, 1)),
//!     size     INTEGER NOT NULL CHECK (size >= 0),
//!     data     BLOB NOT NULL
//! );
//! ```
//!
//! - `digest`: the 32 bytes of the content's [`Digest`] (the blob's name).
//! - `encoding`: 0 for raw, 1 for zstd, chosen by [`crate::compress::choose`] exactly as for a
//!   blob file.
//! - `size`: the content's size in bytes (its logical size), always under [`PACK_MAX`].
//! - `data`: the stored bytes, exactly what a blob file of that encoding would hold: the
//!   content itself, or one zstd frame that records the content size. `data` comes last so
//!   that reading the other columns never touches its overflow pages.
//!
//! A row is inserted whole by one transaction (`INSERT OR IGNORE`, so two puts of the same
//! content both succeed, the later one finding the earlier's row; a batched handle's rows go
//! in together at its sync, see [`crate::durable`]) and never updated. A row
//! whose content is found not to match its digest (by a read, a restore or a verification),
//! or that cannot be decoded, is written to `<root>/corrupt/<hex>[.zst]` and deleted, like a
//! blob file moved aside, so the next put of that content stores a good copy. A put that
//! finds its row already there compares it with the content it holds (cheap: the content is
//! small and in memory) and moves a damaged row aside the same way before storing a good
//! one, so a damaged row, unlike a damaged blob file, does not outlive a put of its content.
//!
//! A pack damaged as a file (SQLite reports `SQLITE_CORRUPT` or `SQLITE_NOTADB` in use, or
//! its integrity check fails in [`crate::Store::verify_all`]) is healed where it is met: a
//! copy is kept beside it, it is emptied, the rows that can still be read from the copy and
//! match their digests are put back, and the store's `on_heal` callback hears what was lost
//! (see [`crate::heal`] and `pack/heal.rs`); the operation then runs again.
//!
//! Which content is where: this version packs content under [`PACK_MAX`] bytes. A store of
//! format version 1 holds small blobs as files; they are found and used (a put of their
//! content finds the file and stores nothing). A lookup that knows only a digest looks for a
//! file first (two `stat` calls), so a command that touches only large blobs never opens the
//! pack; a put of small content looks in the pack first.
//!
//! # Sharing
//!
//! A [`crate::Store`] opens its connection on first use and shares it between its clones
//! (behind a mutex: a connection serves one thread at a time). Any number of processes use
//! one pack: readers never wait in WAL mode, writers wait for each other up to
//! [`BUSY_TIMEOUT`]. Atomicity against a crash or `kill -9` at any moment is SQLite's: a
//! transaction is in the database whole or not at all. When puts reach the disk is described
//! in [`crate::durable`].
//!
//! Closing a connection does not checkpoint (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`): by default
//! the last connection to close copies the WAL into the database, fsyncs both and deletes the
//! WAL, so every shark command would create and delete a file, the very cost the pack
//! avoids. The WAL instead stays between processes, and a closing handle checkpoints it only
//! once it has grown past [`WAL_LIMIT`] (each process's first connection re-reads the WAL to
//! rebuild its index, so it must not grow without bound).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::blob::{Encoding, ZSTD_SUFFIX};

mod deferred;
mod heal;

use crate::heal::{Damage, Healed, Notify};
use crate::{Corruption, Digest, StoreError};
use deferred::{Deferred, DeferredRow};

/// Content of fewer than this many bytes is stored in the pack; larger content as a file.
///
/// 16 KiB: past it, a file's inode is a small part of the cost of writing its content, and
/// rows stay a few SQLite pages long.
pub const PACK_MAX: u64 = 16 * 1024;

/// The pack format this version reads and writes (`PRAGMA user_version` of `pack.db`).
pub const PACK_VERSION: i32 = 1;

/// How long a write waits for another process's transaction before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The WAL size past which a closing handle checkpoints it and empties it.
pub const WAL_LIMIT: u64 = 1 << 20;

/// Rows fetched at a time when listing the pack.
const PAGE: usize = 1024;

const SCHEMA: &str = "CREATE TABLE blobs (
    digest   BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
    encoding INTEGER NOT NULL CHECK (encoding IN (0, 1)),
    size     INTEGER NOT NULL CHECK (size >= 0),
    data     BLOB NOT NULL
)";

/// A store's handle on its pack, shared by the store's clones; opened on first use.
#[derive(Clone)]
pub(crate) struct Pack {
    path: PathBuf,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for Pack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pack").field("path", &self.path).finish()
    }
}

/// What clones of a store share about its pack.
struct Shared {
    path: PathBuf,
    conn: Option<Connection>,
    /// The (dev, ino) of the WAL (or of `pack.db` when there is no WAL) at the last fsync of
    /// the store's directory: the names need syncing again only when the file is new.
    named: Option<(u64, u64)>,
    /// Rows put through a batched handle and not inserted yet: they go in together, in one
    /// transaction, at the next [`Pack::flush`] (a sync), instead of one transaction each.
    deferred: Deferred,
    /// Who to tell when the pack is found damaged and healed.
    notify: Notify,
    /// Every heal this handle made, oldest first.
    healed: Vec<Arc<Healed>>,
}

/// Deferred rows are inserted as soon as they hold this many bytes, so that memory stays
/// bounded whatever a run writes.
const DEFERRED_MAX: usize = 4 << 20;

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(conn) = &self.conn {
            // Best effort: a handle dropped without a sync loses nothing anyone recorded.
            let _ = insert_all(conn, &self.deferred.rows);
            crate::wal::trim(conn, &self.path, WAL_LIMIT);
        }
    }
}

/// Inserts `rows` in one transaction.
fn insert_all(conn: &Connection, rows: &HashMap<Digest, DeferredRow>) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO blobs (digest, encoding, size, data) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (digest, (encoding, size, data)) in rows {
            stmt.execute(params![
                digest.as_bytes().as_slice(),
                encoding_code(*encoding),
                sql_size(*size),
                data
            ])?;
        }
    }
    tx.commit()
}

/// One packed blob, as stored.
#[derive(Debug)]
pub(crate) struct Row {
    pub encoding: Encoding,
    pub data: Vec<u8>,
}

/// One packed blob as listed: its digest, encoding, content size and stored size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listed {
    pub digest: Digest,
    pub encoding: Encoding,
    pub size: u64,
    pub stored: u64,
}

impl Row {
    /// Whether the row holds exactly `content` (which is under [`PACK_MAX`] bytes): what a
    /// put, which has the content at hand, checks instead of hashing.
    pub(crate) fn holds(&self, content: &[u8]) -> bool {
        match self.encoding {
            Encoding::Raw => self.data == content,
            Encoding::Zstd => zstd::bulk::decompress(&self.data, PACK_MAX as usize)
                .is_ok_and(|decoded| decoded == content),
        }
    }
}

impl Pack {
    /// A handle on the pack at `path`; nothing is opened until it is used.
    pub(crate) fn new(path: PathBuf) -> Pack {
        let shared = Shared {
            path: path.clone(),
            conn: None,
            named: None,
            deferred: Deferred::default(),
            notify: Notify::default(),
            healed: Vec::new(),
        };
        Pack {
            path,
            shared: Arc::new(Mutex::new(shared)),
        }
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Pack {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `f` on the connection, opening it first if need be. Without `create`, a store that
    /// has no pack yet answers `None` rather than getting an empty one. A pack found damaged
    /// is healed (see [`Pack::heal`]) and `f` run once more.
    fn with<T>(
        &self,
        create: bool,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        self.with_deferred(create, |conn, _| f(conn))
    }

    /// `digest`'s row, if the pack holds it.
    pub(crate) fn get(&self, digest: &Digest) -> Result<Option<Row>, StoreError> {
        self.row(digest, false)
    }

    /// Like [`Pack::get`], but opens (creating) the pack: a put follows when this finds
    /// nothing.
    pub(crate) fn find(&self, digest: &Digest) -> Result<Option<Row>, StoreError> {
        self.row(digest, true)
    }

    fn row(&self, digest: &Digest, create: bool) -> Result<Option<Row>, StoreError> {
        if let Some(row) = self.deferred_row(digest) {
            return Ok(Some(row));
        }
        let row = self.with(create, |conn| {
            conn.prepare_cached("SELECT encoding, data FROM blobs WHERE digest = ?1")?
                .query_row([digest.as_bytes().as_slice()], |r| {
                    Ok(Row {
                        encoding: encoding_at(r, 0)?,
                        data: r.get(1)?,
                    })
                })
                .optional()
        })?;
        Ok(row.flatten())
    }

    /// Inserts a row in its own transaction; false if the pack already held `digest` (a
    /// concurrent put of the same content came first).
    pub(crate) fn insert(
        &self,
        digest: &Digest,
        encoding: Encoding,
        size: u64,
        data: &[u8],
    ) -> Result<bool, StoreError> {
        // A batched handle of this process may hold it, deferred: then it is not new here.
        let changed = self.with_deferred(true, |conn, deferred| {
            if deferred.contains(digest) {
                return Ok(0);
            }
            conn.prepare_cached(
                "INSERT OR IGNORE INTO blobs (digest, encoding, size, data)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                digest.as_bytes().as_slice(),
                encoding_code(encoding),
                sql_size(size),
                data
            ])
        })?;
        Ok(changed == Some(1))
    }

    /// A deferred row of `digest`, if a batched handle put one.
    fn deferred_row(&self, digest: &Digest) -> Option<Row> {
        let shared = self.lock();
        let (encoding, _, data) = shared.deferred.rows.get(digest)?;
        Some(Row {
            encoding: *encoding,
            data: data.clone(),
        })
    }

    /// Keeps a row to insert at the next [`Pack::flush`], with the other rows put until then
    /// (one transaction instead of one each; see [`crate::durable`]). The caller has looked:
    /// neither the pack nor the deferred rows hold `digest`. Reads through this store see the
    /// row at once, other processes once it is flushed.
    /// False when another handle of this process stored or deferred `digest` since the caller
    /// looked.
    pub(crate) fn insert_deferred(
        &self,
        digest: &Digest,
        encoding: Encoding,
        size: u64,
        data: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let mut full = false;
        let mut data = Some(data);
        let added = self.with_deferred(true, |conn, deferred| {
            if deferred.contains(digest) {
                return Ok(false);
            }
            let stored = conn
                .prepare_cached("SELECT 1 FROM blobs WHERE digest = ?1")?
                .exists([digest.as_bytes().as_slice()])?;
            if stored {
                return Ok(false);
            }
            let data = data
                .take()
                .expect("inserted once: the closure returns right after");
            deferred.insert(*digest, (encoding, size, data));
            full = deferred.bytes >= DEFERRED_MAX;
            Ok(true)
        })?;
        if full {
            self.flush()?;
        }
        Ok(added == Some(true))
    }

    /// Like [`Pack::with`], with the deferred rows at hand under the same lock.
    fn with_deferred<T>(
        &self,
        create: bool,
        mut f: impl FnMut(&Connection, &mut Deferred) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        let mut shared = self.lock();
        match attempt(&mut shared, create, &mut f) {
            Err(StoreError::Pack { source, .. }) if crate::heal::is_damage(&source) => {
                self.heal(&mut shared, Damage::Sqlite(source))?;
                attempt(&mut shared, create, &mut f)
            }
            other => other,
        }
    }

    /// Inserts the deferred rows, in one transaction.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        let mut shared = self.lock();
        if shared.deferred.rows.is_empty() {
            return Ok(());
        }
        let rows = shared.deferred.take();
        drop(shared);
        let done = self.with(true, |conn| insert_all(conn, &rows));
        if done.is_err() {
            // Keep them for a later flush (or the drop), so nothing put is silently lost.
            let mut shared = self.lock();
            for (digest, row) in rows {
                shared.deferred.insert(digest, row);
            }
        }
        done.map(drop)
    }

    /// Deletes `digest`'s row; false if there was none.
    pub(crate) fn remove(&self, digest: &Digest) -> Result<bool, StoreError> {
        {
            if self.lock().deferred.remove(digest) {
                return Ok(true);
            }
        }
        let changed = self.with(false, |conn| {
            conn.prepare_cached("DELETE FROM blobs WHERE digest = ?1")?
                .execute([digest.as_bytes().as_slice()])
        })?;
        Ok(changed == Some(1))
    }

    /// Up to [`PAGE`] rows whose digests come after `after` (32 bytes, or empty for the
    /// start), in ascending digest order. Empty when there is no pack.
    pub(crate) fn page(&self, after: &[u8]) -> Result<Vec<Listed>, StoreError> {
        self.flush()?;
        let rows = self.with(false, |conn| {
            conn.prepare_cached(
                "SELECT digest, encoding, size, length(data) FROM blobs
                 WHERE digest > ?1 ORDER BY digest LIMIT ?2",
            )?
            .query_map(params![after, PAGE as i64], |r| {
                Ok(Listed {
                    digest: Digest::from_bytes(r.get(0)?),
                    encoding: encoding_at(r, 1)?,
                    size: count_at(r, 2)?,
                    stored: count_at(r, 3)?,
                })
            })?
            .collect()
        })?;
        Ok(rows.unwrap_or_default())
    }

    /// Whether a page of [`Pack::page`] this long may have more rows after it.
    pub(crate) fn page_is_full(len: usize) -> bool {
        len == PAGE
    }

    /// Decodes `row` (the row of `digest`) and checks it: the content, or
    /// [`StoreError::Corrupt`] after moving the row aside.
    pub(crate) fn content(&self, digest: &Digest, row: Row) -> Result<Vec<u8>, StoreError> {
        let corrupt = |reason| {
            self.quarantine(digest, row.encoding, &row.data);
            Err(StoreError::Corrupt {
                digest: *digest,
                reason,
            })
        };
        let decoded = match row.encoding {
            Encoding::Raw => None,
            // No content under PACK_MAX needs more room; a frame that claims more is damaged.
            Encoding::Zstd => match zstd::bulk::decompress(&row.data, PACK_MAX as usize) {
                Ok(content) => Some(content),
                Err(source) => return corrupt(Corruption::Undecodable { source }),
            },
        };
        let actual = Digest::of_bytes(decoded.as_deref().unwrap_or(&row.data));
        if actual != *digest {
            return corrupt(Corruption::Mismatch { actual });
        }
        Ok(decoded.unwrap_or(row.data))
    }

    /// Moves a row found corrupt aside: its stored bytes go to `<root>/corrupt/<hex>[.zst]`,
    /// then the row is deleted, if it still holds those bytes (another process may have
    /// moved it aside and stored a good copy meanwhile, which must stay). Best effort, as for
    /// blob files: the caller reports the corruption either way, and a row that stays is
    /// caught again next time; a row whose bytes could not be kept is not deleted.
    pub(crate) fn quarantine(&self, digest: &Digest, encoding: Encoding, data: &[u8]) {
        let Some(root) = self.path.parent() else {
            return;
        };
        let corrupt = root.join("corrupt");
        let suffix = match encoding {
            Encoding::Raw => "",
            Encoding::Zstd => ZSTD_SUFFIX,
        };
        let kept = fs::create_dir_all(&corrupt)
            .and_then(|()| fs::write(corrupt.join(format!("{digest}{suffix}")), data));
        if kept.is_err() {
            return;
        }
        let _ = self.with(false, |conn| {
            conn.prepare_cached("DELETE FROM blobs WHERE digest = ?1 AND data = ?2")?
                .execute(params![digest.as_bytes().as_slice(), data])
        });
    }

    /// Makes every committed row durable: fsyncs the WAL, and the store's directory when the
    /// WAL (or the database) is a file whose name this handle has not synced yet. See
    /// [`crate::durable`] for why that suffices.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        self.flush()?;
        let wal = crate::wal::path(&self.path);
        let write_err = |path: &Path, source| StoreError::Write {
            path: path.to_owned(),
            source,
        };
        let meta = match File::open(&wal) {
            Ok(file) => {
                file.sync_all().map_err(|e| write_err(&wal, e))?;
                file.metadata().map_err(|e| write_err(&wal, e))?
            }
            // Checkpointed into pack.db (which the checkpoint synced) and deleted.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::metadata(&self.path).map_err(|e| write_err(&self.path, e))?
            }
            Err(e) => return Err(write_err(&wal, e)),
        };
        let id = (meta.dev(), meta.ino());
        if self.lock().named == Some(id) {
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| write_err(dir, e))?;
        self.lock().named = Some(id);
        Ok(())
    }
}

/// One try of [`Pack::with_deferred`]'s `f`.
fn attempt<T>(
    shared: &mut Shared,
    create: bool,
    f: &mut impl FnMut(&Connection, &mut Deferred) -> rusqlite::Result<T>,
) -> Result<Option<T>, StoreError> {
    if shared.conn.is_none() {
        if !create && fs::symlink_metadata(&shared.path).is_err() {
            return Ok(None);
        }
        shared.conn = Some(connect(&shared.path)?);
    }
    let Shared {
        conn,
        deferred,
        path,
        ..
    } = shared;
    let conn = conn.as_ref().expect("opened above");
    f(conn, deferred)
        .map(Some)
        .map_err(|source| StoreError::Pack {
            path: path.clone(),
            source,
        })
}

fn encoding_code(encoding: Encoding) -> i64 {
    match encoding {
        Encoding::Raw => 0,
        Encoding::Zstd => 1,
    }
}

/// A size as SQLite stores it (a signed integer; no content comes near the limit).
fn sql_size(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// A size read back from column `idx`.
fn count_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(idx)?;
    u64::try_from(n).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, n))
}

fn encoding_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Encoding> {
    match row.get::<_, i64>(idx)? {
        0 => Ok(Encoding::Raw),
        1 => Ok(Encoding::Zstd),
        other => Err(rusqlite::Error::IntegralValueOutOfRange(idx, other)),
    }
}

/// Opens the pack at `path`, creating it (and its table) if need be.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let err = |source| StoreError::Pack {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(err)?;
    crate::wal::enable(&conn).map_err(err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    match version(&conn).map_err(err)? {
        PACK_VERSION => {}
        0 => create(&conn).map_err(err)?,
        found => {
            return Err(StoreError::PackVersion {
                path: path.to_owned(),
                found,
                supported: PACK_VERSION,
            })
        }
    }
    Ok(conn)
}

fn version(conn: &Connection) -> rusqlite::Result<i32> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Creates the table of a new pack, unless another process has done it meanwhile. A database
/// of version 0 that already has a `blobs` table is not ours, and the error says so.
fn create(conn: &Connection) -> rusqlite::Result<()> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    if version(&tx)? == 0 {
        tx.execute_batch(SCHEMA)?;
        tx.pragma_update(None, "user_version", PACK_VERSION)?;
    }
    tx.commit()
}
