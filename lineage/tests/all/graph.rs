//! The lineage graph.

use shark_lineage::{Db, LineageNode, LineageOptions, NewRun};

use crate::common::{d, file_in, file_out, fresh, ok_run};

/// One line per node: indentation, path, content, producing run (or `source`), `shared`.
fn render(node: &LineageNode) -> String {
    fn walk(n: &LineageNode, depth: usize, out: &mut String) {
        let content = n
            .digest
            .map(|x| x == d(&content_of(&n.path)))
            .unwrap_or(false);
        let run = n
            .run
            .as_ref()
            .map_or("source".to_string(), |r| format!("run {}", r.id));
        let shared = if n.shared { " shared" } else { "" };
        let mark = if content { "" } else { " (older content)" };
        out.push_str(&format!(
            "{}{} {run}{shared}{mark}\n",
            "  ".repeat(depth),
            n.path
        ));
        for c in &n.inputs {
            walk(c, depth + 1, out);
        }
    }
    let mut out = String::new();
    walk(node, 0, &mut out);
    out
}

/// The content each test file holds "now": its name in capitals.
fn content_of(path: &str) -> String {
    path.rsplit('/').next().unwrap().to_uppercase()
}

fn step(db: &mut Db, cmd: &str, secs: u64, reads: &[&str], writes: &[&str]) {
    let run = NewRun {
        inputs: reads.iter().map(|p| file_in(p, &content_of(p))).collect(),
        outputs: writes.iter().map(|p| file_out(p, &content_of(p))).collect(),
        ..ok_run(cmd, cmd, secs)
    };
    db.record(&run).unwrap();
}

fn opts(include_system: bool, max_depth: usize) -> LineageOptions {
    LineageOptions {
        include_system,
        max_depth,
    }
}

/// a.txt <- run 1 (raw.csv, python3); b.txt <- run 2 (a.txt, params);
/// c.txt <- run 3 (b.txt, a.txt): run 1 is shared by two paths of the DAG.
fn pipeline() -> (tempfile::TempDir, Db) {
    let (dir, _path, mut db) = fresh();
    step(
        &mut db,
        "gen",
        1,
        &["/src/raw.csv", "/usr/bin/python3"],
        &["/w/a.txt"],
    );
    step(&mut db, "b", 2, &["/w/a.txt", "/src/params"], &["/w/b.txt"]);
    step(&mut db, "c", 3, &["/w/b.txt", "/w/a.txt"], &["/w/c.txt"]);
    (dir, db)
}

#[test]
fn a_chain_of_three_runs_with_a_shared_input() {
    let (_dir, db) = pipeline();
    let tree = db
        .lineage("/w/c.txt", &d("C.TXT"), &opts(false, 64))
        .unwrap();
    assert_eq!(
        render(&tree),
        "/w/c.txt run 3\n\
         \x20 /w/b.txt run 2\n\
         \x20   /w/a.txt run 1\n\
         \x20     /src/raw.csv source\n\
         \x20   /src/params source\n\
         \x20 /w/a.txt run 1 shared\n"
    );
    let run = tree.run.as_ref().unwrap();
    assert_eq!(run.command, "c");
    assert!(run.inputs.is_empty(), "runs in the tree are summaries");
}

#[test]
fn system_inputs_are_leaves_only_when_asked() {
    let (_dir, db) = pipeline();
    let tree = db
        .lineage("/w/a.txt", &d("A.TXT"), &opts(true, 64))
        .unwrap();
    assert_eq!(
        render(&tree),
        "/w/a.txt run 1\n  /src/raw.csv source\n  /usr/bin/python3 source\n"
    );
    let tree = db
        .lineage("/w/a.txt", &d("A.TXT"), &opts(false, 64))
        .unwrap();
    assert_eq!(render(&tree), "/w/a.txt run 1\n  /src/raw.csv source\n");
}

#[test]
fn depth_limits_how_many_producing_runs_are_followed() {
    let (_dir, db) = pipeline();
    let tree = db
        .lineage("/w/c.txt", &d("C.TXT"), &opts(false, 1))
        .unwrap();
    assert_eq!(render(&tree), "/w/c.txt run 3\n");
    let tree = db
        .lineage("/w/c.txt", &d("C.TXT"), &opts(false, 0))
        .unwrap();
    assert_eq!(render(&tree), "/w/c.txt run 3\n");
    let tree = db
        .lineage("/w/c.txt", &d("C.TXT"), &opts(false, 2))
        .unwrap();
    assert_eq!(
        render(&tree),
        "/w/c.txt run 3\n  /w/b.txt run 2\n  /w/a.txt run 1\n"
    );
}

#[test]
fn content_nobody_produced_is_a_source() {
    let (_dir, db) = pipeline();
    let tree = db
        .lineage("/w/c.txt", &d("edited by hand"), &opts(false, 64))
        .unwrap();
    assert_eq!(tree.run, None);
    assert_eq!(tree.digest, Some(d("edited by hand")));
    assert!(tree.inputs.is_empty());
}

#[test]
fn content_equal_to_an_output_elsewhere_is_still_a_source() {
    let (_dir, db) = pipeline();
    // Nobody wrote /tmp/copy.txt; that its content equals a.txt's (which run 1 wrote) does not
    // make run 1 its producer: an empty or common file would otherwise be claimed by any run
    // that happened to write the same bytes.
    let tree = db
        .lineage("/tmp/copy.txt", &d("A.TXT"), &opts(false, 64))
        .unwrap();
    assert_eq!(tree.run, None);
}

#[test]
fn cycles_terminate_by_following_only_earlier_producers() {
    let (_dir, _path, mut db) = fresh();
    // Run 1 turns x from X1 into X2; run 2 turns it back; run 3 rewrites y unchanged.
    let flip = |from: &str, to: &str, secs| NewRun {
        inputs: vec![file_in("/w/x", from)],
        outputs: vec![file_out("/w/x", to)],
        ..ok_run("flip", "flip", secs)
    };
    db.record(&flip("X1", "X2", 1)).unwrap();
    db.record(&flip("X2", "X1", 2)).unwrap();
    db.record(&NewRun {
        inputs: vec![file_in("/w/y", "Y")],
        outputs: vec![file_out("/w/y", "Y")],
        ..ok_run("sort -o y y", "sort", 3)
    })
    .unwrap();

    let tree = db.lineage("/w/x", &d("X1"), &opts(false, 64)).unwrap();
    let chain: Vec<Option<i64>> = std::iter::successors(Some(&tree), |n| n.inputs.first())
        .map(|n| n.run.as_ref().map(|r| r.id.0))
        .collect();
    assert_eq!(chain, [Some(2), Some(1), None]);

    let tree = db.lineage("/w/y", &d("Y"), &opts(false, 64)).unwrap();
    assert_eq!(tree.run.as_ref().map(|r| r.id.0), Some(3));
    assert_eq!(tree.inputs.len(), 1);
    assert_eq!(tree.inputs[0].run, None);
}

#[test]
fn runs_started_at_the_same_instant_are_ordered_by_id() {
    let (_dir, _path, mut db) = fresh();
    step(&mut db, "p", 5, &[], &["/w/p"]);
    step(&mut db, "q", 5, &["/w/p"], &["/w/q"]);
    let tree = db.lineage("/w/q", &d("Q"), &opts(false, 64)).unwrap();
    assert_eq!(render(&tree), "/w/q run 2\n  /w/p run 1\n");
}

#[test]
fn a_wide_diamond_history_stays_small() {
    let (_dir, _path, mut db) = fresh();
    // 12 layers of two runs, each reading both outputs of the layer below: a tree that
    // expanded shared runs would have 2^12 leaves.
    step(&mut db, "base", 0, &[], &["/w/l0a", "/w/l0b"]);
    for layer in 1..=12u64 {
        let below = [format!("/w/l{}a", layer - 1), format!("/w/l{}b", layer - 1)];
        let reads: Vec<&str> = below.iter().map(String::as_str).collect();
        for side in ["a", "b"] {
            let out = format!("/w/l{layer}{side}");
            step(&mut db, &format!("l{layer}{side}"), layer, &reads, &[&out]);
        }
    }
    let tree = db.lineage("/w/l12a", &d("L12A"), &opts(false, 64)).unwrap();
    fn count(n: &LineageNode) -> usize {
        1 + n.inputs.iter().map(count).sum::<usize>()
    }
    // The root, then two input nodes for each run expanded once: l12a and the 22 runs of
    // layers 1 to 11 (base reads nothing).
    assert_eq!(count(&tree), 1 + 2 * 23);
}
