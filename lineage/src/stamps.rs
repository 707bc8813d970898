//! File stamps: the stat of each file a run left, taken just after it reached the user's tree
//! (`undo_after`, schema version 6). Undo uses them to see an unchanged file without hashing
//! it, and to know the content of an earlier run's output that a new run replaces.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use shark_store::Digest;

use crate::error::query;
use crate::{Db, LineageError, RunId};

/// The identity and stat of a file a run left: equal stamps mean an unchanged file (a
/// change moves `ctime`, which no user can set back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileStamp {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds since the epoch.
    pub ctime_ns: i64,
}

impl Db {
    /// Records the stamps of files `run` left, just after they reached the user's tree.
    pub fn record_after_stamps(
        &mut self,
        run: RunId,
        stamps: &[(String, FileStamp)],
    ) -> Result<(), LineageError> {
        let mut insert = || -> rusqlite::Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO undo_after (run_id, path, dev, ino, size, mtime_ns,
                     ctime_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (path, s) in stamps {
                stmt.execute(params![
                    run.0,
                    path,
                    s.dev as i64,
                    s.ino as i64,
                    s.size as i64,
                    s.mtime_ns,
                    s.ctime_ns
                ])?;
            }
            drop(stmt);
            tx.commit()
        };
        insert().map_err(query("record the stamps of a run's files"))
    }

    /// The stamps recorded for `run`'s files, by path.
    pub fn after_stamps(&self, run: RunId) -> Result<HashMap<String, FileStamp>, LineageError> {
        let load = || -> rusqlite::Result<HashMap<String, FileStamp>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT path, dev, ino, size, mtime_ns, ctime_ns FROM undo_after WHERE run_id = ?1",
            )?;
            let rows = stmt.query_map([run.0], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    FileStamp {
                        dev: r.get::<_, i64>(1)? as u64,
                        ino: r.get::<_, i64>(2)? as u64,
                        size: r.get::<_, i64>(3)? as u64,
                        mtime_ns: r.get(4)?,
                        ctime_ns: r.get(5)?,
                    },
                ))
            })?;
            rows.collect()
        };
        load().map_err(query("load the stamps of a run's files"))
    }

    /// The content of the file at `path` whose stat is `stamp`, when that is exactly how the
    /// newest run that left a file there left it: that run's output digest, without hashing.
    pub fn stamped_digest(
        &self,
        path: &str,
        stamp: &FileStamp,
    ) -> Result<Option<Digest>, LineageError> {
        let find = || -> rusqlite::Result<Option<Digest>> {
            let newest = self
                .conn
                .prepare_cached(
                    "SELECT run_id, dev, ino, size, mtime_ns, ctime_ns FROM undo_after
                     WHERE path = ?1 ORDER BY run_id DESC LIMIT 1",
                )?
                .query_row([path], |r| {
                    let stamp = FileStamp {
                        dev: r.get::<_, i64>(1)? as u64,
                        ino: r.get::<_, i64>(2)? as u64,
                        size: r.get::<_, i64>(3)? as u64,
                        mtime_ns: r.get(4)?,
                        ctime_ns: r.get(5)?,
                    };
                    Ok((r.get::<_, i64>(0)?, stamp))
                })
                .optional()?;
            let Some((run, _)) = newest.filter(|(_, s)| s == stamp) else {
                return Ok(None);
            };
            let digest = self
                .conn
                .prepare_cached(
                    "SELECT o.digest FROM outputs o
                     WHERE o.run_id = (SELECT coalesce(reused_from, id) FROM runs WHERE id = ?1)
                       AND o.path = ?2 AND o.kind = 'file'
                     ORDER BY o.seq DESC LIMIT 1",
                )?
                .query_row(params![run, path], |r| {
                    r.get::<_, Option<crate::sql::DigestCol>>(0)
                })
                .optional()?;
            Ok(digest.flatten().map(|d| d.0))
        };
        find().map_err(query("look up a file's recorded stamp"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::NewRun;

    #[test]
    fn a_stamp_as_the_newest_run_left_it_gives_that_runs_digest() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("lineage.db")).unwrap();
        let d = Digest::of_bytes(b"k");
        let out = crate::Output {
            path: "/w/f".into(),
            kind: crate::OutputKind::File,
            digest: Some(Digest::of_bytes(b"content")),
            mode: Some(0o644),
            symlink_target: None,
        };
        let run = NewRun {
            outputs: vec![out],
            ..NewRun::new("c", "/w", d, d, SystemTime::now())
        };
        let id = db.record(&run).unwrap();
        let stamp = FileStamp {
            dev: 1,
            ino: 2,
            size: 7,
            mtime_ns: 10,
            ctime_ns: 11,
        };
        db.record_after_stamps(id, &[("/w/f".into(), stamp)])
            .unwrap();
        let got = db.stamped_digest("/w/f", &stamp).unwrap();
        assert_eq!(got, Some(Digest::of_bytes(b"content")));
        let touched = FileStamp {
            ctime_ns: 12,
            ..stamp
        };
        assert_eq!(db.stamped_digest("/w/f", &touched).unwrap(), None);
        assert_eq!(db.stamped_digest("/w/g", &stamp).unwrap(), None);
    }
}
