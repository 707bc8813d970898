//! Rebuilding a damaged database from a copy: runs that can be read whole come back (not
//! reusable), the others are named as lost, and the result is a sound database.

use std::fs;
use std::path::Path;

use shark_lineage::{Db, RunId};

use crate::common::{d, file_in, file_out, fresh, ok_run};

/// Records `n` runs with inputs and outputs; the last one reuses the first.
fn record_runs(db: &mut Db, n: usize) {
    for i in 0..n {
        let mut run = ok_run(&format!("step {i}"), &format!("key {i}"), i as u64);
        run.inputs = (0..30)
            .map(|j| file_in(&format!("/work/in/{i}/{j}.csv"), &format!("{i} {j}")))
            .collect();
        run.outputs = vec![file_out(&format!("/work/out/{i}.csv"), &format!("out {i}"))];
        run.stdout = Some(d(&format!("printed {i}")));
        if i == n - 1 {
            run.reused_from = Some(RunId(1));
            run.reusable = false;
        }
        db.record(&run).unwrap();
    }
}

/// A page in the middle of table `table`'s b-tree (1-based), found through SQLite's `dbstat`:
/// damage there loses some runs whatever the schema's other tables look like.
fn page_of(path: &Path, table: &str) -> u64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = 'leaf' ORDER BY pageno")
        .unwrap();
    let pages: Vec<u64> = stmt
        .query_map([table], |r| r.get::<_, i64>(0).map(|p| p as u64))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(pages.len() > 2, "{table} spans {} leaf pages", pages.len());
    pages[pages.len() / 2]
}

fn checkpoint(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

/// Overwrites page `page` (1-based) of `path` with garbage.
fn damage_page(path: &Path, page: u64) {
    let mut bytes = fs::read(path).unwrap();
    let at = ((page - 1) * 4096) as usize;
    bytes[at..at + 4096].fill(0x5a);
    fs::write(path, bytes).unwrap();
}

fn copy_of(path: &Path) -> std::path::PathBuf {
    let copy = path.with_file_name("lineage.db.damaged-test");
    fs::copy(path, &copy).unwrap();
    copy
}

#[test]
fn a_database_damaged_inside_comes_back_with_every_whole_run_and_no_reuse() {
    let (dir, path, mut db) = fresh();
    record_runs(&mut db, 120);
    drop(db);
    checkpoint(&path);
    let pages = fs::metadata(&path).unwrap().len() / 4096;
    damage_page(&path, page_of(&path, "inputs"));
    let check = Db::open(&path).unwrap().integrity_check();
    assert!(
        check.is_err() || check.unwrap() != ["ok"],
        "the damage is there"
    );
    let copy = copy_of(&path);

    let rebuilt = Db::rebuild_from(&path, &copy).unwrap();
    assert!(rebuilt.runs > 0 && rebuilt.runs < 120, "{rebuilt:?}");
    assert!(rebuilt.complete, "{rebuilt:?}");
    assert_eq!(rebuilt.runs as usize + rebuilt.lost.len(), 120);
    let db = Db::open(&path).unwrap();
    assert_eq!(db.integrity_check().unwrap(), ["ok"]);
    // Whole runs, none reusable; a lost run is gone, not half there.
    for id in 1..=120 {
        match (db.run(RunId(id)), rebuilt.lost.contains(&id)) {
            (Ok(run), false) => {
                assert!(!run.reusable);
                assert_eq!(run.inputs.len(), 30, "run {id}");
                assert_eq!(run.outputs.len(), 1, "run {id}");
            }
            (Err(_), true) => {}
            (got, lost) => panic!("run {id}: lost {lost}, read back {:?}", got.is_ok()),
        }
    }
    assert!(db.candidates(&d("key 3"), 5).unwrap().is_empty());
    // The copy is untouched, and new runs get new ids.
    assert_eq!(fs::read(&copy).unwrap().len() as u64, pages * 4096);
    let mut db = db;
    let id = db.record(&ok_run("after", "after", 999)).unwrap();
    assert_eq!(id, RunId(121));
    drop(dir);
}

#[test]
fn a_database_with_a_damaged_header_is_rebuilt_empty_and_usable() {
    let (_dir, path, mut db) = fresh();
    record_runs(&mut db, 5);
    drop(db);
    checkpoint(&path);
    damage_page(&path, 1);
    assert!(Db::open(&path).is_err());
    let copy = copy_of(&path);
    let rebuilt = Db::rebuild_from(&path, &copy).unwrap();
    assert_eq!(rebuilt.runs, 0);
    assert!(!rebuilt.complete, "nothing could be listed");
    let mut db = Db::open(&path).unwrap();
    assert_eq!(db.integrity_check().unwrap(), ["ok"]);
    db.record(&ok_run("after", "after", 999)).unwrap();
}
