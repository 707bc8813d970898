//! `shark-export`: a file's lineage in the formats research data is shared in.
//!
//! [`Graph::of`] collects, from the lineage database, the runs that produced some files and
//! the file versions those runs read and wrote, back to their sources. Two writers turn it
//! into the exchange formats:
//!
//! - [`prov::document`]: W3C PROV-JSON: each file version an entity (with its BLAKE3
//!   digest), each run an activity (start and end times), with `used`, `wasGeneratedBy`,
//!   `wasDerivedFrom` and `wasAssociatedWith` (shark, a software agent);
//! - [`rocrate::write`]: an RO-Crate directory following the Process Run Crate profile (each
//!   run a `CreateAction` with its instrument, objects, results, times and status), or the
//!   Workflow Run Crate profile when every run came from one script or document, with each
//!   file's content copied from the store (or, when the store lacks it, referenced by digest).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use shark_export::{Graph, Target};
//! let db = shark_lineage::Db::open("lineage.db".as_ref())?;
//! let target = Target::current("/work/out.csv".as_ref())?;
//! let graph = Graph::of(&db, &[target], &Default::default())?;
//! println!("{}", shark_export::prov::document(&graph));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod prov;
pub mod rocrate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use shark_lineage::{Db, LineageError, LineageNode, LineageOptions, OutputKind, Run, RunId};
use shark_store::Digest;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The lineage database could not answer.
    #[error("cannot query the lineage database")]
    Lineage(#[from] LineageError),
    /// A file to export cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Writing the crate failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// What was being written.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The crate directory exists and is not empty.
    #[error("{} is not empty", path.display())]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
}

/// One version of a file: a path and the content it held.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileVersion {
    /// Absolute path.
    pub path: String,
    /// Content digest.
    pub digest: Digest,
}

/// A file whose lineage to export, with the content it has now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The version to explain.
    pub version: FileVersion,
}

impl Target {
    /// The file at `path` (made absolute) as it is now.
    pub fn current(path: &Path) -> Result<Target, ExportError> {
        let read = |source| ExportError::Read {
            path: path.to_owned(),
            source,
        };
        let abs = std::path::absolute(path).map_err(read)?;
        let digest = Digest::of_file(&abs).map_err(read)?;
        Ok(Target {
            version: FileVersion {
                path: abs.to_string_lossy().into_owned(),
                digest,
            },
        })
    }
}

/// The runs behind some files and the file versions they read and wrote.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// The files asked about, in the order given.
    pub targets: Vec<FileVersion>,
    /// Every run involved, in full (inputs and outputs loaded), by id.
    pub runs: BTreeMap<RunId, Run>,
    /// Every file version involved.
    pub files: BTreeSet<FileVersion>,
    /// (run, version): the run read that version.
    pub used: BTreeSet<(RunId, FileVersion)>,
    /// (version, run): the run wrote that version.
    pub generated: BTreeSet<(FileVersion, RunId)>,
}

impl Graph {
    /// The lineage of every target, merged: the producers of their content and, recursively,
    /// the producers of those runs' file inputs (system files as `opts` says).
    pub fn of(db: &Db, targets: &[Target], opts: &LineageOptions) -> Result<Graph, ExportError> {
        let mut graph = Graph::default();
        for target in targets {
            let v = &target.version;
            let tree = db.lineage(&v.path, &v.digest, opts)?;
            graph.targets.push(v.clone());
            graph.add(db, &tree)?;
        }
        Ok(graph)
    }

    fn add(&mut self, db: &Db, node: &LineageNode) -> Result<(), ExportError> {
        let Some(digest) = node.digest else {
            return Ok(());
        };
        let version = FileVersion {
            path: node.path.clone(),
            digest,
        };
        self.files.insert(version.clone());
        let Some(summary) = &node.run else {
            return Ok(());
        };
        if !self.runs.contains_key(&summary.id) {
            let run = db.run(summary.id)?;
            // Every file the run left is its result, not only the one the tree went through.
            for out in &run.outputs {
                if let (OutputKind::File, Some(d)) = (out.kind, out.digest) {
                    let v = FileVersion {
                        path: out.path.clone(),
                        digest: d,
                    };
                    self.files.insert(v.clone());
                    self.generated.insert((v, run.id));
                }
            }
            self.runs.insert(run.id, run);
        }
        self.generated.insert((version, summary.id));
        for input in &node.inputs {
            if let Some(d) = input.digest {
                let v = FileVersion {
                    path: input.path.clone(),
                    digest: d,
                };
                self.used.insert((summary.id, v));
            }
            self.add(db, input)?;
        }
        Ok(())
    }

    /// The script or document every run came from, when they all came from the same one
    /// (see [`source_of`]).
    pub fn common_source(&self) -> Option<PathBuf> {
        let mut sources = self.runs.values().map(source_of);
        let first = sources.next()??;
        sources.all(|s| s.as_ref() == Some(&first)).then_some(first)
    }

    /// What each run read, as recorded in the graph.
    pub fn used_by(&self, run: RunId) -> impl Iterator<Item = &FileVersion> {
        self.used
            .iter()
            .filter(move |(r, _)| *r == run)
            .map(|(_, v)| v)
    }

    /// What each run wrote, as recorded in the graph.
    pub fn generated_by(&self, run: RunId) -> impl Iterator<Item = &FileVersion> {
        self.generated
            .iter()
            .filter(move |(_, r)| *r == run)
            .map(|(v, _)| v)
    }

    /// The run that wrote `version`, if the graph holds one.
    pub fn producer(&self, version: &FileVersion) -> Option<RunId> {
        self.generated
            .iter()
            .find(|(v, _)| v == version)
            .map(|(_, r)| *r)
    }
}

/// The script or Shark markdown document a run was a step of: shark runs each step as
/// `/bin/bash -c LINE $0 ARGS...` with `$0` the script or document; `None` for a command
/// typed at the shell or given to `shark -c` or `shark run`.
pub fn source_of(run: &Run) -> Option<PathBuf> {
    let [bash, dash_c, _line, zero, ..] = run.argv.as_slice() else {
        return None;
    };
    if !bash.ends_with("/bash") || dash_c != "-c" || zero == "shark" || zero.is_empty() {
        return None;
    }
    let path = Path::new(zero);
    Some(if path.is_absolute() {
        path.to_path_buf()
    } else {
        Path::new(&run.cwd).join(path)
    })
}

/// When a run ended.
pub fn ended(run: &Run) -> SystemTime {
    run.started + run.duration
}

/// The program a run executed: the first process that is not the shell running the command
/// line, else the shell; its `argv[0]`.
pub fn program_of(run: &Run) -> String {
    let shell = |a: &str| matches!(a.rsplit('/').next(), Some("bash" | "sh"));
    run.processes
        .iter()
        .filter_map(|p| p.argv.first())
        .find(|a| !shell(a))
        .or_else(|| run.argv.first())
        .cloned()
        .unwrap_or_else(|| "sh".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shark_lineage::{NewRun, ProcessRecord};

    fn run(argv: &[&str], cwd: &str) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("l.db")).unwrap();
        let d = Digest::of_bytes(b"k");
        let new = NewRun {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            processes: vec![
                ProcessRecord {
                    pid: 1,
                    argv: vec!["/bin/bash".into()],
                },
                ProcessRecord {
                    pid: 2,
                    argv: vec!["sort".into(), "a".into()],
                },
            ],
            ..NewRun::new("x", cwd, d, d, SystemTime::now())
        };
        let id = db.record(&new).unwrap();
        db.run(id).unwrap()
    }

    #[test]
    fn sources_are_the_dollar_zero_of_shark_steps() {
        let step = run(&["/bin/bash", "-c", "wrapped", "/w/doc.md"], "/w");
        assert_eq!(source_of(&step), Some(PathBuf::from("/w/doc.md")));
        let relative = run(&["/bin/bash", "-c", "wrapped", "run.sh", "a"], "/w/sub");
        assert_eq!(source_of(&relative), Some(PathBuf::from("/w/sub/run.sh")));
        assert_eq!(
            source_of(&run(&["/bin/bash", "-c", "x", "shark"], "/w")),
            None
        );
        assert_eq!(source_of(&run(&["sort", "a"], "/w")), None);
        assert_eq!(program_of(&step), "sort");
    }
}
