//! Several writers at once, and writers killed mid-way.
//!
//! The child-process tests run this test binary again with one `#[ignore]`d test selected
//! and the database path in [`CHILD_DB`]; that test does nothing when the variable is unset.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shark_lineage::{Db, NewRun};

use crate::common::{file_in, file_out, fresh, ok_run};

/// Tells a re-executed test binary which database to write into.
const CHILD_DB: &str = "SHARK_LINEAGE_TEST_CHILD_DB";
/// Tells a re-executed test binary how many runs to record (0: until killed).
const CHILD_COUNT: &str = "SHARK_LINEAGE_TEST_CHILD_COUNT";

/// A run whose input and output counts are written in its command text, so a reader can
/// tell whether it sees all of them.
fn counted_run(writer: usize, i: usize) -> NewRun {
    let n = 1 + (writer * 7 + i) % 40;
    NewRun {
        inputs: (0..n)
            .map(|k| file_in(&format!("/in/{writer}/{i}/{k}"), "x"))
            .collect(),
        outputs: (0..n)
            .map(|k| file_out(&format!("/out/{writer}/{i}/{k}"), "y"))
            .collect(),
        ..ok_run(&format!("writer {writer} run {i} items {n}"), "k", i as u64)
    }
}

/// Opens `path` and checks that it is sound and every visible run is whole; returns how
/// many runs it holds.
fn check_whole(path: &Path) -> usize {
    let db = Db::open(path).unwrap();
    assert_eq!(db.integrity_check().unwrap(), ["ok"]);
    let runs = db.recent(usize::MAX).unwrap();
    for summary in &runs {
        let run = db.run(summary.id).unwrap();
        let n: usize = run.command.rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(run.inputs.len(), n, "run {} is missing inputs", run.id);
        assert_eq!(run.outputs.len(), n, "run {} is missing outputs", run.id);
    }
    runs.len()
}

#[test]
fn four_threads_each_with_its_own_db_all_succeed() {
    let (_dir, path, db) = fresh();
    drop(db);
    let threads: Vec<_> = (0..4)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut db = Db::open(&path).unwrap();
                for i in 0..50 {
                    db.record(&counted_run(w, i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(check_whole(&path), 200);
}

#[test]
fn threads_opening_a_brand_new_database_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let threads: Vec<_> = (0..6)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || Db::open(&path).unwrap().record(&counted_run(w, 0)).unwrap())
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(check_whole(&path), 6);
}

/// Starts this test binary recording into `path` (see the module docs).
fn spawn_writer(path: &Path, writer: usize, count: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "concurrency::child_writer",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DB, path)
        .env(CHILD_COUNT, count.to_string())
        .env("SHARK_LINEAGE_TEST_WRITER", writer.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// The body of a child writer; a no-op unless started by [`spawn_writer`].
#[test]
#[ignore = "run by other tests in a child process"]
fn child_writer() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap().parse::<usize>().unwrap();
    let (count, writer) = (var(CHILD_COUNT), var("SHARK_LINEAGE_TEST_WRITER"));
    let mut db = Db::open(Path::new(&path)).unwrap();
    for i in 0.. {
        if count != 0 && i == count {
            break;
        }
        db.record(&counted_run(writer, i)).unwrap();
    }
}

#[test]
fn four_processes_creating_and_recording_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let children: Vec<Child> = (0..4).map(|w| spawn_writer(&path, w, 50)).collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(check_whole(&path), 200);
}

#[test]
fn a_writer_killed_mid_recording_leaves_only_whole_runs() {
    let (_dir, path, db) = fresh();
    drop(db);
    for round in 0..3 {
        let mut child = spawn_writer(&path, round, 0);
        let deadline = Instant::now() + Duration::from_secs(60);
        let before = Db::open(&path).unwrap().stats().unwrap().runs;
        // Let it get well into recording, then kill it at an arbitrary point.
        while Db::open(&path).unwrap().stats().unwrap().runs < before + 30 + round as u64 * 17 {
            assert!(Instant::now() < deadline, "the writer made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let whole = check_whole(&path);
        assert!(whole >= 30, "only {whole} runs");
    }
    // The database still takes new runs after the kills.
    let mut db = Db::open(&path).unwrap();
    let id = db.record(&counted_run(9, 0)).unwrap();
    assert_eq!(
        db.run(id).unwrap().inputs.len(),
        counted_run(9, 0).inputs.len()
    );
}
