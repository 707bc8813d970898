//! Cache lookup, history and producer queries.

use std::time::Duration;

use shark_lineage::{NewRun, RunId, Stats};

use crate::common::{d, file_in, file_out, fresh, ok_run};

fn ids(runs: &[shark_lineage::Run]) -> Vec<i64> {
    runs.iter().map(|r| r.id.0).collect()
}

#[test]
fn candidates_are_reusable_successes_of_that_key_newest_first() {
    let (_dir, _path, mut db) = fresh();
    let good = |n: u64| NewRun {
        inputs: vec![file_in("/in", &format!("v{n}"))],
        outputs: vec![file_out("/out", &format!("o{n}"))],
        ..ok_run("make", "k", n)
    };
    db.record(&good(1)).unwrap(); // 1
    db.record(&NewRun {
        exit_code: Some(2),
        reusable: false,
        ..good(2)
    })
    .unwrap(); // 2 failed
    db.record(&NewRun {
        exit_code: None,
        signal: Some(9),
        ..good(3)
    })
    .unwrap(); // 3 killed
    db.record(&NewRun {
        network: true,
        reusable: false,
        ..good(4)
    })
    .unwrap(); // 4 network
    db.record(&good(5)).unwrap(); // 5
    db.record(&NewRun {
        reused_from: Some(RunId(5)),
        ..good(6)
    })
    .unwrap(); // 6 a reuse
    db.record(&ok_run("make", "other key", 7)).unwrap(); // 7 another command
    db.record(&NewRun {
        exit_code: Some(1),
        ..good(8)
    })
    .unwrap(); // 8 reusable but failed
    db.record(&good(9)).unwrap(); // 9

    let found = db.candidates(&d("k"), 10).unwrap();
    assert_eq!(ids(&found), [9, 5, 1]);
    assert_eq!(found[1].inputs, [file_in("/in", "v5")]);
    assert_eq!(found[1].outputs, [file_out("/out", "o5")]);
    assert!(found.iter().all(|r| r.is_candidate()));
    assert_eq!(ids(&db.candidates(&d("k"), 2).unwrap()), [9, 5]);
    assert!(db.candidates(&d("unknown"), 10).unwrap().is_empty());
}

#[test]
fn recent_lists_summaries_newest_first() {
    let (_dir, _path, mut db) = fresh();
    for i in 1..=5 {
        let run = NewRun {
            inputs: vec![file_in("/in", "x")],
            ..ok_run(&format!("step {i}"), "k", i)
        };
        db.record(&run).unwrap();
    }
    let recent = db.recent(3).unwrap();
    assert_eq!(ids(&recent), [5, 4, 3]);
    assert_eq!(recent[0].command, "step 5");
    assert!(recent[0].inputs.is_empty(), "recent() returns summaries");
    assert_eq!(ids(&db.recent(100).unwrap()), [5, 4, 3, 2, 1]);
    assert!(db.recent(0).unwrap().is_empty());
}

#[test]
fn last_and_previous_runs_of_a_command_include_reuses() {
    let (_dir, _path, mut db) = fresh();
    db.record(&ok_run("a", "k", 1)).unwrap(); // 1
    db.record(&ok_run("b", "other", 2)).unwrap(); // 2
    db.record(&NewRun {
        inputs: vec![file_in("/x", "x")],
        ..ok_run("a", "k", 3)
    })
    .unwrap();
    db.record(&NewRun {
        reused_from: Some(RunId(3)),
        ..ok_run("a", "k", 4)
    })
    .unwrap(); // 4

    let last = db.last_run_of(&d("k")).unwrap().unwrap();
    assert_eq!((last.id, last.cached), (RunId(4), true));
    let prev = db.previous_run_of(&d("k"), RunId(4)).unwrap().unwrap();
    assert_eq!(prev.id, RunId(3));
    assert_eq!(prev.inputs, [file_in("/x", "x")]);
    let first = db.previous_run_of(&d("k"), RunId(3)).unwrap().unwrap();
    assert_eq!(first.id, RunId(1));
    assert_eq!(db.previous_run_of(&d("k"), RunId(1)).unwrap(), None);
    assert_eq!(db.last_run_of(&d("nothing")).unwrap(), None);
}

#[test]
fn producers_of_content_are_found_by_path() {
    let (_dir, _path, mut db) = fresh();
    let writes = |cmd: &str, path: &str, content: &str, secs| NewRun {
        outputs: vec![file_out("/unrelated", cmd), file_out(path, content)],
        ..ok_run(cmd, cmd, secs)
    };
    db.record(&writes("cp 1", "/a.txt", "hello", 1)).unwrap(); // 1
    db.record(&writes("cp 2", "/b.txt", "hello", 2)).unwrap(); // 2
    db.record(&writes("cp 3", "/a.txt", "bye", 3)).unwrap(); // 3
    let reuse = NewRun {
        reused_from: Some(RunId(2)),
        ..writes("cp 2", "/b.txt", "hello", 4)
    };
    db.record(&reuse).unwrap(); // 4, a reuse: never a producer

    let all = db.producers_of(&d("hello")).unwrap();
    let got: Vec<(i64, &str)> = all.iter().map(|(r, o)| (r.id.0, o.path.as_str())).collect();
    assert_eq!(got, [(2, "/b.txt"), (1, "/a.txt")]);
    assert_eq!(all[0].1, file_out("/b.txt", "hello"));

    let same_path = db.producer_of("/a.txt", &d("hello")).unwrap().unwrap();
    assert_eq!(same_path.id, RunId(1));
    assert_eq!(db.producer_of("/c.txt", &d("hello")).unwrap(), None);
    assert_eq!(db.producer_of("/a.txt", &d("never written")).unwrap(), None);
}

#[test]
fn runs_reading_and_writing_a_path() {
    let (_dir, _path, mut db) = fresh();
    let step = |cmd: &str, reads: &str, writes: &str, secs| NewRun {
        inputs: vec![file_in(reads, "in")],
        outputs: vec![file_out(writes, cmd)],
        ..ok_run(cmd, cmd, secs)
    };
    db.record(&step("one", "/src", "/mid", 1)).unwrap();
    db.record(&step("two", "/mid", "/out", 2)).unwrap();
    db.record(&step("three", "/mid", "/mid", 3)).unwrap();
    assert_eq!(ids(&db.runs_reading("/mid").unwrap()), [3, 2]);
    assert_eq!(ids(&db.runs_writing("/mid").unwrap()), [3, 1]);
    assert!(db.runs_reading("/out").unwrap().is_empty());
}

#[test]
fn runs_reading_a_system_file_are_found_without_the_path_index() {
    // The path index leaves system files out (schema version 4); asking about one must still
    // find every reader, and a user file next to such names must not be confused with them.
    let (_dir, _path, mut db) = fresh();
    let step = |cmd: &str, reads: &[&str], secs| NewRun {
        inputs: reads.iter().map(|p| file_in(p, "in")).collect(),
        ..ok_run(cmd, cmd, secs)
    };
    db.record(&step(
        "one",
        &["/usr/lib/libc.so.6", "/home/u/usr/lib/x"],
        1,
    ))
    .unwrap();
    db.record(&step("two", &["/usr/lib/libc.so.6", "/etc/passwd"], 2))
        .unwrap();
    db.record(&step("three", &["/usr", "/home/u/usr/lib/x"], 3))
        .unwrap();
    assert_eq!(ids(&db.runs_reading("/usr/lib/libc.so.6").unwrap()), [2, 1]);
    assert_eq!(ids(&db.runs_reading("/etc/passwd").unwrap()), [2]);
    assert_eq!(ids(&db.runs_reading("/home/u/usr/lib/x").unwrap()), [3, 1]);
    assert_eq!(ids(&db.runs_reading("/usr").unwrap()), [3]);
    assert!(db.runs_reading("/usr/lib").unwrap().is_empty());
}

#[test]
fn stats_count_reuses_and_the_time_they_saved() {
    let (_dir, _path, mut db) = fresh();
    assert_eq!(db.stats().unwrap(), Stats::default());
    let slow = NewRun {
        duration: Duration::from_secs(60),
        ..ok_run("slow", "s", 1)
    };
    let fast = NewRun {
        duration: Duration::from_millis(500),
        ..ok_run("fast", "f", 2)
    };
    let s = db.record(&slow).unwrap();
    let f = db.record(&fast).unwrap();
    for (i, from) in [s, s, f].into_iter().enumerate() {
        let reuse = NewRun {
            reused_from: Some(from),
            duration: Duration::from_millis(2),
            ..ok_run("r", "r", 10 + i as u64)
        };
        db.record(&reuse).unwrap();
    }
    let stats = db.stats().unwrap();
    assert_eq!(stats.runs, 5);
    assert_eq!(stats.reused, 3);
    assert_eq!(stats.time_saved, Duration::from_millis(120_500));
}

#[test]
fn referenced_digests_cover_kept_runs_and_what_they_reused() {
    use shark_lineage::{Input, InputKind};
    use std::collections::HashSet;

    let (_dir, _path, mut db) = fresh();
    let old = NewRun {
        inputs: vec![
            file_in("/old/in", "old in"),
            Input {
                path: "/old".into(),
                kind: InputKind::Dir,
                digest: Some(d("listing")),
                mode: None,
                exclude: Vec::new(),
                as_left: shark_lineage::AsLeft::No,
            },
        ],
        outputs: vec![file_out("/old/out", "old out")],
        stdout: Some(d("old stdout")),
        ..ok_run("old", "old", 1)
    };
    db.record(&old).unwrap(); // 1
    db.record(&NewRun {
        outputs: vec![file_out("/gone", "gone")],
        ..ok_run("x", "x", 2)
    })
    .unwrap(); // 2, old and never reused
    let recent = NewRun {
        inputs: vec![Input {
            path: "<stdin>".into(),
            kind: InputKind::Stdin,
            digest: Some(d("in")),
            mode: None,
            exclude: Vec::new(),
            as_left: shark_lineage::AsLeft::No,
        }],
        stderr: Some(d("new stderr")),
        shell_state: Some(d("state")),
        ..ok_run("new", "new", 100)
    };
    db.record(&recent).unwrap(); // 3
    db.record(&NewRun {
        reused_from: Some(RunId(1)),
        ..ok_run("old", "old", 101)
    })
    .unwrap();

    let since = crate::common::at(50);
    let kept = db.referenced_digests(Some(since)).unwrap();
    // Every run here has the environment digest d("env"), kept with them.
    let want: HashSet<_> = [
        "old in",
        "old out",
        "old stdout",
        "in",
        "new stderr",
        "env",
        "state",
    ]
    .iter()
    .map(|t| d(t))
    .collect();
    assert_eq!(kept, want);
    let all = db.referenced_digests(None).unwrap();
    assert_eq!(all.len(), want.len() + 1);
    assert!(all.contains(&d("gone")));
}

#[test]
fn unit_states_are_found_through_the_units_that_ran_or_reused_a_run() {
    use shark_lineage::{InputKind, PathState, UnitState};
    let (_dir, _path, mut db) = fresh();
    // Unit A: runs 1 (its first) and 2. Unit B: run 3, then a reuse of run 2 (run 4).
    let r1 = db.record(&ok_run("step one", "k1", 1)).unwrap();
    let r2 = db
        .record(&NewRun {
            unit: Some(r1),
            ..ok_run("step two", "k2", 2)
        })
        .unwrap();
    let r3 = db.record(&ok_run("other", "k3", 3)).unwrap();
    db.record(&NewRun {
        unit: Some(r3),
        reused_from: Some(r2),
        reusable: false,
        ..ok_run("step two", "k2", 4)
    })
    .unwrap();
    let listing = |s: &str| PathState::Listing { digest: d(s) };
    let state = |p: &str, s| UnitState {
        path: p.into(),
        state: s,
    };
    db.record_unit_states(r1, &[state("/w", listing("a"))])
        .unwrap();
    db.record_unit_states(r1, &[state("/w", listing("a2"))])
        .unwrap(); // replaced
    db.record_unit_states(r3, &[state("/w", listing("b"))])
        .unwrap();
    let file = PathState::Entry {
        kind: InputKind::File,
        digest: Some(d("f")),
    };
    db.record_unit_states(r3, &[state("/w/f", file)]).unwrap();
    let mut states = db.unit_states_for(r2, "/w").unwrap();
    states.sort_by_key(|s| format!("{s:?}"));
    let mut want = vec![listing("a2"), listing("b")];
    want.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(states, want);
    assert_eq!(db.unit_states_for(r2, "/w/f").unwrap(), [file]);
    // Run 1's own unit only.
    assert_eq!(db.unit_states_for(r1, "/w").unwrap(), [listing("a2")]);
    assert_eq!(db.unit_states_for(r3, "/nowhere").unwrap(), []);
    // A run whose id is a unit's but that is no longer there: nothing.
    assert_eq!(db.run(r2).unwrap().unit, r1);
    assert_eq!(db.run(r3).unwrap().unit, r3);
}

#[test]
fn a_run_marked_unreusable_is_no_candidate_and_says_why() {
    let (_dir, _path, mut db) = fresh();
    let id = db.record(&ok_run("edit", "k", 1)).unwrap();
    assert_eq!(db.candidates(&d("k"), 5).unwrap().len(), 1);
    db.mark_unreusable(id, "its change of /w/f was not applied")
        .unwrap();
    assert!(db.candidates(&d("k"), 5).unwrap().is_empty());
    assert_eq!(
        db.run(id).unwrap().unreusable.as_deref(),
        Some("its change of /w/f was not applied")
    );
}
