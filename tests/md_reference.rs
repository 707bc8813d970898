//! Documents written for the reference Shark, run unchanged: `/data` paths (the document's
//! data folder bound at `/data`), `shark-run:ALIAS` info strings, `%{NAME}` template
//! variables, `-i NAME=PATH`, `-e KEY=VALUE`, `.git` imports, `shark template`, and
//! independent blocks run at once with `-j`.

use std::process::Command;

use shark_lineage::RunId;

use crate::common::{stderr, stdout, TestEnv};
use crate::md::Server;

/// A reference-style document: a named `/data` input, a template variable, an environment
/// alias on every run block, a first block that prepares, two independent heavy blocks and
/// one that joins them.
const DOC: &str = "---
inputs:
  nums: /data/in/nums.txt
scale: 10
---

# Scaling

```shark-run:gdal-env
mkdir -p /data/out
```

```shark-run:gdal-env
sleep 2; awk '{ print $1 * %{scale} }' /data/in/nums.txt > /data/out/scaled.txt
```

```shark-run:gdal-env
sleep 2; sort -n /data/in/nums.txt > /data/out/sorted.txt
```

```shark-run:gdal-env
paste /data/out/sorted.txt /data/out/scaled.txt
```
";

fn md(env: &TestEnv, args: &[&str]) -> String {
    let out = env.run(&[&["md"], args].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stderr(&out)
}

/// The two heavy blocks' runs of the last `shark md`, as (start, end) in nanoseconds.
fn heavy_runs(env: &TestEnv) -> Vec<(u128, u128)> {
    let db = shark_lineage::Db::open(&env.home.join("lineage.db")).unwrap();
    let log = env.log();
    log.iter()
        .rev()
        .filter(|r| r["command"].as_str().unwrap().starts_with("sleep 2;"))
        .take(2)
        .map(|r| {
            let run = db.run(RunId(r["id"].as_i64().unwrap())).unwrap();
            let start = run
                .started
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            (start, start + run.duration.as_nanos())
        })
        .collect()
}

#[test]
fn a_reference_document_runs_with_data_paths_templates_and_parallel_blocks() {
    let env = TestEnv::new();
    env.write("doc.md", DOC);
    env.write("given/nums.txt", "3\n1\n2\n");
    let given = env.path("given/nums.txt");
    // The first run knows no lineage yet: one block after another.
    let err = md(
        &env,
        &[
            "-j",
            "2",
            "-i",
            &format!("nums={}", given.display()),
            "doc.md",
        ],
    );
    assert!(err.contains("5 ran, 0 reused"), "{err}");
    let data = env.path("doc.data");
    assert_eq!(env.read("doc.data/out/scaled.txt"), "30\n10\n20\n");
    assert!(
        !std::path::Path::new("/data").exists(),
        "the host's / is untouched"
    );
    let processed = env.read("doc.out.md");
    assert!(processed.contains("1\t30\n2\t10\n3\t20\n"), "{processed}");
    // Accesses under /data are recorded under the data folder's host path.
    let out = env.run(&["lineage", "doc.data/out/scaled.txt"]);
    let tree = stdout(&out);
    assert!(
        tree.contains(&format!("{}/in/nums.txt", data.display())),
        "{tree}"
    );
    assert!(tree.contains("awk '{ print $1 * 10 }'"), "{tree}");

    // Forced to run again, the two independent blocks run at once: their runs overlap.
    md(&env, &["-j", "2", "--fresh", "doc.md"]);
    let runs = heavy_runs(&env);
    let overlap = runs[0].0 < runs[1].1 && runs[1].0 < runs[0].1;
    assert!(overlap, "the blocks ran one after the other: {runs:?}");
    // With -j 1 they do not.
    md(&env, &["-j", "1", "--fresh", "doc.md"]);
    let runs = heavy_runs(&env);
    assert!(runs[0].0 >= runs[1].1 || runs[1].0 >= runs[0].1, "{runs:?}");

    // Then everything is reused.
    let err = md(&env, &["-j", "2", "doc.md"]);
    assert!(err.contains("0 ran, 4 reused"), "{err}");
}

#[test]
fn overrides_of_exports_and_inputs() {
    let env = TestEnv::new();
    env.write(
        "doc.md",
        "---\ninputs:\n  table: /data/t.csv\n---\n\n```shark-run\nexport MODE=slow\necho $MODE > /data/mode.txt\nwc -l < /data/t.csv > /data/n.txt\n```\n",
    );
    env.write("t.csv", "a\nb\n");
    let out = env.run(&["md", "doc.md"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("input `/data/t.csv` does not exist"),
        "{}",
        stderr(&out)
    );
    md(&env, &["-e", "MODE=fast", "-i", "table=t.csv", "doc.md"]);
    assert_eq!(env.read("doc.data/mode.txt"), "fast\n");
    assert_eq!(env.read("doc.data/n.txt"), "2\n");
    let err = md(&env, &["-e", "NOPE=1", "doc.md"]);
    assert!(err.contains("-e NOPE: doc.md sets no `NOPE`"), "{err}");
    assert_eq!(env.read("doc.data/mode.txt"), "slow\n");
    let out = env.run(&["md", "-i", "other=t.csv", "doc.md"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("its inputs are: table"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn template_writes_one_document_per_combination() {
    let env = TestEnv::new();
    env.write(
        "template.md",
        "---\npath_prefix: /var/\nproject_ids:\n  - 1234\n  - 4321\n---\n\n```shark-run\n$ echo %{project_ids} > %{path_prefix}%{project_ids}.txt\n```\n",
    );
    let out = env.run(&["template", "template.md", "--output-dir", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = env.read("out/template_1234__var_.md");
    assert!(doc.contains("$ echo 1234 > /var/1234.txt"), "{doc}");
    assert!(doc.contains("project_ids: '1234'"), "{doc}");
    assert!(env.read("out/template_4321__var_.md").contains("echo 4321"));
}

#[test]
fn a_git_url_import_clones_the_repository() {
    let env = TestEnv::new();
    let git = |args: &[&str], dir: &std::path::Path| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let served = env.work.parent().unwrap().join("served");
    let src = env.work.parent().unwrap().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("README"), "hello\n").unwrap();
    git(&["init", "-q"], &src);
    git(
        &["-c", "user.name=t", "-c", "user.email=t@t", "add", "README"],
        &src,
    );
    git(
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "one",
        ],
        &src,
    );
    std::fs::create_dir_all(&served).unwrap();
    git(
        &["clone", "-q", "--bare", src.to_str().unwrap(), "repo.git"],
        &served,
    );
    git(&["update-server-info"], &served.join("repo.git"));
    let server = Server::serve(&served);
    env.write(
        "doc.md",
        &format!(
            "```shark-import\n{} code\n```\n\n```shark-run\ncat code/README\n```\n",
            server.url("repo.git")
        ),
    );
    let err = md(&env, &["doc.md"]);
    assert!(err.contains("fetching"), "{err}");
    assert_eq!(env.read("code/README"), "hello\n");
    // Again: the clone is there, so it is brought up to date instead.
    md(&env, &["doc.md"]);
    let log = env.log();
    assert!(
        log.iter().any(|r| r["command"]
            .as_str()
            .unwrap()
            .starts_with("git -C code pull")),
        "{log:?}"
    );
}

#[test]
fn blocks_run_at_once_that_turn_out_to_clash_are_reported() {
    let env = TestEnv::new();
    env.write(
        "doc.md",
        "```shark-run\nmkdir -p /data\n```\n\n```shark-run\ncat /data/src.txt > /data/a.txt\n```\n\n```shark-run\necho new > \"/data/$(cat /data/name)\"\n```\n",
    );
    env.write("doc.data/src.txt", "source\n");
    env.write("doc.data/name", "b.txt\n");
    md(&env, &["-j", "2", "doc.md"]);
    let err = md(&env, &["-j", "2", "--fresh", "doc.md"]);
    assert!(!err.contains("touched the same files"), "{err}");
    // The third block now writes what the second reads: their last run said they would not.
    env.write("doc.data/name", "src.txt\n");
    let err = md(&env, &["-j", "2", "doc.md"]);
    assert!(
        err.contains("the blocks at lines 5 and 9 ran at once but touched the same files"),
        "{err}"
    );
}
