//! Browsing queries: filtered pages of the log, the versions of a path, reuses of a run.

use shark_lineage::{NewRun, OutputKind, RunFilter, RunId, RunOutcome};

use crate::common::{file_out, fresh, ok_run};

fn ids(runs: &[shark_lineage::Run]) -> Vec<i64> {
    runs.iter().map(|r| r.id.0).collect()
}

#[test]
fn filtered_pages_walk_back_from_the_newest() {
    let (_dir, _path, mut db) = fresh();
    for n in 1..=6u64 {
        let command = if n % 2 == 0 {
            "sort a_b.txt"
        } else {
            "wc -l 100%"
        };
        let mut run = ok_run(command, command, n);
        if n == 5 {
            run.exit_code = Some(3);
        }
        if n == 6 {
            run.reused_from = Some(RunId(4));
        }
        db.record(&run).unwrap();
    }
    let page = |text: &str, outcome, before: Option<i64>, limit| {
        let filter = RunFilter {
            text: text.into(),
            outcome,
            before: before.map(RunId),
        };
        ids(&db.runs_where(&filter, limit).unwrap())
    };
    assert_eq!(page("", RunOutcome::All, None, 10), [6, 5, 4, 3, 2, 1]);
    assert_eq!(page("", RunOutcome::All, None, 2), [6, 5]);
    assert_eq!(page("", RunOutcome::All, Some(5), 2), [4, 3]);
    assert_eq!(page("sort", RunOutcome::All, None, 10), [6, 4, 2]);
    // `_` and `%` are literal text, not LIKE wildcards.
    assert_eq!(page("a_b", RunOutcome::All, None, 10), [6, 4, 2]);
    assert_eq!(page("aXb", RunOutcome::All, None, 10), Vec::<i64>::new());
    assert_eq!(page("100%", RunOutcome::All, None, 10), [5, 3, 1]);
    assert_eq!(page("", RunOutcome::Reused, None, 10), [6]);
    assert_eq!(page("sort", RunOutcome::Ran, None, 10), [4, 2]);
    assert_eq!(page("", RunOutcome::Failed, None, 10), [5]);
}

#[test]
fn versions_of_a_path_are_each_runs_last_change_newest_first() {
    let (_dir, _path, mut db) = fresh();
    let write = |content: &str, n| NewRun {
        outputs: vec![file_out("/w/out.csv", content)],
        ..ok_run("make", "k", n)
    };
    db.record(&write("v1", 1)).unwrap();
    // Writes the path twice: only the last change is its version.
    db.record(&NewRun {
        outputs: vec![file_out("/w/out.csv", "tmp"), file_out("/w/out.csv", "v2")],
        ..ok_run("make", "k", 2)
    })
    .unwrap();
    // A reuse writes nothing of its own.
    db.record(&NewRun {
        reused_from: Some(RunId(2)),
        ..write("v2", 3)
    })
    .unwrap();
    let mut deleted = file_out("/w/out.csv", "x");
    deleted.kind = OutputKind::Deleted;
    deleted.digest = None;
    db.record(&NewRun {
        outputs: vec![deleted],
        ..ok_run("rm out.csv", "rm", 4)
    })
    .unwrap();
    db.record(&write("elsewhere", 5)).unwrap();
    let versions = db.versions_of("/w/out.csv").unwrap();
    let got: Vec<(i64, OutputKind, Option<String>)> = versions
        .iter()
        .map(|(r, o)| (r.id.0, o.kind, o.digest.map(|d| d.to_string())))
        .collect();
    let hex = |s: &str| Some(crate::common::d(s).to_string());
    assert_eq!(
        got,
        [
            (5, OutputKind::File, hex("elsewhere")),
            (4, OutputKind::Deleted, None),
            (2, OutputKind::File, hex("v2")),
            (1, OutputKind::File, hex("v1")),
        ]
    );
    assert!(db.versions_of("/w/other").unwrap().is_empty());
}

#[test]
fn reuses_of_a_run() {
    let (_dir, _path, mut db) = fresh();
    db.record(&ok_run("make", "k", 1)).unwrap();
    for n in 2..=4 {
        db.record(&NewRun {
            reused_from: Some(RunId(1)),
            ..ok_run("make", "k", n)
        })
        .unwrap();
    }
    assert_eq!(ids(&db.reuses_of(RunId(1), 2).unwrap()), [4, 3]);
    assert!(db.reuses_of(RunId(4), 10).unwrap().is_empty());
}
