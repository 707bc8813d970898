//! The script runner: `shark SCRIPT [ARGS...]`, each top-level command a memoized step with the
//! shell state carried between steps.

use crate::common::{stderr, stdout, with_stdin, TestEnv};

/// Which steps of the last script run were reused, by command text, in order.
fn steps(env: &TestEnv, last: usize) -> Vec<(String, bool)> {
    let log = env.log();
    log[log.len() - last..]
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap().to_owned(),
                r["cached"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The commands of the last `last` steps that ran rather than being reused, in order.
fn ran_steps(env: &TestEnv, last: usize) -> Vec<String> {
    steps(env, last)
        .into_iter()
        .filter(|(_, cached)| !cached)
        .map(|(c, _)| c)
        .collect()
}

const PIPELINE: &str = "\
#!/usr/bin/env shark
# A three-step pipeline with state between steps.
set -e
src=data.txt
sort \"$src\" > sorted.txt
count() { wc -l < \"$1\"; }
count sorted.txt > count.txt
tr a-z A-Z < other.txt > upper.txt
";

#[test]
fn state_carries_and_second_run_reuses_every_step() {
    let env = TestEnv::new();
    env.write("data.txt", "b\na\n");
    env.write("other.txt", "x\n");
    env.write("p.sh", PIPELINE);
    let out = env.run(&["p.sh"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.read("sorted.txt"), "a\nb\n");
    assert_eq!(env.read("count.txt"), "2\n");
    assert_eq!(env.read("upper.txt"), "X\n");
    let first = steps(&env, 6);
    assert!(first.iter().all(|(_, cached)| !cached), "{first:?}");

    std::fs::remove_file(env.path("count.txt")).unwrap();
    let out = env.run(&["p.sh"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let second = steps(&env, 6);
    assert!(second.iter().all(|(_, cached)| *cached), "{second:?}");
    assert_eq!(
        env.read("count.txt"),
        "2\n",
        "a reused step restores its output"
    );
}

#[test]
fn changing_one_input_reruns_only_the_steps_that_read_it() {
    let env = TestEnv::new();
    env.write("data.txt", "b\na\n");
    env.write("other.txt", "x\n");
    env.write("p.sh", PIPELINE);
    assert_eq!(env.run(&["p.sh"]).status.code(), Some(0));
    env.write("other.txt", "y\n");
    assert_eq!(env.run(&["p.sh"]).status.code(), Some(0));
    let ran = ran_steps(&env, 6);
    assert_eq!(ran, vec!["tr a-z A-Z < other.txt > upper.txt"]);
    assert_eq!(env.read("upper.txt"), "Y\n");

    // A changed input early in the chain re-runs its step and the step reading its output.
    env.write("data.txt", "c\nb\na\n");
    assert_eq!(env.run(&["p.sh"]).status.code(), Some(0));
    let ran = ran_steps(&env, 6);
    assert_eq!(
        ran,
        vec!["sort \"$src\" > sorted.txt", "count sorted.txt > count.txt"]
    );
    assert_eq!(env.read("count.txt"), "3\n");
}

#[test]
fn a_changed_variable_reruns_the_steps_after_it() {
    let env = TestEnv::new();
    env.write("a.txt", "A\n");
    env.write("b.txt", "B\n");
    env.write("p.sh", "src=a.txt\ncat \"$src\" > out.txt\n");
    assert_eq!(env.run(&["p.sh"]).status.code(), Some(0));
    assert_eq!(env.read("out.txt"), "A\n");
    env.write("p.sh", "src=b.txt\ncat \"$src\" > out.txt\n");
    assert_eq!(env.run(&["p.sh"]).status.code(), Some(0));
    assert_eq!(
        env.read("out.txt"),
        "B\n",
        "the state is part of a step's key"
    );
}

#[test]
fn set_e_stops_at_the_first_failure_and_exit_status_passes_through() {
    let env = TestEnv::new();
    env.write("p.sh", "set -e\necho one\nfalse\necho two\n");
    let out = env.run(&["p.sh"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "one\n");

    env.write("q.sh", "echo one\nfalse\necho two\n");
    let out = env.run(&["q.sh"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without set -e the script goes on"
    );
    assert_eq!(stdout(&out), "one\ntwo\n");

    env.write("r.sh", "echo one\nexit 7\necho two\n");
    let out = env.run(&["r.sh"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stdout(&out), "one\n");
    // The same again: the first step is reused, the failing `exit 7` runs again (failures
    // are never reused), with the same status and output.
    let out = env.run(&["r.sh"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stdout(&out), "one\n");
    assert_eq!(
        steps(&env, 2),
        vec![("echo one".into(), true), ("exit 7".into(), false)]
    );
}

#[test]
fn positional_parameters_and_shift() {
    let env = TestEnv::new();
    env.write(
        "p.sh",
        "echo \"$0|$#|$1|$2\"\nshift\necho \"$#|$1|$*\"\nfor a; do echo \"<$a>\"; done\n",
    );
    let out = env.run(&["p.sh", "x y", "z", "w"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "p.sh|3|x y|z\n2|z|z w\n<z>\n<w>\n");
    let out = env.run(&["p.sh", "other"]);
    assert_eq!(stdout(&out), "p.sh|1|other|\n0||\n");
}

#[test]
fn cd_and_functions_carry_between_steps() {
    let env = TestEnv::new();
    env.write(
        "p.sh",
        "mkdir -p d/e\ncd d\ngreet() {\n  echo \"hi $1\" > greeting.txt\n}\ncd e\ngreet there\npwd\n",
    );
    let out = env.run(&["p.sh"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.read("d/e/greeting.txt"), "hi there\n");
    assert_eq!(stdout(&out), format!("{}\n", env.path("d/e").display()));
}

#[test]
fn missing_script_and_syntax_error_are_clear() {
    let env = TestEnv::new();
    let out = env.run(&["nope.sh"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("nope.sh"), "{}", stderr(&out));

    env.write("bad.sh", "echo 'unterminated\n");
    let out = env.run(&["bad.sh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.sh: line 1"), "{}", stderr(&out));
}

#[test]
fn shebang_runs_the_script_through_shark() {
    let env = TestEnv::new();
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_shark"), bin.join("shark")).unwrap();
    env.write("p.sh", "#!/usr/bin/env shark\necho from-shark\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.path("p.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(env.path("p.sh"))
        .env_clear()
        .env("SHARK_HOME", &env.home)
        .env("HOME", env.work.parent().unwrap().join("user"))
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .current_dir(&env.work)
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "from-shark\n", "{}", stderr(&out));
    assert_eq!(env.log().last().unwrap()["command"], "echo from-shark");
}

#[test]
fn script_from_stdin() {
    let env = TestEnv::new();
    let out = with_stdin(&mut env.shark(), b"x=5\necho $((x * 2))\n");
    assert_eq!(stdout(&out), "10\n");
}

#[test]
fn a_corrupt_shell_state_blob_runs_the_step_and_prints_once() {
    let env = TestEnv::new();
    env.write("p.sh", "echo hi; x=1\necho \"x=$x\"\n");
    let out = env.run(&["p.sh"]);
    assert_eq!(stdout(&out), "hi\nx=1\n", "{}", stderr(&out));
    // Damage the state blob the first step recorded.
    let db = shark_lineage::Db::open(&env.home.join("lineage.db")).unwrap();
    let state = db
        .run(shark_lineage::RunId(1))
        .unwrap()
        .shell_state
        .unwrap();
    drop(db);
    // A shell state is small: a row of the store's pack.
    assert_eq!(
        crate::common::damage_packed(&env.home, Some(&state)),
        [state],
        "the state blob is packed"
    );

    let out = env.run(&["p.sh"]);
    assert_eq!(stdout(&out), "hi\nx=1\n", "the step's output appears once");
    assert!(
        stderr(&out).contains(&format!("cannot reuse run 1: blob {state} is corrupt")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_changed_variable_reruns_only_the_steps_that_use_it() {
    let env = TestEnv::new();
    env.write("in.txt", "data\n");
    let script = |counter: u32| {
        format!(
            "a=1\ncounter={counter}\nstatus=ok\ncat in.txt > out1.txt\necho \"$a\" > out2.txt\n\
             echo \"$counter\" > out3.txt\nshow() {{ echo \"$status\"; }}\nshow > out4.txt\n"
        )
    };
    env.write("p.sh", &script(0));
    assert_eq!(env.run(&["p.sh"]).status.code(), Some(0));
    env.write("p.sh", &script(1));
    let out = env.run(&["p.sh"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.read("out3.txt"), "1\n");
    assert_eq!(
        ran_steps(&env, 8),
        vec!["counter=1", "echo \"$counter\" > out3.txt"],
        "only the steps that use the counter run again"
    );
    // `shark why` names the variable.
    let out = env.run(&["why", "out3.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("variable counter changed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_step_using_eval_keys_on_the_whole_state() {
    let env = TestEnv::new();
    let script = |v: u32| format!("x={v}\ny=2\neval 'echo $y' > out.txt\n");
    env.write("p.sh", &script(1));
    assert_eq!(env.run(&["p.sh"]).status.code(), Some(0));
    env.write("p.sh", &script(2));
    assert_eq!(env.run(&["p.sh"]).status.code(), Some(0));
    assert_eq!(
        ran_steps(&env, 3),
        vec!["x=2", "eval 'echo $y' > out.txt"],
        "eval may read x"
    );
}

#[test]
fn fresh_runs_every_step_of_a_script() {
    let env = TestEnv::new();
    env.write("p.sh", "echo one\necho two\n");
    assert_eq!(env.run(&["p.sh"]).status.code(), Some(0));
    let out = env.run(&["--fresh", "p.sh"]);
    assert_eq!(stdout(&out), "one\ntwo\n", "{}", stderr(&out));
    assert_eq!(ran_steps(&env, 2).len(), 2, "nothing was reused");
    let out = env.run(&["p.sh"]);
    assert_eq!(stdout(&out), "one\ntwo\n");
    assert!(
        ran_steps(&env, 2).is_empty(),
        "without --fresh both are reused"
    );
}

#[test]
fn signals_ignored_when_shark_starts_stay_ignored_in_its_commands() {
    use std::os::unix::process::CommandExt;
    // As under bash: `nohup shark s.sh` leaves the script's commands immune to hangups.
    let env = TestEnv::new();
    env.write("s.sh", "trap\nsh -c 'kill -HUP $$; echo survived'\n");
    use nix::sys::signal::{signal, SigHandler, Signal};
    let with_hangup = |handler: SigHandler| {
        let mut shark = env.shark();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            shark.pre_exec(move || {
                signal(Signal::SIGHUP, handler)
                    .map(drop)
                    .map_err(Into::into)
            });
        }
        shark.arg("s.sh").output().unwrap()
    };
    let out = with_hangup(SigHandler::SigIgn);
    assert_eq!(
        stdout(&out),
        "trap -- '' SIGHUP\nsurvived\n",
        "{}",
        stderr(&out)
    );
    // Started with the default disposition (whatever the test runner's), the commands get it
    // too, and nothing run under nohup is reused for them: the ignored signals are in the key.
    let out = with_hangup(SigHandler::SigDfl);
    assert_eq!(stdout(&out), "", "{}", stderr(&out));
    assert!(!env.log().iter().rev().take(2).any(|r| r["cached"] == true));
}
