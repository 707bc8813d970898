//! `shark md DOC.md`: Shark markdown documents run block by block in one memoized session,
//! the processed document, and `--dot`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::common::{exists, stderr, stdout, TestEnv};

/// A static file server on 127.0.0.1 (python's `http.server`), stopped when dropped.
pub(crate) struct Server {
    child: Child,
    port: u16,
}

impl Server {
    pub(crate) fn serve(dir: &std::path::Path) -> Server {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "-d"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Server { child, port }
    }

    pub(crate) fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A document with frontmatter, both kinds of import, two run blocks and a publish block.
fn pipeline(url: &str) -> String {
    format!(
        "---
inputs:
  - data.txt
greeting: hello
---
# A pipeline

```shark-import
data.txt in/data.txt
{url} in/remote.txt
```

Sort, and count something unrelated:

```shark-run
$ echo \"$greeting from the frontmatter\"
$ sort in/data.txt > sorted.txt
$ wc -l < other.txt > count.txt
```

```shark-run
cat sorted.txt \\
  in/remote.txt > all.txt
cat all.txt
```

```shark-publish
all.txt
```
"
    )
}

fn setup(env: &TestEnv) -> Server {
    env.write("data.txt", "b\na\nc\n");
    env.write("other.txt", "x\n");
    env.write("srv/remote.txt", "served\n");
    let server = Server::serve(&env.path("srv"));
    env.write("doc.md", &pipeline(&server.url("remote.txt")));
    server
}

/// The `# run ...` header lines of a processed document.
fn headers(doc: &str) -> Vec<String> {
    doc.lines()
        .filter(|l| l.starts_with("# run "))
        .map(str::to_owned)
        .collect()
}

/// Which commands of the last `n` runs were reused, by command text.
fn cached(env: &TestEnv, n: usize) -> Vec<(String, bool)> {
    let log = env.log();
    log[log.len() - n..]
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap().to_owned(),
                r["cached"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_document_runs_and_its_second_run_reuses_every_run_block() {
    let env = TestEnv::new();
    let server = setup(&env);
    let out = env.run(&["md", "doc.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "hello from the frontmatter\na\nb\nc\nserved\n"
    );
    assert_eq!(env.read("in/data.txt"), "b\na\nc\n");
    assert_eq!(env.read("in/remote.txt"), "served\n");
    assert_eq!(env.read("_shark/all.txt"), "a\nb\nc\nserved\n");
    assert_eq!(env.read("doc.md"), pipeline(&server.url("remote.txt")));
    let first = env.read("doc.out.md");
    assert!(first.contains("```shark-output\n# run 3 ran exit 0\nhello from the frontmatter\n"));
    assert!(first.contains("data.txt -> in/data.txt blake3:"), "{first}");
    let remote = format!("{} -> in/remote.txt blake3:", server.url("remote.txt"));
    assert!(first.contains(&remote), "{first}");
    assert!(first.contains("all.txt -> _shark/all.txt\n"), "{first}");
    assert_eq!(headers(&first).len(), 8, "{first}");
    assert!(headers(&first).iter().all(|h| h.contains(" ran exit 0")));

    let out = env.run(&["md", "doc.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "hello from the frontmatter\na\nb\nc\nserved\n"
    );
    assert!(
        stderr(&out).contains("is unchanged since the last fetch"),
        "{}",
        stderr(&out)
    );
    let runs = cached(&env, 8);
    for (command, cached) in &runs {
        // The URL import is a network command, run every time (conditionally).
        assert_eq!(*cached, !command.starts_with("curl "), "{runs:?}");
    }
    // The same document, except that each header now says which run it reused.
    let second = env.read("doc.out.md");
    let mut expected = first.clone();
    for (old, new) in headers(&first).iter().zip(headers(&second)) {
        let original = old.split(' ').nth(2).unwrap();
        if new.contains(" ran ") {
            assert!(old.contains(" ran "));
        } else {
            assert!(
                new.ends_with(&format!(" reused {original} exit 0")),
                "{new}"
            );
        }
        expected = expected.replacen(old, &new, 1);
    }
    assert_eq!(second, expected);
}

/// The commands among the last `last` runs that ran rather than being reused, leaving out
/// URL fetches (network runs always run).
fn ran_besides_fetches(env: &TestEnv, last: usize) -> Vec<String> {
    cached(env, last)
        .into_iter()
        .filter(|(c, cached)| !cached && !c.starts_with("curl "))
        .map(|(c, _)| c)
        .collect()
}

#[test]
fn changing_an_input_reruns_only_the_commands_that_depend_on_it() {
    let env = TestEnv::new();
    let _server = setup(&env);
    assert_eq!(env.run(&["md", "doc.md"]).status.code(), Some(0));
    env.write("other.txt", "x\ny\n");
    assert_eq!(env.run(&["md", "doc.md"]).status.code(), Some(0));
    let ran = ran_besides_fetches(&env, 8);
    assert_eq!(ran, vec!["wc -l < other.txt > count.txt"]);
    assert_eq!(env.read("count.txt"), "2\n");

    // An imported file changes: its copy, the sort, and everything downstream run again.
    env.write("data.txt", "z\na\n");
    assert_eq!(env.run(&["md", "doc.md"]).status.code(), Some(0));
    let ran = ran_besides_fetches(&env, 8);
    assert_eq!(
        ran,
        vec![
            "cat -- data.txt > in/data.txt",
            "sort in/data.txt > sorted.txt",
            "cat sorted.txt   in/remote.txt > all.txt",
            "cat all.txt",
            &format!("cat -- all.txt > {}", env.path("_shark/all.txt").display()),
        ]
    );
    assert_eq!(env.read("_shark/all.txt"), "a\nz\nserved\n");
}

const FAILING: &str = "\
```shark-run
echo one > one.txt
sh -c 'echo partial; exit 3'
echo never > never.txt
```

```shark-run
echo later > later.txt
```
";

#[test]
fn a_failing_command_stops_the_document_and_passes_its_status() {
    let env = TestEnv::new();
    env.write("fail.md", FAILING);
    let out = env.run(&["md", "fail.md", "-o", "processed.md"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(exists(&env.path("one.txt")));
    assert!(!exists(&env.path("never.txt")));
    assert!(!exists(&env.path("later.txt")));
    let err = stderr(&out);
    assert!(
        err.contains("fail.md:3: `sh -c 'echo partial; exit 3'` failed with status 3"),
        "{err}"
    );
    assert!(err.contains("stopped"), "{err}");
    let doc = env.read("processed.md");
    assert!(doc.contains("# run 2 ran exit 3\npartial\n```\n"), "{doc}");
    assert_eq!(headers(&doc).len(), 2, "{doc}");
    assert!(
        doc.ends_with("```shark-run\necho later > later.txt\n```\n"),
        "{doc}"
    );
}

#[test]
fn a_build_block_is_refused_by_its_line_before_anything_runs() {
    let env = TestEnv::new();
    let doc =
        "```shark-run\necho hi > hi.txt\n```\n\n```shark-build:gdal-env\n((from gdal))\n```\n";
    env.write("build.md", doc);
    let out = env.run(&["md", "build.md"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(
            "build.md:5: `shark-build:gdal-env` blocks (container image builds) are not supported"
        ),
        "{err}"
    );
    assert!(!exists(&env.path("hi.txt")));
    assert!(!exists(&env.path("build.out.md")));
}

#[test]
fn the_source_is_never_overwritten_and_missing_inputs_are_named() {
    let env = TestEnv::new();
    env.write("doc.md", "```shark-run\necho hi\n```\n");
    std::fs::create_dir(env.path("sub")).unwrap();
    for target in [
        "doc.md",
        "./sub/../doc.md",
        &env.path("doc.md").display().to_string(),
    ] {
        let out = env.run(&["md", "doc.md", "-o", target]);
        assert_eq!(out.status.code(), Some(2), "{target}");
        assert!(stderr(&out).contains("over its source"), "{}", stderr(&out));
    }
    assert_eq!(env.read("doc.md"), "```shark-run\necho hi\n```\n");
    assert!(env.log().is_empty());

    env.write(
        "in.md",
        "---\ninputs:\n  dem: data/dem.asc\n---\n```shark-run\necho hi\n```\n",
    );
    let out = env.run(&["md", "in.md"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("input `data/dem.asc` does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dot_draws_which_block_feeds_which() {
    let env = TestEnv::new();
    let _server = setup(&env);
    let out = env.run(&["md", "--dot", "doc.md"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("run `shark md doc.md` first"),
        "{}",
        stderr(&out)
    );

    assert_eq!(env.run(&["md", "doc.md"]).status.code(), Some(0));
    let out = env.run(&["md", "--dot", "doc.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dot = stdout(&out);
    assert!(dot.starts_with("digraph \"doc.md\" {\n"), "{dot}");
    for edge in [
        // Block 1 imports, block 2 sorts and counts, block 3 concatenates, block 4 publishes.
        "\"data.txt\" -> \"b1.1\"",
        "\"b1.1\" -> \"in/data.txt\"",
        "\"b1.2\" -> \"in/remote.txt\"",
        "\"in/data.txt\" -> \"b2.2\"",
        "\"b2.2\" -> \"sorted.txt\"",
        "\"other.txt\" -> \"b2.3\"",
        "\"b2.3\" -> \"count.txt\"",
        "\"sorted.txt\" -> \"b3.1\"",
        "\"in/remote.txt\" -> \"b3.1\"",
        "\"b3.1\" -> \"all.txt\"",
        "\"all.txt\" -> \"b3.2\"",
        "\"all.txt\" -> \"b4.1\"",
        "\"b4.1\" -> \"_shark/all.txt\"",
    ] {
        assert!(
            dot.contains(&format!("\t{edge};\n")),
            "{edge} missing:\n{dot}"
        );
    }
    assert!(dot.contains("\"data.txt\" [shape=cylinder];"), "{dot}");
    assert!(!dot.contains("-> \"b2.1\""), "echo reads no file:\n{dot}");
    assert!(
        !dot.contains("\"count.txt\" -> "),
        "nothing reads count.txt:\n{dot}"
    );
}

#[test]
fn the_example_pipeline_runs_and_is_reused_whole() {
    let env = TestEnv::new();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in ["pipeline.md", "pipeline.py", "stations.csv"] {
        std::fs::copy(examples.join(name), env.path(name)).unwrap();
    }
    let out = env.run(&["md", "pipeline.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.read("_shark/coldest.txt"), "ALP\n");
    let first = env.log().len();
    let out = env.run(&["md", "pipeline.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let runs = cached(&env, env.log().len() - first);
    assert!(runs.iter().all(|(_, cached)| *cached), "{runs:?}");
}
