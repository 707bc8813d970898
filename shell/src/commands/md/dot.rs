//! `shark md --dot DOC`: the document's dataflow graph, from the runs its last `shark md`
//! recorded.
//!
//! Each block is a cluster of its commands (boxes); files are notes (the frontmatter's
//! `inputs` are cylinders). An edge goes from a command to each file it wrote, and from a file
//! to each later command that read it. Shown are the files that link two commands, and those
//! inside the document's directory that a command read or wrote; a reused command's files are
//! those of the run it reused. So `"b1.1" -> "data/in.csv" -> "b2.1"` reads: the first command
//! of block 1 wrote `data/in.csv`, which the first command of block 2 read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};

use shark_lineage::{Db, InputKind, OutputKind, Run, RunId};
use shark_store::Digest;

use super::record::Record;
use super::Loaded;
use crate::error::CliError;
use crate::home::Home;

/// Prints the graph of the document at `doc`; exit status 1 when it never ran.
pub(crate) fn dot(home: &Home, doc: &Path) -> Result<i32, CliError> {
    let loaded = Loaded::read(doc)?;
    let Some(record) = Record::load(home, &loaded.path) else {
        eprintln!(
            "shark: error: {} has not been run, so it has no recorded dataflow",
            doc.display()
        );
        eprintln!("hint: run `shark md {}` first", doc.display());
        return Ok(1);
    };
    if record.digest != Digest::of_bytes(loaded.text.as_bytes()).to_hex() {
        eprintln!(
            "shark: warning: {} changed since it last ran; the graph is of that run",
            loaded.name()
        );
    }
    let db = Db::open(&home.db_path())
        .map_err(|e| CliError::failed("cannot open the lineage database", e))?;
    let flow = Flow::of(&db, &record, &loaded)?;
    print!("{}", flow.render(&record, &loaded));
    Ok(0)
}

/// Command node ids (`b{block}.{command}`, 1-based) and the file edges between them.
#[derive(Default)]
struct Flow {
    /// (command, path) for every file a command wrote.
    writes: Vec<(String, String)>,
    /// (path, command) for every file a command read.
    reads: Vec<(String, String)>,
}

impl Flow {
    fn of(db: &Db, record: &Record, loaded: &Loaded) -> Result<Flow, CliError> {
        let mut flow = Flow::default();
        for (b, block) in record.blocks.iter().enumerate() {
            for (c, command) in block.commands.iter().enumerate() {
                let node = format!("b{}.{}", b + 1, c + 1);
                let run = effective_run(db, RunId(command.run))?;
                let mut wrote: BTreeSet<String> = command.writes.iter().cloned().collect();
                wrote.extend(
                    run.outputs
                        .iter()
                        .filter(|o| matches!(o.kind, OutputKind::File | OutputKind::Symlink))
                        .map(|o| o.path.clone()),
                );
                for input in &run.inputs {
                    let file = matches!(input.kind, InputKind::File | InputKind::Symlink);
                    if file && !wrote.contains(&input.path) {
                        let path = input_node(&input.path, loaded);
                        flow.reads.push((path, node.clone()));
                    }
                }
                flow.writes
                    .extend(wrote.into_iter().map(|p| (node.clone(), p)));
            }
        }
        Ok(flow)
    }

    /// The files worth drawing: inside the document's directory, declared inputs, or written
    /// by one command and read by another.
    fn shown(&self, loaded: &Loaded) -> BTreeSet<String> {
        let written: BTreeSet<&String> = self.writes.iter().map(|(_, p)| p).collect();
        let read: BTreeSet<&String> = self.reads.iter().map(|(p, _)| p).collect();
        let inputs = declared_inputs(loaded);
        written
            .iter()
            .chain(read.iter())
            .filter(|p| {
                Path::new(p.as_str()).starts_with(&loaded.dir)
                    || inputs.contains(p.as_str())
                    || (written.contains(*p) && read.contains(*p))
            })
            .map(|p| (*p).clone())
            .collect()
    }

    fn render(&self, record: &Record, loaded: &Loaded) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", quote(&loaded.name()));
        out.push_str("\trankdir=LR;\n\tnode [fontname=\"monospace\"];\n");
        for (b, block) in record.blocks.iter().enumerate() {
            let _ = writeln!(out, "\tsubgraph \"cluster_{}\" {{", b + 1);
            let label = format!("{}, line {}", block.kind, block.line);
            let _ = writeln!(out, "\t\tlabel={};", quote(&label));
            for (c, command) in block.commands.iter().enumerate() {
                let node = quote(&format!("b{}.{}", b + 1, c + 1));
                let text = short(&command.text);
                let _ = writeln!(out, "\t\t{node} [shape=box, label={}];", quote(&text));
            }
            out.push_str("\t}\n");
        }
        let shown = self.shown(loaded);
        let inputs = declared_inputs(loaded);
        let names: BTreeMap<&String, String> =
            shown.iter().map(|p| (p, display(p, &loaded.dir))).collect();
        for (path, name) in &names {
            let shape = if inputs.contains(path.as_str()) {
                "cylinder"
            } else {
                "note"
            };
            let _ = writeln!(out, "\t{} [shape={shape}];", quote(name));
        }
        let mut edges = BTreeSet::new();
        for (node, path) in &self.writes {
            if let Some(name) = names.get(path) {
                edges.insert(format!("\t{} -> {};", quote(node), quote(name)));
            }
        }
        for (path, node) in &self.reads {
            if let Some(name) = names.get(path) {
                edges.insert(format!("\t{} -> {};", quote(name), quote(node)));
            }
        }
        for edge in edges {
            out.push_str(&edge);
            out.push('\n');
        }
        out.push_str("}\n");
        out
    }
}

/// The run that holds a command's inputs and outputs: the run itself, or the one it reused.
fn effective_run(db: &Db, id: RunId) -> Result<Run, CliError> {
    let load = |id| {
        db.run(id)
            .map_err(|e| CliError::failed(format!("cannot load run {id}"), e))
    };
    let run = load(id)?;
    match run.reused_from {
        Some(original) => load(original),
        None => Ok(run),
    }
}

/// The frontmatter's inputs as absolute paths.
fn declared_inputs(loaded: &Loaded) -> BTreeSet<String> {
    loaded
        .doc
        .frontmatter
        .inputs
        .iter()
        .map(|i| loaded.dir.join(i).to_string_lossy().into_owned())
        .collect()
}

/// A read path, or the declared input directory it lies in.
fn input_node(path: &str, loaded: &Loaded) -> String {
    declared_inputs(loaded)
        .into_iter()
        .find(|i| Path::new(path).starts_with(i) && Path::new(i).is_dir())
        .unwrap_or_else(|| path.to_owned())
}

/// A path relative to the document's directory when it lies inside it.
fn display(path: &str, dir: &PathBuf) -> String {
    Path::new(path)
        .strip_prefix(dir)
        .map_or_else(|_| path.to_owned(), |p| p.to_string_lossy().into_owned())
}

/// A command's first line, cut to a readable length.
fn short(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    let mut s: String = first.chars().take(60).collect();
    if s.len() < first.len() || text.lines().nth(1).is_some() {
        s.push('…');
    }
    s
}

/// A DOT double-quoted string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_shortening() {
        assert_eq!(quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(short("sort a > b"), "sort a > b");
        assert_eq!(short("a\nb"), "a…");
        assert_eq!(short(&"x".repeat(70)).chars().count(), 61);
    }
}
