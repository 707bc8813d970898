//! Which store blobs the recorded runs still need, for garbage collection.

use std::collections::HashSet;
use std::time::SystemTime;

use shark_store::Digest;

use crate::error::query;
use crate::sql::DigestCol;
use crate::time::to_nanos;
use crate::{Db, LineageError, RunId};

/// Every digest a kept run refers to, and the prior content kept for undo (within its budget,
/// whatever the cutoff). A run is kept when it started at or after `?1`, or when a kept reuse
/// row reused it (restoring the reuse needs the original's outputs).
const REFERENCED: &str = "
WITH kept (id) AS (
    SELECT id FROM runs WHERE started_ns >= ?1
    UNION
    SELECT reused_from FROM runs WHERE started_ns >= ?1 AND reused_from IS NOT NULL
)
SELECT digest FROM outputs
    WHERE run_id IN kept AND kind IN ('file', 'symlink') AND digest IS NOT NULL
UNION SELECT digest FROM inputs
    WHERE run_id IN kept AND kind IN ('file', 'stdin') AND digest IS NOT NULL
UNION SELECT stdout FROM runs WHERE id IN kept AND stdout IS NOT NULL
UNION SELECT stderr FROM runs WHERE id IN kept AND stderr IS NOT NULL
UNION SELECT shell_state FROM runs WHERE id IN kept AND shell_state IS NOT NULL
UNION SELECT env_digest FROM runs WHERE id IN kept
UNION SELECT digest FROM undo_prior WHERE digest IS NOT NULL";

impl Db {
    /// The digests of every blob that runs started at or after `since` (all runs when
    /// `None`) refer to: their file outputs, file and stdin inputs, stdout and stderr,
    /// environment and shell state, and those of the runs they reused. Symlink digests are
    /// included although the store may hold no blob for them. Garbage collection must keep
    /// every blob in this set.
    pub fn referenced_digests(
        &self,
        since: Option<SystemTime>,
    ) -> Result<HashSet<Digest>, LineageError> {
        let since = since.map_or(i64::MIN, to_nanos);
        let collect = || -> rusqlite::Result<HashSet<Digest>> {
            let mut stmt = self.conn.prepare_cached(REFERENCED)?;
            let rows = stmt.query_map([since], |row| row.get::<_, DigestCol>(0))?;
            rows.map(|r| r.map(|c| c.0)).collect()
        };
        collect().map_err(query("list the blobs runs refer to"))
    }
}

/// The blobs a reuse of each reusable run restores or replays: its file outputs, its
/// non-empty streams (the empty digest `?1` is never stored for a stream) and its shell state.
const NEEDED: &str = "
SELECT o.digest, o.run_id FROM outputs o JOIN runs r ON r.id = o.run_id
    WHERE r.reusable = 1 AND o.kind = 'file' AND o.digest IS NOT NULL
UNION SELECT stdout, id FROM runs WHERE reusable = 1 AND stdout IS NOT NULL AND stdout != ?1
UNION SELECT stderr, id FROM runs WHERE reusable = 1 AND stderr IS NOT NULL AND stderr != ?1
UNION SELECT shell_state, id FROM runs WHERE reusable = 1 AND shell_state IS NOT NULL
ORDER BY 2, 1";

impl Db {
    /// Every blob that reusing a reusable run needs, with that run, by run: what must be in
    /// the store for the run to be reused rather than run again (`shark store verify` checks
    /// it).
    pub fn needed_blobs(&self) -> Result<Vec<(Digest, RunId)>, LineageError> {
        let empty = Digest::of_bytes(b"");
        let collect = || -> rusqlite::Result<Vec<(Digest, RunId)>> {
            let mut stmt = self.conn.prepare_cached(NEEDED)?;
            let rows = stmt.query_map([empty.as_bytes().as_slice()], |row| {
                Ok((row.get::<_, DigestCol>(0)?.0, RunId(row.get(1)?)))
            })?;
            rows.collect()
        };
        collect().map_err(query("list the blobs reusable runs need"))
    }
}

/// Runs that are not kept at cutoff `?1` (see [`REFERENCED`]) but could still be reused.
const RETIRE: &str = "
UPDATE runs SET reusable = 0
WHERE reusable = 1 AND started_ns < ?1
  AND id NOT IN (SELECT reused_from FROM runs WHERE started_ns >= ?1 AND reused_from IS NOT NULL)";

impl Db {
    /// Makes runs that started before `cutoff` (and that no later reuse refers to) no longer
    /// reusable, so that garbage collection may drop their blobs; their records stay for
    /// lineage. Returns how many runs were retired.
    pub fn retire_before(&mut self, cutoff: SystemTime) -> Result<usize, LineageError> {
        self.conn
            .execute(RETIRE, [to_nanos(cutoff)])
            .map_err(query("retire old runs"))
    }
}
