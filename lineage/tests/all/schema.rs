//! Opening, migrating and refusing databases.

use rusqlite::Connection;
use shark_lineage::{Db, LineageError, NewRun, SCHEMA_VERSION};

use crate::common::{fresh, ok_run};

fn user_version(path: &std::path::Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn a_new_database_gets_the_current_schema_in_wal_mode() {
    let (_dir, path, db) = fresh();
    drop(db);
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "accesses",
            "inputs",
            "outputs",
            "processes",
            "runs",
            "sqlite_sequence",
            "undo_after",
            "undo_prior",
            "undo_runs",
            "undo_snapshots",
            "unit_states"
        ]
    );
}

#[test]
fn reopening_keeps_the_runs_and_the_version() {
    let (_dir, path, mut db) = fresh();
    let id = db.record(&ok_run("make", "k", 1)).unwrap();
    drop(db);
    for _ in 0..3 {
        let db = Db::open(&path).unwrap();
        assert_eq!(db.run(id).unwrap().command, "make");
        assert_eq!(db.stats().unwrap().runs, 1);
    }
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
}

#[test]
fn a_database_from_a_newer_shark_is_refused_by_name() {
    let (_dir, path, db) = fresh();
    drop(db);
    let newer = i64::from(SCHEMA_VERSION) + 7;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let err = Db::open(&path).unwrap_err();
    match &err {
        LineageError::NewerSchema {
            path: p,
            found,
            supported,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*found, newer);
            assert_eq!(*supported, SCHEMA_VERSION);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains(&format!("schema version {newer}")), "{text}");
    assert!(text.contains(&format!("up to {SCHEMA_VERSION}")), "{text}");
    // The refusal changed nothing.
    assert_eq!(user_version(&path), newer);
}

#[test]
fn a_file_that_is_not_a_database_is_an_open_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lineage.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let err = Db::open(&path).unwrap_err();
    assert!(
        matches!(&err, LineageError::Open { path: p, .. } if p == &path),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some());
}

/// Closing does not checkpoint: the WAL (with the runs in it) outlives the process, so the
/// next short-lived shark process neither recreates it nor waits for a checkpoint's fsyncs.
#[test]
fn closing_leaves_the_wal_for_the_next_process() {
    let (_dir, path, mut db) = fresh();
    let id = db.record(&ok_run("echo a", "k", 1)).unwrap();
    drop(db);
    let wal = path.with_extension("db-wal");
    let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(len > 0, "{} is gone or empty after close", wal.display());
    let db = Db::open(&path).unwrap();
    assert_eq!(db.run(id).unwrap().command, "echo a");
    assert_eq!(db.integrity_check().unwrap(), ["ok"]);
}

/// A WAL that has grown is checkpointed and emptied on close, so it never grows without
/// bound and the next process's open (which reads the whole WAL) stays cheap.
#[test]
fn closing_empties_a_wal_that_has_grown() {
    let (_dir, path, mut db) = fresh();
    let wal = path.with_extension("db-wal");
    let mut ids = Vec::new();
    while std::fs::metadata(&wal).unwrap().len() <= 1 << 20 {
        let command = format!("step {}", ids.len());
        let run = NewRun {
            command: command.repeat(200),
            ..ok_run(&command, "k", ids.len() as u64)
        };
        ids.push(db.record(&run).unwrap());
    }
    drop(db);
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    let db = Db::open(&path).unwrap();
    assert_eq!(db.stats().unwrap().runs, ids.len() as u64);
    assert_eq!(db.integrity_check().unwrap(), ["ok"]);
}
