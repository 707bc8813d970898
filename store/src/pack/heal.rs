//! Healing a damaged pack: a copy kept, the pack emptied in place, and every row that can
//! still be read back from the copy, and still holds the content its digest names, put back.
//!
//! Rows are found three ways in the copy, each as far as the damage lets it go: the digest
//! index in order, the table in rowid order, and the table's last rowid. Then every rowid up
//! to the largest seen is looked up on its own, so that a damaged page costs the rows on it,
//! not every row after it. A row comes back only if its content hashes to its digest; the
//! digests of rows that do not come back (known from the index or the row itself) are the
//! blobs lost. Processes heal one at a time (an exclusive `flock` on `pack.db.heal-lock`),
//! and one that finds the pack sound once it has the lock leaves it alone: another healed it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{connect, encoding_at, encoding_code, sql_size, Pack, Shared, PACK_MAX};
use crate::blob::Encoding;
use crate::heal::{self, Damage, Healed, Notify, OnHeal, Salvage};
use crate::{Digest, StoreError};

/// Rows put back per transaction.
const BATCH: usize = 1000;

impl Pack {
    /// Sets who to tell when the pack is healed.
    pub(crate) fn on_heal(&self, notify: OnHeal) {
        self.lock().notify = Notify(Some(notify));
    }

    /// How many heals this handle has made.
    pub(crate) fn heals(&self) -> usize {
        self.lock().healed.len()
    }

    /// The heals this handle made after the first `since`.
    pub(crate) fn heals_since(&self, since: usize) -> Vec<Arc<Healed>> {
        self.lock().healed.get(since..).unwrap_or_default().to_vec()
    }

    /// Runs SQLite's integrity check on the pack, and heals it if it is damaged.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if let Some(Some(damage)) = self.with(false, crate::heal::check)? {
            self.heal(&mut self.lock(), damage)?;
        }
        Ok(())
    }

    /// Heals the pack found damaged (`damage`): keeps a copy of it beside it, empties it in
    /// place, puts back what can be recovered from the copy, and reports that to the
    /// store's `on_heal` callback. A pack that cannot be copied aside is left as it is (and
    /// the error says why): its rows would otherwise be lost for good.
    pub(super) fn heal(&self, shared: &mut Shared, damage: Damage) -> Result<(), StoreError> {
        let heal_err = |source| StoreError::Heal {
            path: self.path.clone(),
            source,
        };
        // Held by no one here while waiting: a heal elsewhere may need the file to itself.
        shared.conn = None;
        let _lock = lock(&self.path).map_err(heal_err)?;
        let sound = Connection::open(&self.path)
            .and_then(|raw| {
                raw.busy_timeout(super::BUSY_TIMEOUT)?;
                heal::check(&raw)
            })
            .map_err(|e| self.err(e))?;
        if sound.is_none() {
            return Ok(()); // healed by another process while this one waited for the lock
        }
        let copy = heal::keep_copy(&self.path).map_err(heal_err)?;
        heal::start_afresh(&self.path, heal::RESET_WAIT).map_err(heal_err)?;
        let conn = connect(&self.path)?;
        let salvage = salvage(&copy, &conn);
        shared.conn = Some(conn);
        let healed = Arc::new(Healed {
            path: self.path.clone(),
            damage,
            copy: Ok(copy),
            salvage: Some(salvage),
        });
        shared.notify.send(&healed);
        shared.healed.push(healed);
        Ok(())
    }
}

/// Takes the exclusive lock that serialises heals of the pack at `pack`.
fn lock(pack: &Path) -> std::io::Result<File> {
    let mut name = pack.as_os_str().to_owned();
    name.push(".heal-lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PathBuf::from(name))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
    Ok(file)
}

/// What the damaged copy lets us know about its rows.
#[derive(Default)]
struct Found {
    /// Digests by rowid, from the index or from rows read.
    digests: HashMap<i64, Digest>,
    /// Rowids listed by a scan of the table.
    scanned: BTreeSet<i64>,
    /// Whether the scan of the index (which lists every row's digest) reached its end.
    index_whole: bool,
    /// Whether the scan of the table reached its end.
    table_whole: bool,
    /// The largest rowid seen.
    last: i64,
}

/// Puts every intact row of the damaged pack at `copy` into `into`.
fn salvage(copy: &Path, into: &Connection) -> Salvage {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(from) = Connection::open_with_flags(copy, flags) else {
        return Salvage::default();
    };
    let mut found = survey(&from);
    let mut recovered: HashSet<i64> = HashSet::new();
    let mut batch = Vec::with_capacity(BATCH);
    for rowid in 1..=found.last {
        let Some((digest, encoding, data)) = read_row(&from, rowid) else {
            continue;
        };
        found.digests.insert(rowid, digest);
        if let Some(size) = intact(&digest, encoding, &data) {
            batch.push((rowid, digest, encoding, size, data));
        }
        if batch.len() == BATCH {
            recovered.extend(put_back(into, &mut batch));
        }
    }
    recovered.extend(put_back(into, &mut batch));
    drop(from);
    let mut shm = copy.as_os_str().to_owned();
    shm.push("-shm");
    let _ = fs::remove_file(PathBuf::from(shm));
    let mut lost: Vec<Digest> = found
        .digests
        .iter()
        .filter(|(rowid, _)| !recovered.contains(rowid))
        .map(|(_, digest)| *digest)
        .collect();
    lost.sort();
    lost.dedup();
    let accounted = found
        .scanned
        .iter()
        .all(|r| recovered.contains(r) || found.digests.contains_key(r));
    Salvage {
        recovered: recovered.len() as u64,
        lost,
        complete: found.index_whole || (found.table_whole && accounted),
    }
}

/// Lists what the damaged pack's index and table still say, each as far as it can be read.
fn survey(from: &Connection) -> Found {
    let mut found = Found::default();
    let index = collect(
        from,
        "SELECT rowid, digest FROM blobs INDEXED BY sqlite_autoindex_blobs_1 ORDER BY digest",
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
    );
    for (rowid, bytes) in &index.0 {
        if let Ok(bytes) = <[u8; 32]>::try_from(bytes.as_slice()) {
            found.digests.insert(*rowid, Digest::from_bytes(bytes));
        }
    }
    let table = collect(from, "SELECT rowid FROM blobs ORDER BY rowid", |r| {
        r.get::<_, i64>(0)
    });
    found.scanned.extend(&table.0);
    let last = from
        .query_row("SELECT max(rowid) FROM blobs", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .ok()
        .flatten();
    (found.index_whole, found.table_whole) = (index.1, table.1);
    found.last = [last, table.0.last().copied()]
        .into_iter()
        .flatten()
        .chain(index.0.iter().map(|(rowid, _)| *rowid))
        .max()
        .unwrap_or(0);
    found
}

/// The rows of `sql` up to the first error, and whether there was none.
fn collect<T>(
    conn: &Connection,
    sql: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> (Vec<T>, bool) {
    let Ok(mut stmt) = conn.prepare(sql) else {
        return (Vec::new(), false);
    };
    let Ok(rows) = stmt.query_map([], row) else {
        return (Vec::new(), false);
    };
    let mut out = Vec::new();
    for r in rows {
        match r {
            Ok(v) => out.push(v),
            Err(_) => return (out, false),
        }
    }
    (out, true)
}

/// The row `rowid`, if it can be read and names a digest.
fn read_row(from: &Connection, rowid: i64) -> Option<(Digest, Encoding, Vec<u8>)> {
    let row = from
        .prepare_cached("SELECT digest, encoding, data FROM blobs WHERE rowid = ?1")
        .ok()?
        .query_row([rowid], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, encoding_at(r, 1)?, r.get(2)?))
        })
        .optional()
        .ok()??;
    let digest = Digest::from_bytes(<[u8; 32]>::try_from(row.0.as_slice()).ok()?);
    Some((digest, row.1, row.2))
}

/// The content size of a stored row whose content matches `digest`; `None` if it does not.
fn intact(digest: &Digest, encoding: Encoding, data: &[u8]) -> Option<u64> {
    let decoded;
    let content = match encoding {
        Encoding::Raw => data,
        Encoding::Zstd => {
            decoded = zstd::bulk::decompress(data, PACK_MAX as usize).ok()?;
            &decoded
        }
    };
    (Digest::of_bytes(content) == *digest).then_some(content.len() as u64)
}

/// Inserts `batch` into the pack in one transaction and empties it; the rowids (in the
/// copy) of the rows now in the pack.
fn put_back(into: &Connection, batch: &mut Vec<(i64, Digest, Encoding, u64, Vec<u8>)>) -> Vec<i64> {
    if batch.is_empty() {
        return Vec::new();
    }
    let rows = std::mem::take(batch);
    let inserted = (|| -> rusqlite::Result<()> {
        let tx = into.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO blobs (digest, encoding, size, data)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (_, digest, encoding, size, data) in &rows {
                stmt.execute(params![
                    digest.as_bytes().as_slice(),
                    encoding_code(*encoding),
                    sql_size(*size),
                    data
                ])?;
            }
        }
        tx.commit()
    })();
    match inserted {
        Ok(()) => rows.into_iter().map(|(rowid, ..)| rowid).collect(),
        Err(_) => Vec::new(),
    }
}
