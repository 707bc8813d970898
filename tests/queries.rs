//! The lineage queries: `shark log`, `show`, `lineage` and `why`, and their errors.

use crate::common::{stderr, stdout, TestEnv};

fn ok(env: &TestEnv, line: &str) {
    let out = env.line(line);
    assert_eq!(out.status.code(), Some(0), "{line}: {}", stderr(&out));
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    serde_json::from_str(&stdout(out)).unwrap()
}

/// in.txt -> sorted.txt -> top.txt
fn chain(env: &TestEnv) {
    env.write("in.txt", "b\na\nc\n");
    ok(env, "sort in.txt > sorted.txt");
    ok(env, "head -2 sorted.txt > top.txt");
}

#[test]
fn log_lists_runs_newest_first_as_json_lines() {
    let env = TestEnv::new();
    chain(&env);
    ok(&env, "sort in.txt > sorted.txt");
    let out = env.run(&["log", "--json", "-n", "2"]);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let newest = &lines[0];
    assert_eq!(newest["id"], 3);
    assert_eq!(newest["command"], "sort in.txt > sorted.txt");
    assert_eq!(newest["cwd"], env.work.to_str().unwrap());
    assert_eq!(newest["exit_code"], 0);
    assert_eq!(newest["cached"], true);
    assert_eq!(newest["reused_from"], 1);
    assert!(newest["started"].as_str().unwrap().ends_with('Z'));
    assert!(newest["duration_ms"].is_u64());
    assert_eq!(lines[1]["id"], 2);
    assert_eq!(lines[1]["cached"], false);

    let text = stdout(&env.run(&["log"]));
    assert_eq!(text.lines().count(), 4, "a header and three runs: {text}");
    assert!(text.lines().nth(1).unwrap().contains("reused #1"), "{text}");
}

#[test]
fn show_lists_inputs_and_outputs() {
    let env = TestEnv::new();
    env.write("in.txt", "x\n");
    ok(&env, "test -e missing.txt; cat in.txt > out.txt");
    let run = json(&env.run(&["show", "1", "--json"]));
    let find = |list: &str, path: &str| -> serde_json::Value {
        run[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["path"] == path)
            .cloned()
            .unwrap_or_else(|| panic!("{path} not among {list}: {run}"))
    };
    let input = find("inputs", env.path("in.txt").to_str().unwrap());
    assert_eq!(input["kind"], "file");
    assert_eq!(input["digest"].as_str().unwrap().len(), 64);
    let absent = find("inputs", env.path("missing.txt").to_str().unwrap());
    assert_eq!(absent["kind"], "absent");
    assert!(absent["digest"].is_null());
    let bash = find("inputs", "/usr/bin/bash");
    assert_eq!(bash["kind"], "file", "system files are inputs too");
    let output = find("outputs", env.path("out.txt").to_str().unwrap());
    assert_eq!(output["kind"], "file");
    assert!(run["outputs"].as_array().unwrap().len() == 1, "{run}");

    let text = stdout(&env.run(&["show", "1"]));
    assert!(text.contains("cat in.txt > out.txt"), "{text}");
}

#[test]
fn lineage_follows_producers_back_to_sources() {
    let env = TestEnv::new();
    chain(&env);
    let tree = json(&env.run(&["lineage", "top.txt", "--json"]));
    assert_eq!(tree["path"], env.path("top.txt").to_str().unwrap());
    assert_eq!(tree["run"]["command"], "head -2 sorted.txt > top.txt");
    let inputs = tree["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 1, "{tree}");
    assert_eq!(inputs[0]["run"]["command"], "sort in.txt > sorted.txt");
    let sources = inputs[0]["inputs"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "{tree}");
    assert_eq!(sources[0]["path"], env.path("in.txt").to_str().unwrap());
    assert!(sources[0]["run"].is_null());

    let text = stdout(&env.run(&["lineage", "top.txt"]));
    assert!(text.contains("head -2 sorted.txt > top.txt"), "{text}");
    assert!(text.contains("source"), "{text}");
    let dot = stdout(&env.run(&["lineage", "top.txt", "--dot"]));
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("sort in.txt > sorted.txt"), "{dot}");

    // Edited by hand: the current content has no producer, and lineage says so.
    env.write("top.txt", "edited\n");
    let text = stdout(&env.run(&["lineage", "top.txt"]));
    assert!(
        text.contains("no recorded run produced its current content"),
        "{text}"
    );
}

#[test]
fn why_names_the_changed_input_the_key_change_or_the_reuse() {
    let env = TestEnv::new();
    chain(&env);
    let why = stdout(&env.run(&["why", "sorted.txt"]));
    assert!(why.contains("no earlier successful run"), "{why}");

    ok(&env, "sort in.txt > sorted.txt");
    let why = stdout(&env.run(&["why", "3"]));
    assert!(why.contains("reused run 1"), "{why}");
    assert!(why.contains("saving"), "{why}");

    env.write("in.txt", "z\n");
    ok(&env, "sort in.txt > sorted.txt");
    let why = stdout(&env.run(&["why", "sorted.txt"]));
    assert!(
        why.contains(&format!(
            "{} changed since run",
            env.path("in.txt").display()
        )),
        "{why}"
    );
    assert!(
        why.contains("it was file") && why.contains("it is now file"),
        "{why}"
    );

    let out = env.run(&["--fresh", "-c", "sort in.txt > sorted.txt"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&env.run(&["why", "sorted.txt"])).contains("--fresh"));

    let out = env
        .shark()
        .env("SORT_MODE", "x")
        .args(["-c", "sort in.txt > sorted.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let why = stdout(&env.run(&["why", "sorted.txt"]));
    assert!(why.contains("variable SORT_MODE is new"), "{why}");
}

#[test]
fn unknown_runs_paths_and_bad_options_exit_2() {
    let env = TestEnv::new();
    chain(&env);
    for args in [
        &["show", "99"][..],
        &["show", "abc"],
        &["why", "99"],
        &["why", "nope.txt"],
        &["lineage", "nope.txt"],
        &["log", "-n", "many"],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?}");
    }
    let out = env.run(&["show", "99"]);
    assert!(stderr(&out).contains("no run 99"), "{}", stderr(&out));
    env.write("untouched.txt", "never used\n");
    let out = env.run(&["lineage", "untouched.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("untouched.txt"), "{}", stderr(&out));
}

#[test]
fn queries_work_from_inside_sharks_shell_and_commands_say_why_not() {
    // Inside a step the shark home is bound read-only: the queries open the database
    // read-only; running a command through shark again says what to do instead.
    let env = TestEnv::new();
    let bin = env.work.parent().unwrap().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_shark"), bin.join("shark")).unwrap();
    env.write(
        "q.sh",
        "echo hi > a.txt\nshark log -n 1\nshark why a.txt\nshark -c 'echo nested'\necho \"status $?\"\n",
    );
    let out = env
        .shark()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .arg("q.sh")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("echo hi > a.txt"), "{text}{}", stderr(&out));
    assert!(text.contains("ran because"), "{text}");
    assert!(text.ends_with("status 1\n"), "{text}");
    assert!(
        stderr(&out).contains("Read-only file system") && stderr(&out).contains("inside shark"),
        "{}",
        stderr(&out)
    );
    // A step that queried the database is never reused: what it printed depends on what
    // was recorded since.
    let out = env
        .shark()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .arg("q.sh")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = env.log();
    let log_steps: Vec<_> = log
        .iter()
        .filter(|r| r["command"] == "shark log -n 1")
        .collect();
    assert_eq!(log_steps.len(), 2);
    assert!(
        log_steps.iter().all(|r| r["cached"] == false),
        "{log_steps:?}"
    );
}

#[test]
fn log_has_a_header_aligned_columns_and_filters() {
    let env = TestEnv::new();
    for line in ["echo a > a.txt", "false", "cat a.txt", "cat a.txt"] {
        let _ = env.line(line);
    }
    let text = stdout(&env.run(&["log"]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("RUN  STARTED"), "{text}");
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[1].contains("reused #3") && lines[1].ends_with("cat a.txt"),
        "{text}"
    );
    assert!(lines[3].contains("exit 1"), "{text}");
    // Every row's status starts in the header's STATUS column.
    let column = lines[0].find("STATUS").unwrap();
    for l in &lines[1..] {
        assert_ne!(l.as_bytes()[column], b' ', "{text}");
        assert_eq!(l.as_bytes()[column - 1], b' ', "{text}");
    }
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["log"];
        all.extend(args);
        stdout(&env.run(&all))
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&["--failed"]), ["2"]);
    assert_eq!(ids(&["--path", "a.txt"]), ["3", "1"]);
    assert_eq!(ids(&["--grep", "cat", "-n", "1"]), ["4"]);
    assert_eq!(ids(&["--since", "1h"]).len(), 4);
    assert!(ids(&["--since", "2999-01-01"]).is_empty());
    let out = env.run(&["log", "--since", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn show_without_a_run_is_the_latest() {
    let env = TestEnv::new();
    ok(&env, "echo first");
    ok(&env, "echo second");
    let out = env.run(&["show"]);
    assert!(
        stdout(&out).starts_with("run 2  echo second\n"),
        "{}",
        stdout(&out)
    );
    let empty = TestEnv::new();
    let out = empty.run(&["show"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn an_earlier_version_comes_back_by_run_or_by_digest() {
    let env = TestEnv::new();
    ok(&env, "echo one > f.txt");
    ok(&env, "echo two > f.txt");
    ok(&env, "wc -c < f.txt > n.txt");
    assert_eq!(env.read("f.txt"), "two\n");
    // The version run 1 wrote.
    let out = env.run(&["restore", "f.txt", "--run", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.read("f.txt"), "one\n");
    // The version run 3 read.
    let out = env.run(&["restore", "f.txt", "--run", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.read("f.txt"), "two\n");
    let out = env.run(&["restore", "n.txt", "--run", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("neither wrote nor read"),
        "{}",
        stderr(&out)
    );
    // The blob itself, by a prefix of its digest.
    let run = json(&env.run(&["show", "1", "--json"]));
    let digest = run["outputs"][0]["digest"].as_str().unwrap().to_owned();
    let out = env.run(&["store", "cat", &digest[..10]]);
    assert_eq!(stdout(&out), "one\n", "{}", stderr(&out));
    let out = env.run(&["store", "cat", "0000000000"]);
    assert_eq!(out.status.code(), Some(2));
}
