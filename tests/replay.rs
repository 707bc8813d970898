//! `shark replay`: re-execute recorded runs from the store and compare their outputs.

use std::path::PathBuf;
use std::process::Output;

use crate::common::{stderr, stdout, TestEnv};

/// Runs `shark replay ARGS... --into DIR` (DIR next to the work directory), checks it
/// succeeded, and returns DIR and the output.
fn replay_into(env: &TestEnv, args: &[&str]) -> (PathBuf, Output) {
    let into = env.work.parent().unwrap().join("replay");
    let mut all = vec!["replay"];
    all.extend_from_slice(args);
    all.extend(["--into", into.to_str().unwrap()]);
    let out = env.run(&all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    (into, out)
}

fn chain(env: &TestEnv) {
    env.write("in.txt", "b\na\nc\n");
    for line in [
        "sort in.txt > sorted.txt",
        "head -2 sorted.txt > top.txt",
        "tr a-z A-Z < top.txt > final.txt",
    ] {
        let out = env.line(line);
        assert_eq!(out.status.code(), Some(0), "{line}: {}", stderr(&out));
    }
}

#[test]
fn a_deterministic_chain_replays_identically_from_the_store() {
    let env = TestEnv::new();
    chain(&env);
    // The sources change after the recording: the replay must use the recorded versions.
    env.write("in.txt", "zzz\n");
    // final.txt is still the recorded content, so its chain is found.
    let (into, out) = replay_into(&env, &["final.txt", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let runs = v["runs"].as_array().unwrap();
    let commands: Vec<&str> = runs
        .iter()
        .map(|r| r["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        [
            "sort in.txt > sorted.txt",
            "head -2 sorted.txt > top.txt",
            "tr a-z A-Z < top.txt > final.txt"
        ]
    );
    for r in runs {
        let outputs = r["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0]["status"], "identical", "{r}");
    }
    assert_eq!(
        std::fs::read_to_string(into.join("in.txt")).unwrap(),
        "b\na\nc\n"
    );
    assert_eq!(
        std::fs::read_to_string(into.join("final.txt")).unwrap(),
        "A\nB\n"
    );
    assert_eq!(
        env.read("final.txt"),
        "A\nB\n",
        "the real tree is untouched"
    );
}

#[test]
fn nondeterministic_outputs_are_reported() {
    let env = TestEnv::new();
    let out = env.line("od -An -N8 -tx8 /dev/urandom > noise.txt; echo fixed > fixed.txt");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env.run(&["replay", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("1 of 2 outputs identical"), "{text}");
    assert!(
        text.contains(&format!("differs: {}", env.path("noise.txt").display())),
        "{text}"
    );
}

#[test]
fn runs_whose_inputs_left_the_store_say_so() {
    let env = TestEnv::new();
    chain(&env);
    let gc = env.run(&["store", "gc", "--keep-days", "0"]);
    assert_eq!(gc.status.code(), Some(0), "{}", stderr(&gc));
    let out = env.run(&["replay", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("not replayed"), "{}", stdout(&out));
}

#[test]
fn unknown_runs_and_paths_are_usage_errors() {
    let env = TestEnv::new();
    let out = env.run(&["replay", "42"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no run 42"), "{}", stderr(&out));
    let out = env.run(&["replay", "nope.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nope.txt"), "{}", stderr(&out));
    env.write("source.txt", "made by hand\n");
    let out = env.run(&["replay", "source.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no recorded run produced"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn replaying_script_steps_leaves_no_shell_state_behind() {
    // Script steps dump the shell state when they exit. A replay must send it where the
    // recording did (the sandbox's private /dev/shm), not into the real /tmp.
    let env = TestEnv::new();
    env.write("steps.sh", "x=b\necho \"$x\" > a.txt\nsort a.txt > s.txt\n");
    let out = env.run(&["steps.sh"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dumps = ["/tmp/.shark-state", "/tmp/.shark-env", "/tmp/.shark-names"];
    let stamp = || {
        dumps
            .iter()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect::<Vec<_>>()
    };
    let before = stamp();
    let (into, out) = replay_into(&env, &["s.txt"]);
    assert!(
        stdout(&out).contains("1 of 1 outputs identical"),
        "{}",
        stdout(&out)
    );
    assert_eq!(stamp(), before, "the replay wrote shell state into /tmp");
    assert_eq!(std::fs::read_to_string(into.join("s.txt")).unwrap(), "b\n");
}

#[test]
fn a_script_step_replays_from_the_state_its_key_holds() {
    // The step reads a shell variable and calls a function defined by earlier steps; its
    // key holds both, and the replay runs it again from them alone.
    let env = TestEnv::new();
    env.write(
        "steps.sh",
        "greet() {\n  echo \"hi $1\" > \"$out\"\n}\nout=g.txt\nunused=1\ngreet there\n",
    );
    let out = env.run(&["steps.sh"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (into, _) = replay_into(&env, &["g.txt"]);
    assert_eq!(
        std::fs::read_to_string(into.join("g.txt")).unwrap(),
        "hi there\n"
    );
}
