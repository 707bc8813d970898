//! A shark killed with SIGKILL at any moment leaves the database and store consistent, the
//! user's files whole, and never a half-recorded run that could be reused.

use std::time::Duration;

use crate::common::{stderr, stdout, TestEnv};

/// A pseudo-random delay in 0..max_ms, different on every call.
fn jitter(max_ms: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    Duration::from_millis(nanos.wrapping_mul(2_654_435_761) % max_ms)
}

#[test]
fn sigkill_at_any_moment_leaves_everything_consistent() {
    let env = TestEnv::new();
    env.write("in.txt", "c\nb\na\n");
    let line = "head -c 8M /dev/zero | tr '\\0' x > big.txt; sort in.txt > out.txt";
    for round in 0..10 {
        let mut child = env.shark().args(["-c", line]).spawn().unwrap();
        std::thread::sleep(jitter(if round % 2 == 0 { 60 } else { 250 }));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();

        // The user's files are whole: absent, or complete.
        if let Ok(meta) = std::fs::metadata(env.path("big.txt")) {
            assert_eq!(meta.len(), 8 << 20, "round {round}: a partial big.txt");
        }
        if let Ok(text) = std::fs::read_to_string(env.path("out.txt")) {
            assert_eq!(text, "a\nb\nc\n", "round {round}: a partial out.txt");
        }
        // The database answers and is intact; the store has no corrupt blob.
        let db = shark_lineage::Db::open(&env.home.join("lineage.db"));
        if let Ok(db) = db {
            assert_eq!(db.integrity_check().unwrap(), ["ok"]);
        }
        let verify = env.run(&["store", "verify"]);
        assert_eq!(
            verify.status.code(),
            Some(0),
            "round {round}: {}",
            stdout(&verify)
        );
        let log = env.run(&["log", "--json"]);
        assert_eq!(log.status.code(), Some(0), "{}", stderr(&log));
    }
    // The next run works, and whatever it reuses is right.
    std::fs::remove_file(env.path("out.txt")).ok();
    let out = env.line(line);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.read("out.txt"), "a\nb\nc\n");
    assert_eq!(
        std::fs::metadata(env.path("big.txt")).unwrap().len(),
        8 << 20
    );
    let out = env.line(line);
    assert_eq!(out.status.code(), Some(0));
    assert!(env.last_cached());
    // What the killed sharks left in the scratch directory has been swept; what remains is
    // a few recycled scratch directories: used ones (or ones a washer was washing when its
    // shark exited), which are washed before anyone gets them, and washed ones, with nothing
    // in their layers.
    let names: Vec<String> = std::fs::read_dir(env.home.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".shark-"))
        .collect();
    let recycled = |n: &String| {
        [".shark-pool-", ".shark-used-", ".shark-washing-"]
            .iter()
            .any(|p| n.starts_with(p))
    };
    let (recycled, left): (Vec<_>, Vec<_>) = names.into_iter().partition(recycled);
    assert_eq!(left, Vec::<String>::new());
    assert!(recycled.len() <= 4, "{recycled:?}");
    let pooled = recycled.iter().filter(|n| n.starts_with(".shark-pool-"));
    for dir in pooled {
        for layer in std::fs::read_dir(env.home.join("tmp").join(dir)).unwrap() {
            let layer = layer.unwrap().path();
            let inside = std::fs::read_dir(&layer).unwrap().count();
            assert_eq!(inside, 0, "{} is not empty", layer.display());
        }
    }
}

#[test]
fn a_killed_shark_takes_its_command_with_it() {
    let env = TestEnv::new();
    let mut child = env
        .shark()
        .args(["-c", "sleep 30; echo late > late.txt"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    // No process of the sandboxed command may survive its shark.
    std::thread::sleep(Duration::from_millis(200));
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    assert!(
        !stdout(&ps)
            .lines()
            .any(|l| l.contains("sleep 30; echo late")),
        "the command outlived shark"
    );
    assert!(!env.path("late.txt").exists());
}
