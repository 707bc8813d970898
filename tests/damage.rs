//! Damaged databases in the shark home: the stat cache is rebuilt, the pack is healed with
//! what can be read put back, the lineage database is reported, copied and (on request)
//! rebuilt; commands go on working, as root and as an unprivileged user.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{stderr, stdout, TestEnv};

/// Moves everything in `db`'s WAL into the file itself, so that damage written to the file
/// is what SQLite reads; returns its page count.
fn checkpoint(db: &Path) -> u64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    conn.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64
}

/// Overwrites page `page` (1-based; page 1 holds the header) of `db` with garbage.
fn damage_page(db: &Path, page: u64) {
    let mut bytes = fs::read(db).unwrap();
    let at = ((page - 1) * 4096) as usize;
    bytes[at..at + 4096].fill(0x5a);
    fs::write(db, bytes).unwrap();
}

/// The copies of `db` kept beside it.
fn copies(db: &Path) -> Vec<PathBuf> {
    let prefix = format!("{}.damaged-", db.file_name().unwrap().to_string_lossy());
    let mut found: Vec<PathBuf> = fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&prefix) && !n.ends_with("-wal") && !n.ends_with("-shm")
        })
        .collect();
    found.sort();
    found
}

fn warnings(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.starts_with("shark: warning:"))
        .collect()
}

fn a_damaged_stat_cache_is_rebuilt(env: &TestEnv) {
    env.write("in.txt", "b\na\n");
    let line = "sort in.txt > out.txt; cat out.txt";
    let out = env.line(line);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let cache = env.home.join("statcache.db");
    checkpoint(&cache);
    damage_page(&cache, 1);
    fs::remove_file(env.path("out.txt")).unwrap();
    let out = env.line(line);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "a\nb\n");
    assert!(env.last_cached(), "the cache only ever saves hashing");
    assert_eq!(env.read("out.txt"), "a\nb\n");
    let err = stderr(&out);
    let said = warnings(&err);
    assert_eq!(said.len(), 1, "{err}");
    assert!(said[0].contains("statcache.db was damaged (file is not a database)"));
    assert!(said[0].contains("rebuilt empty"), "{err}");
    assert_eq!(copies(&cache).len(), 1);
    // Said once: the next command is quiet.
    let out = env.line(line);
    assert!(warnings(&stderr(&out)).is_empty(), "{}", stderr(&out));
    let out = env.run(&["store", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Damage no command met yet is found by verify, which rebuilds the cache and says so.
    checkpoint(&cache);
    damage_page(&cache, 1);
    let out = env.run(&["store", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("statcache.db was damaged ("),
        "{}",
        stdout(&out)
    );
    let out = env.run(&["store", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn a_damaged_stat_cache_is_rebuilt_and_said_once() {
    a_damaged_stat_cache_is_rebuilt(&TestEnv::new());
}

#[test]
fn a_damaged_stat_cache_is_rebuilt_for_an_unprivileged_user() {
    match TestEnv::unprivileged() {
        Some(env) => a_damaged_stat_cache_is_rebuilt(&env),
        None => eprintln!("skipped: not root, so the other test already ran unprivileged"),
    }
}

/// Records `n` runs with small outputs and output on stdout (rows of the pack).
fn small_runs(env: &TestEnv, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let line = format!(
                "echo 'row {i} {}' > small{i}.txt; echo printed {i}",
                "x".repeat(i * 40)
            );
            let out = env.line(&line);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            line
        })
        .collect()
}

fn a_damaged_pack_header_heals(env: &TestEnv) {
    let lines = small_runs(env, 6);
    let pack = env.home.join("store/pack.db");
    checkpoint(&pack);
    damage_page(&pack, 1);
    // A new command runs, prints and keeps its output.
    let out = env.line("echo fresh > fresh.txt; echo said fresh");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "said fresh\n");
    assert_eq!(env.read("fresh.txt"), "fresh\n");
    let err = stderr(&out);
    let said = warnings(&err);
    assert_eq!(said.len(), 1, "{err}");
    assert!(
        said[0].contains("pack.db was damaged (file is not a database)"),
        "{err}"
    );
    assert!(said[0].contains("a copy is kept at"), "{err}");
    assert_eq!(copies(&pack).len(), 1);
    // A run whose blobs were lost runs again instead of being reused.
    fs::remove_file(env.path("small3.txt")).unwrap();
    let out = env.line(&lines[3]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "printed 3\n");
    assert!(!env.last_cached(), "{}", stderr(&out));
    assert!(env.read("small3.txt").starts_with("row 3 "));
    // Now it is stored again, and reused.
    fs::remove_file(env.path("small3.txt")).unwrap();
    let out = env.line(&lines[3]);
    assert_eq!(stdout(&out), "printed 3\n");
    assert!(env.last_cached());
    assert!(warnings(&stderr(&out)).is_empty());
}

#[test]
fn a_pack_with_a_damaged_header_heals_and_commands_go_on() {
    a_damaged_pack_header_heals(&TestEnv::new());
}

#[test]
fn a_pack_with_a_damaged_header_heals_for_an_unprivileged_user() {
    match TestEnv::unprivileged() {
        Some(env) => a_damaged_pack_header_heals(&env),
        None => eprintln!("skipped: not root, so the other test already ran unprivileged"),
    }
}

#[test]
fn verify_finds_damage_inside_the_pack_and_names_what_was_lost() {
    let env = TestEnv::new();
    let lines = small_runs(&env, 60);
    let pack = env.home.join("store/pack.db");
    let pages = checkpoint(&pack);
    damage_page(&pack, pages / 2 + 1);
    let out = env.run(&["store", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("pack.db was damaged ("), "{text}");
    assert!(text.contains(" blobs recovered, "), "{text}");
    let missing: Vec<&str> = text.lines().filter(|l| l.starts_with("missing ")).collect();
    assert!(!missing.is_empty(), "{text}");
    assert!(
        missing.iter().all(|l| l.contains("needed to reuse run ")),
        "{text}"
    );
    // Running again what lost its blobs (a reuse needs them to restore the outputs) stores
    // them again; then all is well.
    for (i, line) in lines.iter().enumerate() {
        fs::remove_file(env.path(&format!("small{i}.txt"))).unwrap();
        let out = env.line(line);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let out = env.run(&["store", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// Records runs, then damages a page in the middle of the lineage database; its bytes.
fn damaged_lineage(env: &TestEnv) -> Vec<u8> {
    small_runs(env, 40);
    let db = env.home.join("lineage.db");
    let pages = checkpoint(&db);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    assert_eq!(free, 0, "every page is in use: the damage lands in one");
    drop(conn);
    damage_page(&db, pages / 2 + 1);
    fs::read(&db).unwrap()
}

fn damaged_lineage_is_reported_copied_and_rebuilt(env: &TestEnv) {
    let bytes = damaged_lineage(env);
    let db = env.home.join("lineage.db");
    let out = env.run(&["store", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("lineage.db is damaged ("), "{text}");
    assert!(text.contains("hint: "), "{text}");
    let kept = copies(&db);
    assert_eq!(kept.len(), 1);
    assert!(
        fs::read(&kept[0]).unwrap() == bytes,
        "the copy is the damaged file"
    );
    assert!(
        fs::read(&db).unwrap() == bytes,
        "the history is left as it is"
    );
    // The same damage again: the same copy.
    let out = env.run(&["store", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(copies(&db), kept);

    let out = env.run(&["store", "verify", "--repair"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("rebuilt "), "{text}");
    assert!(text.contains(" runs recovered "), "{text}");
    let out = env.run(&["store", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // History is there, and recording goes on.
    assert!(env.log().len() > 10);
    let out = env.line("echo after > after.txt");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!env.last_cached());
}

#[test]
fn a_damaged_lineage_database_is_reported_copied_and_rebuilt_on_request() {
    damaged_lineage_is_reported_copied_and_rebuilt(&TestEnv::new());
}

#[test]
fn a_damaged_lineage_database_is_handled_for_an_unprivileged_user() {
    match TestEnv::unprivileged() {
        Some(env) => damaged_lineage_is_reported_copied_and_rebuilt(&env),
        None => eprintln!("skipped: not root, so the other test already ran unprivileged"),
    }
}

#[test]
fn a_command_that_meets_a_damaged_lineage_database_says_what_to_do() {
    let env = TestEnv::new();
    small_runs(&env, 3);
    let db = env.home.join("lineage.db");
    checkpoint(&db);
    damage_page(&db, 1);
    let out = env.line("echo hi");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("shark: error: "), "{err}");
    assert!(err.contains("hint: the lineage database"), "{err}");
    assert!(err.contains("shark store verify --repair"), "{err}");
}
