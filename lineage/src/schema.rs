//! The schema and its migrations.
//!
//! The schema version is SQLite's `user_version`. [`MIGRATIONS`] lists every step ever
//! released, in order: step `i` takes a database from version `i` to `i + 1`. Released steps
//! are never edited; a change to the schema is a new step at the end. Opening a database runs
//! the missing steps in one immediate transaction, so concurrent openers serialise and a
//! failed step leaves the file at its previous version.
//!
//! # Tables (version 1)
//!
//! - `runs`: one row per run or reuse. Digests are 32-byte BLOBs; `started_ns` is nanoseconds
//!   since the Unix epoch and `started` the same instant as RFC 3339 text; durations are
//!   nanoseconds; `argv` is a JSON array of strings. `AUTOINCREMENT` keeps ids unique forever.
//! - `inputs`, `outputs`, `processes`, `accesses`: one row per item, keyed by
//!   `(run_id, seq)` where `seq` is the item's position in the recorded list.
//!
//! Later versions are described at their steps ([`V2`] to [`V5`]).

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, TransactionBehavior};

use crate::LineageError;

/// Every migration step, oldest first.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// The schema version this build writes.
pub(crate) const CURRENT: u32 = MIGRATIONS.len() as u32;

const V1: &str = "
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    command     TEXT    NOT NULL,
    argv        TEXT    NOT NULL,
    cwd         TEXT    NOT NULL,
    env_digest  BLOB    NOT NULL CHECK (length(env_digest) = 32),
    weak_key    BLOB    NOT NULL CHECK (length(weak_key) = 32),
    started     TEXT    NOT NULL,
    started_ns  INTEGER NOT NULL,
    duration_ns INTEGER NOT NULL,
    exit_code   INTEGER,
    signal      INTEGER,
    user_ns     INTEGER NOT NULL,
    sys_ns      INTEGER NOT NULL,
    max_rss_kib INTEGER NOT NULL,
    stdout      BLOB CHECK (length(stdout) = 32),
    stderr      BLOB CHECK (length(stderr) = 32),
    reused_from INTEGER REFERENCES runs (id),
    reusable    INTEGER NOT NULL CHECK (reusable IN (0, 1)),
    network     INTEGER NOT NULL CHECK (network IN (0, 1)),
    reason      TEXT
);
CREATE INDEX runs_by_weak_key ON runs (weak_key, id);
CREATE INDEX runs_reused_from ON runs (reused_from) WHERE reused_from IS NOT NULL;

CREATE TABLE inputs (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    path   TEXT    NOT NULL,
    kind   TEXT    NOT NULL CHECK (kind IN ('file', 'dir', 'symlink', 'absent', 'stdin')),
    digest BLOB CHECK (length(digest) = 32),
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE INDEX inputs_by_path ON inputs (path);

CREATE TABLE outputs (
    run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    path           TEXT    NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('file', 'dir', 'symlink', 'deleted')),
    digest         BLOB CHECK (length(digest) = 32),
    mode           INTEGER,
    symlink_target TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE INDEX outputs_by_digest ON outputs (digest);
CREATE INDEX outputs_by_path_digest ON outputs (path, digest);

CREATE TABLE processes (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    pid    INTEGER NOT NULL,
    argv   TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE TABLE accesses (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    pid    INTEGER NOT NULL,
    path   TEXT    NOT NULL,
    kind   TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
";

/// Version 2: the shell state a line left behind (variables, functions, options, cwd), so a
/// reused line changes the interactive shell's state exactly as running it did.
const V2: &str = "
ALTER TABLE runs ADD COLUMN shell_state BLOB CHECK (length(shell_state) = 32);
";

/// Version 3: the permission bits of executed inputs (a program made non-executable must not
/// be "reused" as if it still ran).
const V3: &str = "
ALTER TABLE inputs ADD COLUMN mode INTEGER;
";

/// The directories whose files `inputs_by_user_path` leaves out, as the index's `WHERE`
/// terms. Released with version 4 and never edited: the query that uses the index must repeat
/// these terms word for word (SQLite uses a partial index only for a query whose `WHERE`
/// implies the index's), so a change is a new migration with a new index.
macro_rules! user_path_terms {
    () => {
        "path NOT GLOB '/usr/*' AND path NOT GLOB '/lib/*' AND path NOT GLOB '/lib32/*' \
         AND path NOT GLOB '/lib64/*' AND path NOT GLOB '/bin/*' AND path NOT GLOB '/sbin/*' \
         AND path NOT GLOB '/etc/*' AND path NOT GLOB '/proc/*' AND path NOT GLOB '/sys/*' \
         AND path NOT GLOB '/dev/*'"
    };
}

/// The `WHERE` terms of `inputs_by_user_path` (see [`user_path_terms`]).
pub(crate) const USER_PATH_TERMS: &str = user_path_terms!();

/// The directories left out of `inputs_by_user_path`, in the order of [`USER_PATH_TERMS`].
pub(crate) const UNINDEXED_DIRS: [&str; 10] = [
    "/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev",
];

/// Version 4: the path index of `inputs` leaves out system files. A command reads dozens to
/// hundreds of shared libraries, locale and configuration files, each at its own place in a
/// path index, so recording one `gdalinfo` dirtied some 250 index pages (a megabyte of WAL and,
/// past [`WAL_LIMIT`], a checkpoint with its fsyncs, per run); that made recording cost more
/// than running. The index serves only "which runs read this path", asked of user files;
/// for a system file that question scans the table.
const V4: &str = concat!(
    "DROP INDEX inputs_by_path;\n",
    "CREATE INDEX inputs_by_user_path ON inputs (path) WHERE ",
    user_path_terms!(),
    ";\n"
);

/// Version 5: the ordered access model.
///
/// - `inputs` gains the kinds `notdir` (a path replaced without being read: only "no directory
///   in the way" was relied on), `special` (fifos, sockets, devices) and `xattrs` (extended
///   attributes read), the names a listing leaves out (`exclude`, a JSON array: what the run
///   itself created or removed before listing) and `as_left` (the input also holds when the
///   path is as the run's unit of work left it: 1 what is at it, 2 its listing). SQLite cannot widen a `CHECK`, so the table
///   is rebuilt, with its partial index.
/// - `runs` gains `unit_id` (the first run of the unit of work the run belongs to; NULL for
///   the first itself), `stdin_consumed` (bytes of a file on stdin the run consumed) and
///   `unreusable` (why a successful run may never be reused).
/// - `unit_states` holds, per unit of work, the state its latest run left each tracked path
///   in: `kind` is `listing` (digest of the whole listing) or an input kind.
const V5: &str = concat!(
    "CREATE TABLE inputs_v5 (
    run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    path    TEXT    NOT NULL,
    kind    TEXT    NOT NULL CHECK (kind IN ('file', 'dir', 'symlink', 'absent', 'stdin',
                                             'notdir', 'special', 'xattrs')),
    digest  BLOB CHECK (length(digest) = 32),
    mode    INTEGER,
    exclude TEXT,
    as_left INTEGER NOT NULL DEFAULT 0 CHECK (as_left IN (0, 1, 2)),
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
INSERT INTO inputs_v5 (run_id, seq, path, kind, digest, mode)
    SELECT run_id, seq, path, kind, digest, mode FROM inputs;
DROP TABLE inputs;
ALTER TABLE inputs_v5 RENAME TO inputs;
",
    "CREATE INDEX inputs_by_user_path ON inputs (path) WHERE ",
    user_path_terms!(),
    ";
ALTER TABLE runs ADD COLUMN unit_id INTEGER REFERENCES runs (id) ON DELETE SET NULL;
ALTER TABLE runs ADD COLUMN stdin_consumed INTEGER;
ALTER TABLE runs ADD COLUMN unreusable TEXT;
CREATE INDEX runs_by_unit ON runs (unit_id) WHERE unit_id IS NOT NULL;
CREATE TABLE unit_states (
    unit_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    path    TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    digest  BLOB CHECK (length(digest) = 32),
    PRIMARY KEY (unit_id, path, kind)
) WITHOUT ROWID;
"
);

/// Version 6: undo data. `undo_runs` has a row for every run whose prior state was kept (the
/// run it undoes, if it is an undo; the store bytes kept only for undo; whether the data was
/// dropped to stay within the budget; how many paths it changed). `undo_prior` lists what each
/// changed path held before the run, in the order to restore it: content in the store
/// (`digest`) or in a filesystem snapshot (`snapshot`). `undo_snapshots` lists the snapshots
/// taken before runs, by backend, the filesystem's path and the snapshot's name. `undo_after`
/// holds the stat of each file a run left, taken just after it reached the user's tree, so
/// that undo sees an unchanged file without hashing it.
const V6: &str = "
CREATE TABLE undo_runs (
    run_id     INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    undoes     INTEGER REFERENCES runs (id),
    entries    INTEGER NOT NULL,
    kept_bytes INTEGER NOT NULL,
    dropped    INTEGER NOT NULL DEFAULT 0 CHECK (dropped IN (0, 1))
);
CREATE TABLE undo_prior (
    run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    path           TEXT    NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('file', 'dir', 'symlink', 'absent')),
    digest         BLOB CHECK (length(digest) = 32),
    mode           INTEGER,
    symlink_target TEXT,
    snapshot       TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE INDEX undo_prior_by_digest ON undo_prior (digest) WHERE digest IS NOT NULL;
CREATE TABLE undo_after (
    run_id   INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    path     TEXT    NOT NULL,
    dev      INTEGER NOT NULL,
    ino      INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    PRIMARY KEY (run_id, path)
) WITHOUT ROWID;
CREATE INDEX undo_after_by_path ON undo_after (path, run_id);
CREATE TABLE undo_snapshots (
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    backend    TEXT    NOT NULL CHECK (backend IN ('zfs', 'btrfs')),
    filesystem TEXT    NOT NULL,
    mountpoint TEXT    NOT NULL,
    created_ns INTEGER NOT NULL,
    pruned     INTEGER NOT NULL DEFAULT 0 CHECK (pruned IN (0, 1)),
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
";

/// Sets the connection's pragmas. WAL lets readers and one writer work at once; the busy
/// timeout makes concurrent writers wait for each other instead of failing.
///
/// Closing the last connection does not checkpoint: by default SQLite then copies the WAL
/// into the database, fsyncs both and deletes the WAL, and the next process creates a new
/// one and fsyncs its directory. Each shark command is its own short process, so that cost
/// (about 10 ms on a virtual disk) was paid by every command, reuses included. The WAL now
/// stays between processes, and [`trim_wal`] empties it once it has grown.
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    enable_wal(conn)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// The WAL size past which closing a connection checkpoints it. A process that opens the
/// database first rebuilds SQLite's WAL index by reading every frame (the index lives in
/// shared memory that does not outlive the last connection), and it cannot tell which
/// frames an earlier process already copied into the database, so an unbounded WAL would
/// make every open slower and every automatic checkpoint copy it all again.
const WAL_LIMIT: u64 = 1 << 20;

/// Checkpoints the WAL and truncates it to nothing when it has grown past [`WAL_LIMIT`]:
/// the fsyncs of a checkpoint, once per many runs. Best effort, for a connection about to
/// close: when another connection is busy the WAL is left for a later close.
pub(crate) fn trim_wal(conn: &Connection) {
    let Some(db) = conn.path().filter(|p| !p.is_empty()) else {
        return;
    };
    let wal_len = std::fs::metadata(format!("{db}-wal")).map_or(0, |m| m.len());
    if wal_len <= WAL_LIMIT {
        return;
    }
    // Never wait at exit for another process: a busy checkpoint is simply skipped.
    if conn.busy_timeout(Duration::ZERO).is_ok() {
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

/// How long a connection waits for another one's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Switches the file to WAL mode (a persistent setting, so usually already done).
/// SQLite does not apply the busy timeout to this switch: when several processes open a new
/// database at once, the losers get `SQLITE_BUSY` at once, so retry until the timeout.
fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        let mode = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0));
        match mode {
            Ok(_) => return Ok(()),
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

/// Brings the schema up to [`CURRENT`], refusing a database from a newer shark.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), LineageError> {
    migrate_with(conn, path, MIGRATIONS)
}

fn migrate_with(conn: &mut Connection, path: &Path, steps: &[&str]) -> Result<(), LineageError> {
    let open_err = |source| LineageError::Open {
        path: path.to_owned(),
        source,
    };
    let found = user_version(conn).map_err(open_err)?;
    if found == steps.len() as i64 {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    // Another process may have migrated between the first look and the lock.
    let found = user_version(&tx).map_err(open_err)?;
    let supported = steps.len() as u32;
    if found > i64::from(supported) || found < 0 {
        return Err(LineageError::NewerSchema {
            path: path.to_owned(),
            found,
            supported,
        });
    }
    for (version, step) in (1..).zip(steps).skip(found as usize) {
        let migrate_err = |source| LineageError::Migrate {
            path: path.to_owned(),
            version,
            source,
        };
        tx.execute_batch(step).map_err(migrate_err)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(migrate_err)?;
    }
    tx.commit().map_err(|source| LineageError::Migrate {
        path: path.to_owned(),
        version: supported,
        source,
    })
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        configure(&conn).unwrap();
        conn
    }

    const V2: &str = "ALTER TABLE runs ADD COLUMN host TEXT;";

    #[test]
    fn the_partial_index_terms_name_the_unindexed_dirs() {
        let terms: Vec<String> = UNINDEXED_DIRS
            .iter()
            .map(|d| format!("path NOT GLOB '{d}/*'"))
            .collect();
        assert_eq!(USER_PATH_TERMS, terms.join(" AND "));
    }

    #[test]
    fn an_older_database_gets_only_the_missing_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut conn = open(&path);
        migrate_with(&mut conn, &path, &[V1]).unwrap();
        // Re-running V1 would fail ("table runs already exists"): only V2 may run.
        migrate_with(&mut conn, &path, &[V1, V2]).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 2);
        conn.execute_batch("SELECT host FROM runs").unwrap();
    }

    #[test]
    fn version_5_keeps_the_inputs_of_version_4_and_takes_the_new_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut conn = open(&path);
        migrate_with(&mut conn, &path, &MIGRATIONS[..4]).unwrap();
        let digest = [7u8; 32];
        conn.execute_batch(
            "INSERT INTO runs (command, argv, cwd, env_digest, weak_key, started, started_ns,
                 duration_ns, user_ns, sys_ns, max_rss_kib, reusable, network)
             VALUES ('cat in', '[]', '/w', zeroblob(32), zeroblob(32), 't', 0, 0, 0, 0, 0, 1, 0);",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO inputs (run_id, seq, path, kind, digest, mode)
             VALUES (1, 0, '/w/in', 'file', ?1, 420)",
            [digest.as_slice()],
        )
        .unwrap();
        migrate_with(&mut conn, &path, MIGRATIONS).unwrap();
        let row: (String, String, Vec<u8>, i64, Option<String>, i64) = conn
            .query_row(
                "SELECT path, kind, digest, mode, exclude, as_left FROM inputs WHERE run_id = 1",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(
            row,
            ("/w/in".into(), "file".into(), digest.to_vec(), 420, None, 0)
        );
        for (seq, kind) in [(1, "notdir"), (2, "special"), (3, "xattrs")] {
            conn.execute(
                "INSERT INTO inputs (run_id, seq, path, kind) VALUES (1, ?1, '/w/x', ?2)",
                rusqlite::params![seq, kind],
            )
            .unwrap();
        }
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT run_id FROM inputs WHERE path = '/w/in' AND {USER_PATH_TERMS}"
        );
        let plan: String = conn.query_row(&sql, [], |r| r.get(3)).unwrap();
        assert!(plan.contains("inputs_by_user_path"), "{plan}");
    }

    #[test]
    fn a_failing_step_leaves_the_previous_version_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut conn = open(&path);
        let broken = "CREATE TABLE extra (x); THIS IS NOT SQL;";
        let err = migrate_with(&mut conn, &path, &[V1, V2, broken]).unwrap_err();
        assert!(
            matches!(&err, LineageError::Migrate { version: 3, path: p, .. } if p == &path),
            "{err:?}"
        );
        // Steps 1 and 2 ran in the same transaction as the failed one: all rolled back.
        assert_eq!(user_version(&conn).unwrap(), 0);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
        migrate_with(&mut conn, &path, &[V1, V2]).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 2);
    }
}
