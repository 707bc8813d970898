//! `shark store gc`: never a blob a kept run needs; old runs retired with --keep-days.

use crate::common::{stderr, stdout, TestEnv};

fn blob_count(env: &TestEnv) -> u64 {
    let out = env.run(&["store", "stats", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["blobs"].as_u64().unwrap()
}

#[test]
fn gc_keeps_what_runs_need_and_reuse_still_restores() {
    let env = TestEnv::new();
    env.write("in.txt", "b\na\n");
    assert_eq!(env.line("sort in.txt > out.txt").status.code(), Some(0));
    let before = blob_count(&env);
    assert!(before >= 2, "the output and the streams are stored");

    let out = env.run(&["store", "gc"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("removed 0 of"), "{}", stdout(&out));
    assert_eq!(blob_count(&env), before);

    std::fs::remove_file(env.path("out.txt")).unwrap();
    assert_eq!(env.line("sort in.txt > out.txt").status.code(), Some(0));
    assert!(env.last_cached());
    assert_eq!(env.read("out.txt"), "a\nb\n");
}

#[test]
fn keep_days_zero_retires_old_runs_and_frees_their_blobs() {
    let env = TestEnv::new();
    env.write("in.txt", "b\na\n");
    assert_eq!(env.line("sort in.txt > out.txt").status.code(), Some(0));
    assert!(blob_count(&env) > 0);
    let dry = env.run(&["store", "gc", "--keep-days", "0", "--dry-run"]);
    assert!(stdout(&dry).contains("would remove"), "{}", stdout(&dry));
    assert!(blob_count(&env) > 0, "a dry run removes nothing");

    let out = env.run(&["store", "gc", "--keep-days", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(blob_count(&env), 0);
    // The retired run is history, not a cache entry: the command runs again, correctly.
    std::fs::remove_file(env.path("out.txt")).unwrap();
    let out = env.line("sort in.txt > out.txt");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!env.last_cached());
    assert_eq!(env.read("out.txt"), "a\nb\n");
    assert_eq!(env.log().len(), 2, "the old run stays in the log");
}

#[test]
fn gc_refuses_while_another_shark_records() {
    let env = TestEnv::new();
    let mut busy = env.shark().args(["-c", "sleep 5"]).spawn().unwrap();
    // Wait until the running shark holds its lock (the store exists once it has opened it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !env.home.join("lineage.db").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let out = env.run(&["store", "gc"]);
    busy.kill().unwrap();
    let _ = busy.wait();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("another shark is using"),
        "{}",
        stderr(&out)
    );
}
