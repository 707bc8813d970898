//! Memoized execution: a repeated command is reused exactly when nothing it read has changed.
//!
//! A stale reuse — replaying a result after one of its inputs changed — is the worst bug shark
//! can have, so most tests here change one input in one way and check that the command ran.

use std::os::unix::fs::PermissionsExt;

use crate::common::{stderr, stdout, with_stdin, TestEnv};

/// Runs `line`, asserts success, returns stdout.
fn ok(env: &TestEnv, line: &str) -> String {
    let out = env.line(line);
    assert_eq!(out.status.code(), Some(0), "{line}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn second_run_is_reused_with_outputs_and_streams() {
    let env = TestEnv::new();
    env.write("in.txt", "hello\n");
    let line = "tr a-z A-Z < in.txt > out.txt; echo made; echo note >&2";
    let first = env.line(line);
    assert_eq!(stdout(&first), "made\n");
    assert_eq!(stderr(&first), "note\n");
    assert_eq!(env.read("out.txt"), "HELLO\n");
    std::fs::remove_file(env.path("out.txt")).unwrap();

    let second = env.line(line);
    assert_eq!(second.status.code(), Some(0));
    assert_eq!(stdout(&second), "made\n");
    assert_eq!(stderr(&second), "note\n");
    assert_eq!(
        env.read("out.txt"),
        "HELLO\n",
        "reuse restores a deleted output"
    );
    let log = env.log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["cached"], false);
    assert_eq!(log[1]["cached"], true);
    assert_eq!(log[1]["reused_from"], log[0]["id"]);
}

#[test]
fn changed_input_runs_again() {
    let env = TestEnv::new();
    env.write("in.txt", "one\n");
    ok(&env, "cat in.txt > out.txt");
    env.write("in.txt", "two\n");
    ok(&env, "cat in.txt > out.txt");
    assert_eq!(env.read("out.txt"), "two\n");
    assert!(!env.last_cached());
}

#[test]
fn same_size_change_with_old_mtime_runs_again() {
    let env = TestEnv::new();
    env.write("in.txt", "aaaa\n");
    ok(&env, "cat in.txt > out.txt");
    let before = std::fs::metadata(env.path("in.txt"))
        .unwrap()
        .modified()
        .unwrap();
    env.write("in.txt", "bbbb\n");
    std::fs::File::options()
        .write(true)
        .open(env.path("in.txt"))
        .unwrap()
        .set_modified(before)
        .unwrap();
    ok(&env, "cat in.txt > out.txt");
    assert_eq!(env.read("out.txt"), "bbbb\n");
}

#[test]
fn reverting_an_input_reuses_the_earlier_run() {
    let env = TestEnv::new();
    env.write("in.txt", "v1\n");
    ok(&env, "cat in.txt > out.txt");
    env.write("in.txt", "v2\n");
    ok(&env, "cat in.txt > out.txt");
    env.write("in.txt", "v1\n");
    ok(&env, "cat in.txt > out.txt");
    assert_eq!(env.read("out.txt"), "v1\n");
    let log = env.log();
    assert_eq!(log[2]["cached"], true);
    assert_eq!(log[2]["reused_from"], log[0]["id"]);
}

#[test]
fn a_file_that_appears_where_one_was_absent_runs_again() {
    let env = TestEnv::new();
    let line = "if test -e flag; then echo yes; else echo no; fi";
    assert_eq!(ok(&env, line), "no\n");
    env.write("flag", "");
    assert_eq!(ok(&env, line), "yes\n");
    std::fs::remove_file(env.path("flag")).unwrap();
    assert_eq!(ok(&env, line), "no\n");
    assert!(env.last_cached(), "the absent-flag run is reusable again");
}

#[test]
fn a_new_entry_in_a_listed_directory_runs_again() {
    let env = TestEnv::new();
    env.write("d/a", "1");
    assert_eq!(ok(&env, "ls d"), "a\n");
    env.write("d/b", "2");
    assert_eq!(ok(&env, "ls d"), "a\nb\n");
}

#[test]
fn glob_sees_new_files() {
    let env = TestEnv::new();
    env.write("x1.csv", "1\n");
    assert_eq!(ok(&env, "cat *.csv"), "1\n");
    env.write("x2.csv", "2\n");
    assert_eq!(ok(&env, "cat *.csv"), "1\n2\n");
}

#[test]
fn retargeted_symlink_runs_again() {
    let env = TestEnv::new();
    env.write("a", "from a\n");
    env.write("b", "from b\n");
    std::os::unix::fs::symlink("a", env.path("link")).unwrap();
    assert_eq!(ok(&env, "cat link"), "from a\n");
    std::fs::remove_file(env.path("link")).unwrap();
    std::os::unix::fs::symlink("b", env.path("link")).unwrap();
    assert_eq!(ok(&env, "cat link"), "from b\n");
}

#[test]
fn changed_script_and_changed_imported_module_run_again() {
    let env = TestEnv::new();
    env.write("tool.sh", "#!/bin/sh\necho tool v1\n");
    std::fs::set_permissions(env.path("tool.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(ok(&env, "./tool.sh"), "tool v1\n");
    env.write("tool.sh", "#!/bin/sh\necho tool v2\n");
    assert_eq!(ok(&env, "./tool.sh"), "tool v2\n");

    env.write("helper.py", "VALUE = 1\n");
    env.write("main.py", "import helper\nprint(helper.VALUE)\n");
    let py = "python3 -B main.py";
    assert_eq!(ok(&env, py), "1\n");
    env.write("helper.py", "VALUE = 2\n");
    assert_eq!(ok(&env, py), "2\n");
}

#[test]
fn environment_and_cwd_are_part_of_the_key() {
    let env = TestEnv::new();
    let run = |foo: &str| {
        stdout(
            &env.shark()
                .env("FOO", foo)
                .args(["-c", "echo $FOO"])
                .output()
                .unwrap(),
        )
    };
    assert_eq!(run("1"), "1\n");
    assert_eq!(run("2"), "2\n");
    env.write("sub/x", "");
    let out = env
        .shark()
        .current_dir(env.path("sub"))
        .args(["-c", "pwd"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), format!("{}\n", env.path("sub").display()));
    assert_eq!(ok(&env, "pwd"), format!("{}\n", env.work.display()));
}

#[test]
fn stdin_content_is_an_input() {
    let env = TestEnv::new();
    let feed = |text: &str| {
        let out = with_stdin(env.shark().args(["-c", "tr a-z A-Z"]), text.as_bytes());
        stdout(&out)
    };
    assert_eq!(feed("abc"), "ABC");
    assert_eq!(feed("xyz"), "XYZ");
    assert_eq!(feed("abc"), "ABC");
    let why = env.run(&["why", "3"]);
    assert!(env.last_cached(), "{}", stdout(&why));
}

#[test]
fn failed_runs_are_recorded_but_never_reused() {
    let env = TestEnv::new();
    for _ in 0..2 {
        let out = env.line("echo partial > p.txt; exit 3");
        assert_eq!(out.status.code(), Some(3));
    }
    let log = env.log();
    assert_eq!(log.len(), 2);
    assert!(log
        .iter()
        .all(|r| r["cached"] == false && r["exit_code"] == 3));
}

#[test]
fn killed_by_signal_reports_128_plus_signal() {
    let env = TestEnv::new();
    let out = env.line("kill -TERM $$");
    assert_eq!(out.status.code(), Some(128 + 15));
}

#[test]
fn fresh_forces_a_run() {
    let env = TestEnv::new();
    ok(&env, "echo x > f");
    let out = env.run(&["--fresh", "-c", "echo x > f"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!env.last_cached());
    let why = env.run(&["why", "f"]);
    assert!(stdout(&why).contains("--fresh"), "{}", stdout(&why));
}

#[test]
fn outputs_are_restored_exactly_modes_symlinks_dirs_and_deletions() {
    let env = TestEnv::new();
    env.write("gone", "bye");
    let line = "mkdir -p empty out && printf '#!/bin/sh\\n' > out/run.sh && chmod 750 out/run.sh \
                && ln -sf run.sh out/link && rm gone && echo done";
    ok(&env, line);
    // Put the world back as it was before the command, then reuse.
    std::fs::remove_dir_all(env.path("out")).unwrap();
    std::fs::remove_dir(env.path("empty")).unwrap();
    env.write("gone", "bye");
    assert_eq!(ok(&env, line), "done\n");
    assert!(env.last_cached());
    let mode = std::fs::metadata(env.path("out/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o750);
    assert_eq!(
        std::fs::read_link(env.path("out/link")).unwrap().to_str(),
        Some("run.sh")
    );
    assert!(env.path("empty").is_dir());
    assert!(!env.path("gone").exists());
}

#[test]
fn outputs_modified_by_the_user_are_not_inputs_but_are_restored() {
    let env = TestEnv::new();
    env.write("in", "data\n");
    ok(&env, "cp in out");
    env.write("out", "scribbled\n");
    ok(&env, "cp in out");
    assert_eq!(env.read("out"), "data\n");
}

#[test]
fn appending_command_depends_on_the_old_content() {
    let env = TestEnv::new();
    env.write("log.txt", "a\n");
    ok(&env, "echo b >> log.txt");
    assert_eq!(env.read("log.txt"), "a\nb\n");
    ok(&env, "echo b >> log.txt");
    assert_eq!(
        env.read("log.txt"),
        "a\nb\nb\n",
        "an append must not be replayed as a restore"
    );
}

#[test]
fn corrupt_blob_runs_the_command_instead() {
    let env = TestEnv::new();
    // A small output (a row of the store's pack) and a large one (a blob file of its own).
    let line = "seq 1 1000 > numbers.txt; seq 1 10000 > big.txt";
    ok(&env, line);
    let big = shark_store::Digest::of_bytes(env.read("big.txt").as_bytes());
    let files = walk(&env.home.join("store").join("blobs"));
    assert_eq!(files.len(), 1, "only big.txt is large: {files:?}");
    assert!(files[0].to_string_lossy().contains(&big.to_string()[2..]));

    // The large output's file alone.
    damage_file(&files[0]);
    let rerun = |what: &str| {
        std::fs::remove_file(env.path("numbers.txt")).unwrap();
        std::fs::remove_file(env.path("big.txt")).unwrap();
        let out = env.line(line);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
        assert_eq!(env.read("numbers.txt").lines().count(), 1000, "{what}");
        assert_eq!(env.read("big.txt").lines().count(), 10_000, "{what}");
        stderr(&out)
    };
    let err = rerun("a corrupt blob file");
    assert!(err.contains("cannot reuse"), "{err}");
    assert!(err.contains(&format!("blob {big} is corrupt")), "{err}");
    assert!(!env.last_cached());

    // Every packed blob, the small output among them.
    let numbers = shark_store::Digest::of_bytes(env.read("numbers.txt").as_bytes());
    let packed = crate::common::damage_packed(&env.home, None);
    assert!(packed.contains(&numbers), "numbers.txt is packed");
    let err = rerun("corrupt packed blobs");
    assert!(err.contains("cannot reuse"), "{err}");
    assert!(err.contains(&format!("blob {numbers} is corrupt")), "{err}");
    assert!(!env.last_cached());

    // The runs stored good copies: the next one reuses them.
    let err = rerun("healed");
    assert!(!err.contains("cannot reuse"), "{err}");
    assert!(env.last_cached());
}

/// Flips the last byte of a blob file.
fn damage_file(blob: &std::path::Path) {
    let mut bytes = std::fs::read(blob).unwrap();
    if let Some(last) = bytes.last_mut() {
        *last ^= 0xff;
        std::fs::set_permissions(blob, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(blob, &bytes).unwrap();
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}

#[test]
fn network_runs_are_not_reused() {
    let env = TestEnv::new();
    for _ in 0..2 {
        let out = env.run(&["--net", "-c", "echo n"]);
        assert_eq!(stdout(&out), "n\n");
    }
    assert!(!env.last_cached());
    // Unless the user vouches for what it fetches.
    for _ in 0..2 {
        let out = env.run(&["--net", "--reuse-net", "-c", "echo m"]);
        assert_eq!(stdout(&out), "m\n");
    }
    assert!(env.last_cached());
    let out = env.run(&["--reuse-net", "-c", "echo m"]);
    assert_eq!(out.status.code(), Some(2), "--reuse-net needs --net");
}

#[test]
fn run_subcommand_passes_argv_and_status() {
    let env = TestEnv::new();
    let out = env.run(&["run", "--", "sh", "-c", "echo \"$1\"; exit 4", "sh", "a b"]);
    assert_eq!(stdout(&out), "a b\n");
    assert_eq!(out.status.code(), Some(4));
    let out = env.run(&["run", "no-such-program-xyz"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("no-such-program-xyz: command not found"));
}

#[test]
fn writes_outside_writable_roots_fail_and_change_nothing() {
    let env = TestEnv::new();
    let out = env.line("echo x > /etc/shark-should-not-exist");
    assert_ne!(out.status.code(), Some(0));
    assert!(!std::path::Path::new("/etc/shark-should-not-exist").exists());
}

#[test]
fn concurrent_sharks_share_one_home() {
    let env = TestEnv::new();
    let children: Vec<_> = (0..4)
        .map(|i| {
            env.shark()
                .args(["-c", &format!("echo {i} > f{i}")])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(env.log().len(), 4);
    for i in 0..4 {
        assert_eq!(env.read(&format!("f{i}")), format!("{i}\n"));
    }
}

#[test]
fn a_200_mb_output_is_restored_byte_for_byte() {
    let env = TestEnv::new();
    // Random bytes do not compress: the blob is stored raw and restored by copy or reflink.
    ok(
        &env,
        "head -c 200M /dev/urandom > big.bin; b3=$(cksum < big.bin); echo \"$b3\" > sum.txt",
    );
    let original = std::fs::read(env.path("big.bin")).unwrap();
    assert_eq!(original.len(), 200 << 20);
    std::fs::remove_file(env.path("big.bin")).unwrap();
    ok(
        &env,
        "head -c 200M /dev/urandom > big.bin; b3=$(cksum < big.bin); echo \"$b3\" > sum.txt",
    );
    assert!(env.last_cached());
    let restored = std::fs::read(env.path("big.bin")).unwrap();
    assert!(restored == original, "the restored 200 MB file differs");
}

#[test]
fn the_same_command_in_another_directory_runs_there() {
    let env = TestEnv::new();
    env.write("a/in.txt", "A\n");
    env.write("b/in.txt", "A\n");
    let run_in = |dir: &str| {
        let out = env
            .shark()
            .current_dir(env.path(dir))
            .args(["-c", "cat in.txt > out.txt"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    run_in("a");
    run_in("b");
    assert!(!env.last_cached(), "another cwd is another command");
    assert_eq!(env.read("b/out.txt"), "A\n");
}

#[test]
fn a_program_appearing_earlier_on_path_runs_again() {
    let env = TestEnv::new();
    let early = env.path("early");
    std::fs::create_dir_all(&early).unwrap();
    let path = format!("{}:/usr/bin:/bin", early.display());
    let run = || {
        env.shark()
            .env("PATH", &path)
            .args(["-c", "greet 2>/dev/null || echo none"])
            .output()
            .unwrap()
    };
    assert_eq!(stdout(&run()), "none\n");
    std::fs::write(early.join("greet"), "#!/bin/sh\necho hello from greet\n").unwrap();
    std::fs::set_permissions(early.join("greet"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(stdout(&run()), "hello from greet\n");
    assert!(!env.last_cached());
    // And a changed program binary (here a script) runs again too.
    std::fs::write(early.join("greet"), "#!/bin/sh\necho changed greet\n").unwrap();
    assert_eq!(stdout(&run()), "changed greet\n");
    assert!(!env.last_cached());
    assert_eq!(stdout(&run()), "changed greet\n");
    assert!(env.last_cached());
}

#[test]
fn a_real_run_leaves_fresh_output_and_a_reuse_the_recorded_one() {
    let env = TestEnv::new();
    env.write("in.txt", "1\n");
    ok(&env, "cat in.txt > out.txt; date +%s%N > stamp.txt");
    let first = env.read("stamp.txt");
    ok(&env, "cat in.txt > out.txt; date +%s%N > stamp.txt");
    assert_eq!(
        env.read("stamp.txt"),
        first,
        "a reuse restores the recorded stamp"
    );
    env.write("in.txt", "2\n");
    ok(&env, "cat in.txt > out.txt; date +%s%N > stamp.txt");
    assert_ne!(
        env.read("stamp.txt"),
        first,
        "a changed input really ran the command"
    );
    assert_eq!(env.read("out.txt"), "2\n");
}

#[test]
fn a_command_finding_its_own_output_in_place_runs_once_more_then_is_reused() {
    let env = TestEnv::new();
    let line = "mkdir -p d; [ -e d/o ] || echo made > d/o; cat d/o";
    assert_eq!(ok(&env, line), "made\n");
    // The first run found d/o absent; now it is there (the run's own output), and the test
    // takes the other branch: the command runs, as bash would, with the same result.
    assert_eq!(ok(&env, line), "made\n");
    assert!(!env.last_cached());
    // That run found d/o as it is now: the next is reused.
    assert_eq!(ok(&env, line), "made\n");
    assert!(env.last_cached());
    // A hand edit of that output is not what the run saw: the command really runs, and
    // like bash it keeps the edited file.
    env.write("d/o", "mine\n");
    assert_eq!(ok(&env, line), "mine\n");
    assert!(!env.last_cached());
    assert_eq!(env.read("d/o"), "mine\n");
}

#[test]
fn a_command_that_deleted_its_input_runs_again_without_it() {
    let env = TestEnv::new();
    env.write("a.txt", "A\n");
    assert_eq!(ok(&env, "mv a.txt b.txt && echo moved"), "moved\n");
    // Re-run in place: a.txt is gone, as the run left it, but mv would now fail, as in bash.
    let out = env.line("mv a.txt b.txt && echo moved");
    assert_ne!(out.status.code(), Some(0));
    assert!(!env.last_cached());
    assert_eq!(env.read("b.txt"), "A\n");
}

#[test]
fn appending_to_a_file_the_command_created_runs_again() {
    let env = TestEnv::new();
    ok(&env, "echo built >> log.txt");
    assert_eq!(env.read("log.txt"), "built\n");
    // log.txt now holds what the run left, but the run appended: bash would append again.
    ok(&env, "echo built >> log.txt");
    assert_eq!(env.read("log.txt"), "built\nbuilt\n");
    assert!(!env.last_cached());
}

#[test]
fn a_retargeted_directory_symlink_in_the_middle_of_a_path_runs_again() {
    let env = TestEnv::new();
    env.write("a/data.txt", "from a\n");
    env.write("b/data.txt", "from b\n");
    std::os::unix::fs::symlink("a", env.path("current")).unwrap();
    assert_eq!(ok(&env, "cat current/data.txt"), "from a\n");
    std::fs::remove_file(env.path("current")).unwrap();
    std::os::unix::fs::symlink("b", env.path("current")).unwrap();
    assert_eq!(ok(&env, "cat current/data.txt"), "from b\n");
    assert!(!env.last_cached());
}

#[test]
fn a_change_through_another_hard_link_runs_again() {
    let env = TestEnv::new();
    env.write("in.txt", "one\n");
    std::fs::hard_link(env.path("in.txt"), env.path("alias.txt")).unwrap();
    assert_eq!(ok(&env, "cat in.txt"), "one\n");
    // Same size, written through the other name.
    std::fs::write(env.path("alias.txt"), "two\n").unwrap();
    assert_eq!(ok(&env, "cat in.txt"), "two\n");
    assert!(!env.last_cached());
}

#[test]
fn a_program_that_lost_its_execute_bit_runs_again() {
    let env = TestEnv::new();
    env.write("tool.sh", "#!/bin/sh\necho tool ran\n");
    let path = env.path("tool.sh");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(ok(&env, "./tool.sh"), "tool ran\n");
    assert_eq!(ok(&env, "./tool.sh"), "tool ran\n");
    assert!(env.last_cached());
    // Same content, no longer executable: bash would refuse, so must shark.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.line("./tool.sh");
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert!(!env.last_cached());
    let why = stdout(&env.run(&["why", "3"]));
    assert!(why.contains("it was mode 755, it is now mode 644"), "{why}");
}

#[test]
fn appending_through_a_symlinked_directory_runs_again() {
    let env = TestEnv::new();
    env.write("real/log.txt", "a\n");
    std::os::unix::fs::symlink("real", env.path("via")).unwrap();
    ok(&env, "echo b >> via/log.txt");
    assert_eq!(env.read("real/log.txt"), "a\nb\n");
    ok(&env, "echo b >> via/log.txt");
    assert_eq!(
        env.read("real/log.txt"),
        "a\nb\nb\n",
        "an append under another name is still an append"
    );
    assert!(!env.last_cached());
}

#[test]
fn a_listed_directory_the_command_also_changed_runs_again_when_it_gains_an_entry() {
    let env = TestEnv::new();
    env.write("d/a", "");
    assert_eq!(ok(&env, "chmod 700 d && ls d"), "a\n");
    env.write("d/b", "");
    assert_eq!(ok(&env, "chmod 700 d && ls d"), "a\nb\n");
    assert!(!env.last_cached());
}

#[test]
fn a_directory_the_command_created_and_listed_runs_again_when_it_gains_an_entry() {
    let env = TestEnv::new();
    assert_eq!(ok(&env, "mkdir -p d && echo > d/a && ls d"), "a\n");
    env.write("d/b", "");
    assert_eq!(ok(&env, "mkdir -p d && echo > d/a && ls d"), "a\nb\n");
    assert!(!env.last_cached());
}

/// What a dynamically linked program reads through the C library is recorded by the fast
/// path's preloaded library instead of a notification per call: those reads are inputs all the
/// same, and a change to any of them makes the command run again.
#[test]
fn reads_recorded_by_the_fast_path_are_inputs() {
    let env = TestEnv::new();
    env.write("in.txt", "one\n");
    env.write("conf/a.cfg", "x\n");
    let py = "import os\n\
              text = open('in.txt').read()\n\
              size = os.stat('conf/a.cfg').st_size\n\
              there = os.path.exists('missing.txt')\n\
              print(text.strip(), size, there)\n";
    env.write("read.py", py);
    let line = "python3 read.py > out.txt";
    ok(&env, line);
    assert_eq!(env.read("out.txt"), "one 2 False\n");
    ok(&env, line);
    assert!(env.last_cached(), "nothing changed: reused");

    env.write("in.txt", "two\n");
    ok(&env, line);
    assert!(!env.last_cached(), "a file read with open() changed");
    assert_eq!(env.read("out.txt"), "two 2 False\n");

    env.write("conf/a.cfg", "xyz\n");
    ok(&env, line);
    assert!(!env.last_cached(), "a file stat-ed changed size");
    assert_eq!(env.read("out.txt"), "two 4 False\n");

    env.write("missing.txt", "");
    ok(&env, line);
    assert!(
        !env.last_cached(),
        "a path looked for and not found appeared"
    );
    assert_eq!(env.read("out.txt"), "two 4 True\n");
    ok(&env, line);
    assert!(env.last_cached());
}

/// `SHARK_FAST_PATH=0` changes how reads are observed, not what is observed: a run recorded
/// with the fast path is reused without it, and the other way round.
#[test]
fn the_fast_path_setting_is_not_part_of_the_key() {
    let env = TestEnv::new();
    env.write("in.txt", "hello\n");
    let line = "python3 -c \"print(open('in.txt').read().upper(), end='')\" > out.txt";
    let slow = || {
        let out = env
            .shark()
            .env("SHARK_FAST_PATH", "0")
            .args(["-c", line])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    ok(&env, line);
    assert!(!env.last_cached());
    slow();
    assert!(
        env.last_cached(),
        "recorded with the fast path, reused without it"
    );
    env.write("in.txt", "bye\n");
    slow();
    assert!(!env.last_cached(), "the input changed");
    assert_eq!(env.read("out.txt"), "BYE\n");
    ok(&env, line);
    assert!(
        env.last_cached(),
        "recorded without the fast path, reused with it"
    );
}

/// A command that truncates the memory shark's fast path shares with it faults in its own
/// processes (as at any damage done to memory they map), not in shark: the run is recorded
/// with its status and never reused, and shark carries on.
#[test]
fn a_command_that_damages_the_fast_path_memory_is_recorded_and_never_reused() {
    let env = TestEnv::new();
    env.write("in.txt", "x\n");
    let line = "cat in.txt > out.txt; truncate -s 0 /dev/shm/.shark/ring; cat in.txt >> out.txt";
    let first = env.line(line);
    let log = env.log();
    assert_eq!(log.len(), 1, "the run is recorded: {}", stderr(&first));
    // A process of the command faulted (SIGBUS): bash, or a child bash reports as 128 + 7.
    assert!(
        log[0]["signal"] == 7 || log[0]["exit_code"] == 128 + 7,
        "{:?}",
        log[0]
    );
    assert_eq!(first.status.code(), Some(128 + 7), "{}", stderr(&first));
    env.line(line);
    assert!(!env.last_cached());
    // Shark and its store are whole: an ordinary command runs and is reused.
    ok(&env, "cat in.txt > copy.txt");
    ok(&env, "cat in.txt > copy.txt");
    assert!(env.last_cached());
    assert_eq!(env.read("copy.txt"), "x\n");
}
