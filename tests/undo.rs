//! `shark undo` and `shark checkout` on any filesystem: prior content kept in the store.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use crate::common::{stderr, stdout, TestEnv};

/// What a tree holds: relative path -> kind, mode and content (or symlink target).
pub(crate) fn tree(root: &Path) -> BTreeMap<String, (char, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (char, u32, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == ".shark-snapshots" || rel == ".home" {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            out.insert(rel, ('d', mode, Vec::new()));
            walk(root, &path, out);
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            out.insert(rel, ('l', 0, target.into_os_string().into_encoded_bytes()));
        } else {
            out.insert(rel, ('f', mode, std::fs::read(&path).unwrap()));
        }
    }
}

/// `n` bytes that do not compress, different for each `seed`.
pub(crate) fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A work tree with a bit of everything a command can change.
pub(crate) fn populate(work: &Path) {
    std::fs::write(work.join("data.bin"), noise(1, 300_000)).unwrap();
    std::fs::write(work.join("notes.txt"), "by hand\n").unwrap();
    std::fs::create_dir_all(work.join("results/deep")).unwrap();
    std::fs::write(work.join("results/a.csv"), "a,1\n").unwrap();
    std::fs::write(work.join("results/deep/b.csv"), noise(2, 20_000)).unwrap();
    std::fs::write(work.join("script.sh"), "echo hi\n").unwrap();
    std::fs::set_permissions(work.join("script.sh"), PermissionsExt::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("notes.txt", work.join("link")).unwrap();
}

/// Removes a tree, overwrites files, moves one, changes a mode, makes a tree and a symlink.
pub(crate) const MESS: &str = "rm -r results && head -c 1000 /dev/zero > data.bin && \
    echo later >> notes.txt && mv script.sh run.sh && chmod 644 run.sh && \
    mkdir -p made/sub && echo new > made/sub/x && ln -sfn data.bin link";

pub(crate) fn ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(out), stderr(out));
}

#[test]
fn undo_restores_rm_overwrite_mv_chmod_and_a_created_tree_byte_for_byte() {
    let env = TestEnv::new();
    populate(&env.work);
    let before = tree(&env.work);
    ok(&env.line(MESS));
    let after = tree(&env.work);
    assert_ne!(before, after);
    let out = env.run(&["undo", "--json"]);
    ok(&out);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["run"], 1);
    assert_eq!(tree(&env.work), before);
    // Nothing but the user's files was left behind.
    let hidden: Vec<String> = tree(&env.work)
        .into_keys()
        .filter(|k| k.contains(".shark"))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn undo_refuses_a_path_changed_since_and_names_it_unless_forced() {
    let env = TestEnv::new();
    populate(&env.work);
    let before = tree(&env.work);
    ok(&env.line(MESS));
    std::fs::write(env.path("made/sub/x"), "edited by hand\n").unwrap();
    let out = env.run(&["undo", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}", env.path("made/sub/x").display())),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        env.read("made/sub/x"),
        "edited by hand\n",
        "refused means untouched"
    );
    // A later run's change is refused alike.
    std::fs::write(env.path("made/sub/x"), "new\n").unwrap();
    ok(&env.line("echo again > run.sh"));
    let out = env.run(&["undo", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("run.sh"), "{}", stderr(&out));
    let out = env.run(&["undo", "1", "--dry-run"]);
    ok(&out);
    assert!(stdout(&out).contains("conflict: "), "{}", stdout(&out));
    ok(&env.run(&["undo", "1", "--force"]));
    assert_eq!(tree(&env.work), before);
}

#[test]
fn an_undo_is_recorded_and_can_itself_be_undone() {
    let env = TestEnv::new();
    populate(&env.work);
    let before = tree(&env.work);
    ok(&env.line(MESS));
    let after = tree(&env.work);
    ok(&env.run(&["undo"]));
    assert_eq!(tree(&env.work), before);
    let log = env.log();
    assert_eq!(log.last().unwrap()["command"], "shark undo 1");
    // The last run that changed anything is now the undo: undoing it redoes the run.
    ok(&env.run(&["undo"]));
    assert_eq!(tree(&env.work), after);
    ok(&env.run(&["undo"]));
    assert_eq!(tree(&env.work), before);
    // Lineage stays true: the restored file's producer is the undo.
    let out = env.run(&["show", "2", "--json"]);
    ok(&out);
    assert!(stdout(&out).contains("data.bin"), "{}", stdout(&out));
}

#[test]
fn a_reuse_can_be_undone() {
    let env = TestEnv::new();
    env.write("in.txt", "input\n");
    ok(&env.line("tr a-z A-Z < in.txt > out.txt"));
    std::fs::write(env.path("out.txt"), "overwritten by hand\n").unwrap();
    ok(&env.line("tr a-z A-Z < in.txt > out.txt"));
    assert!(env.last_cached());
    assert_eq!(env.read("out.txt"), "INPUT\n");
    ok(&env.run(&["undo"]));
    assert_eq!(env.read("out.txt"), "overwritten by hand\n");
}

#[test]
fn undo_never_writes_through_a_symlink_put_in_a_parent() {
    let env = TestEnv::new();
    ok(&env.line("mkdir -p d && echo out > d/f"));
    let elsewhere = env.work.parent().unwrap().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("f"), "keep me\n").unwrap();
    std::fs::remove_dir_all(env.path("d")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.path("d")).unwrap();
    let out = env.run(&["undo", "--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("f")).unwrap(),
        "keep me\n"
    );
}

#[test]
fn a_kill_during_undo_leaves_each_file_old_or_new() {
    use std::time::Duration;
    let env = TestEnv::new();
    let n = 48;
    let old: Vec<Vec<u8>> = (0..n).map(|i| noise(100 + i, 1 << 20)).collect();
    for (i, content) in old.iter().enumerate() {
        std::fs::write(env.path(&format!("f{i:02}")), content).unwrap();
    }
    ok(&env.line("for f in f*; do head -c 1048576 /dev/zero | tr '\\0' \"${f#f}\" > $f; done"));
    let new = |i: usize| {
        let digit = format!("{i:02}").into_bytes()[0]; // tr maps NUL to the first
        vec![digit; 1 << 20]
    };
    for (round, delay) in [40u64, 120, 250, 400, 700].into_iter().enumerate() {
        let mut child = env
            .shark()
            .args(["undo", "1", "--force"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        child.wait().unwrap();
        let mut restored = 0;
        for (i, was) in old.iter().enumerate() {
            let now = std::fs::read(env.path(&format!("f{i:02}"))).unwrap();
            assert!(
                now == *was || now == new(i),
                "round {round}: f{i:02} is neither old nor new (a torn file)"
            );
            restored += usize::from(now == *was);
        }
        eprintln!("killed after {delay} ms: {restored} of {n} files restored");
    }
    ok(&env.run(&["undo", "1", "--force"]));
    for (i, content) in old.iter().enumerate() {
        assert_eq!(
            &std::fs::read(env.path(&format!("f{i:02}"))).unwrap(),
            content
        );
    }
    let names: Vec<String> = std::fs::read_dir(&env.work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "debris: {names:?}");
}

#[test]
fn undo_data_beyond_the_budget_goes_oldest_first_and_gc_keeps_the_rest() {
    let env = TestEnv::new();
    let hand = |i: u64| noise(i, 100_000);
    for i in 1..=2 {
        std::fs::write(env.path(&format!("h{i}")), hand(i)).unwrap();
    }
    let budget = |c: &mut std::process::Command| {
        c.env("SHARK_UNDO_BYTES", "150K");
    };
    for i in 1..=2 {
        let mut c = env.shark();
        budget(&mut c);
        ok(&c
            .args(["-c", &format!("echo replaced > h{i}")])
            .output()
            .unwrap());
    }
    let mut c = env.shark();
    budget(&mut c);
    let out = c.args(["store", "stats", "--json"]).output().unwrap();
    ok(&out);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["undo"]["dropped_runs"], 1, "{v}");
    assert_eq!(v["undo"]["budget_bytes"], 150 * 1024, "{v}");
    let kept = v["undo"]["kept_bytes"].as_u64().unwrap();
    assert!((100_000..=150 * 1024).contains(&kept), "{v}");
    let out = env.run(&["undo", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("budget"), "{}", stderr(&out));
    ok(&env.run(&["store", "gc"]));
    ok(&env.run(&["undo", "2"]));
    assert_eq!(std::fs::read(env.path("h2")).unwrap(), hand(2));
}

#[test]
fn undo_with_nothing_to_undo_says_so() {
    let env = TestEnv::new();
    let out = env.run(&["undo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no run has changed anything"),
        "{}",
        stderr(&out)
    );
    ok(&env.line("echo hi"));
    let out = env.run(&["undo", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("run 1 has nothing to undo"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["undo", "x1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("malformed run id"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn checkout_materialises_what_a_run_read_and_wrote() {
    let env = TestEnv::new();
    env.write("in/a.txt", "alpha\n");
    env.write("gone.txt", "bye\n");
    ok(&env.line("cat in/a.txt > out.txt && rm gone.txt && mkdir -p o && echo z > o/z"));
    std::fs::write(env.path("out.txt"), "changed later\n").unwrap();
    let into = env.work.parent().unwrap().join("co");
    let out = env.run(&["checkout", "1", "--into", into.to_str().unwrap(), "--json"]);
    ok(&out);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["missing"], serde_json::json!([]), "{v}");
    let at = |rel: &str| into.join(env.path(rel).strip_prefix("/").unwrap());
    assert_eq!(std::fs::read_to_string(at("in/a.txt")).unwrap(), "alpha\n");
    assert_eq!(std::fs::read_to_string(at("out.txt")).unwrap(), "alpha\n");
    assert_eq!(std::fs::read_to_string(at("o/z")).unwrap(), "z\n");
    assert!(!at("gone.txt").exists());
    assert!(
        !into.join("usr").exists(),
        "system files are not checked out"
    );
    let out = env.run(&["checkout", "1", "--into", into.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
}

#[test]
fn prior_content_larger_than_the_whole_budget_is_not_stored() {
    let env = TestEnv::new();
    std::fs::write(env.path("hand.bin"), noise(3, 100_000)).unwrap();
    let out = env
        .shark()
        .env("SHARK_UNDO_BYTES", "50K")
        .args(["-c", "echo small > hand.bin"])
        .output()
        .unwrap();
    ok(&out);
    let err = stderr(&out);
    assert!(err.contains("exceed the undo budget"), "{err}");
    assert!(err.contains("hand.bin"), "{err}");
    let stats = env.run(&["store", "stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&stats)).unwrap();
    assert!(v["logical_bytes"].as_u64().unwrap() < 100_000, "{v}");
    let out = env.run(&["undo", "1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_file_replaced_by_a_directory_is_undone_and_redone() {
    let env = TestEnv::new();
    env.write("x", "a file\n");
    let before = tree(&env.work);
    ok(&env.line("rm x && mkdir -p x/sub && echo 1 > x/sub/f"));
    ok(&env.run(&["undo"]));
    assert_eq!(tree(&env.work), before);
    // The redo replaces the file with the directory again.
    ok(&env.run(&["undo"]));
    assert_eq!(env.read("x/sub/f"), "1\n");
}

#[test]
fn undo_as_an_unprivileged_user() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let as_root = nix::unistd::geteuid().is_root();
    for d in ["work", "user", "home"] {
        std::fs::create_dir(root.join(d)).unwrap();
    }
    populate(&root.join("work"));
    if as_root {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let st = std::process::Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(root)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let shark = |args: &[&str]| {
        let bin = crate::common::reachable_shark();
        let mut c = std::process::Command::new(if as_root {
            "setpriv".into()
        } else {
            bin.clone()
        });
        if as_root {
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(&bin);
        }
        c.args(args)
            .env_clear()
            .env("SHARK_HOME", root.join("home"))
            .env("HOME", root.join("user"))
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .current_dir(root.join("work"));
        c.output().unwrap()
    };
    let before = tree(&root.join("work"));
    ok(&shark(&["-c", MESS]));
    ok(&shark(&["undo"]));
    assert_eq!(tree(&root.join("work")), before);
}
