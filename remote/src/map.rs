//! [`DigestMap`]: what shark remembers about the remote, in `remote.db` in the shark home.
//!
//! - `digests`: a blob's BLAKE3 digest → its name under another digest function (SHA-256),
//!   so that content is hashed for the server once, not at every upload.
//! - `run_keys`: a recorded run → its weak key and the machine's locations when it ran, so
//!   that `shark store push` can share a run recorded while the server was unreachable or
//!   uploads were off.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use shark_store::Digest;

use crate::digest::{DigestKind, RemoteDigest};
use crate::key::WeakKey;
use crate::RemoteError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS digests (
    kind   TEXT    NOT NULL,
    blake3 BLOB    NOT NULL CHECK (length(blake3) = 32),
    hash   TEXT    NOT NULL,
    size   INTEGER NOT NULL,
    PRIMARY KEY (kind, blake3)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_keys (
    run_id INTEGER PRIMARY KEY,
    key    TEXT NOT NULL
);
";

/// The weak key of a recorded run and where it ran, as `run_keys` keeps them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunKey {
    /// The weak key.
    pub weak: WeakKey,
    /// The working directory, `HOME`, `TMPDIR` and shark home it ran with.
    pub locations: [Option<String>; 4],
}

/// An open `remote.db`.
#[derive(Debug)]
pub struct DigestMap {
    conn: Connection,
    path: PathBuf,
}

impl DigestMap {
    /// Opens (creating) the map at `path`.
    pub fn open(path: &Path) -> Result<DigestMap, RemoteError> {
        let err = |source| RemoteError::Map {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(DigestMap {
            conn,
            path: path.to_owned(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> RemoteError {
        RemoteError::Map {
            path: self.path.clone(),
            source,
        }
    }

    /// The remote name of `local` under `kind`, if known. Under BLAKE3 it is `local` itself,
    /// but the size still has to come from somewhere: the caller knows it.
    pub fn get(
        &self,
        kind: DigestKind,
        local: &Digest,
    ) -> Result<Option<RemoteDigest>, RemoteError> {
        self.conn
            .prepare_cached("SELECT hash, size FROM digests WHERE kind = ?1 AND blake3 = ?2")
            .and_then(|mut s| {
                s.query_row(params![kind.name(), local.as_bytes()], |r| {
                    Ok(RemoteDigest {
                        hash: r.get(0)?,
                        size: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    /// Remembers that `local` is `remote` under `kind`.
    pub fn put(
        &self,
        kind: DigestKind,
        local: &Digest,
        remote: &RemoteDigest,
    ) -> Result<(), RemoteError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO digests (kind, blake3, hash, size) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                let size = i64::try_from(remote.size).unwrap_or(i64::MAX);
                s.execute(params![kind.name(), local.as_bytes(), remote.hash, size])
            })
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Remembers the weak key of run `run`.
    pub fn put_run_key(&self, run: i64, key: &RunKey) -> Result<(), RemoteError> {
        let text = serde_json::to_string(key).expect("run keys always serialize");
        self.conn
            .execute(
                "INSERT OR REPLACE INTO run_keys (run_id, key) VALUES (?1, ?2)",
                params![run, text],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The weak key of run `run`, if it was remembered.
    pub fn run_key(&self, run: i64) -> Result<Option<RunKey>, RemoteError> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT key FROM run_keys WHERE run_id = ?1", [run], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_digests_per_function_and_run_keys() {
        let dir = tempfile::tempdir().unwrap();
        let map = DigestMap::open(&dir.path().join("remote.db")).unwrap();
        let local = Digest::of_bytes(b"abc");
        assert_eq!(map.get(DigestKind::Sha256, &local).unwrap(), None);
        let sha = DigestKind::Sha256.of_bytes(b"abc");
        map.put(DigestKind::Sha256, &local, &sha).unwrap();
        assert_eq!(map.get(DigestKind::Sha256, &local).unwrap(), Some(sha));
        assert_eq!(map.get(DigestKind::Blake3, &local).unwrap(), None);
        let key = RunKey {
            weak: WeakKey {
                argv: vec!["true".into()],
                env: vec![],
                properties: vec![],
            },
            locations: [Some("/w".into()), None, None, None],
        };
        map.put_run_key(7, &key).unwrap();
        drop(map);
        let map = DigestMap::open(&dir.path().join("remote.db")).unwrap();
        assert_eq!(map.run_key(7).unwrap(), Some(key));
        assert_eq!(map.run_key(8).unwrap(), None);
    }
}
