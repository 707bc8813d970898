//! What the last `shark md DOC` did, kept in the shark home for `shark md --dot` and for
//! conditional re-fetching of URL imports.
//!
//! One JSON file per document under `HOME/md/`, named by the BLAKE3 digest of the document's
//! canonical path, replaced atomically after each run:
//!
//! ```json
//! {"doc": "/w/pipeline.md", "digest": "…", "blocks": [
//!   {"line": 7, "kind": "shark-run", "commands": [{"text": "sort a > b", "run": 12, "writes": []}],
//!    "body": "…", "changes_state": false}],
//!  "fetches": [{"url": "http://…", "dest": "/w/data/a.csv", "digest": "…"}],
//!  "running": false, "pid": 0, "exit_code": 0}
//! ```
//!
//! The record is rewritten after each command, with `running` set and the runner's `pid`,
//! so `shark serve` can show a document while it runs; a record whose process is gone was
//! left by a `shark md` that was killed.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shark_store::Digest;

use crate::error::CliError;
use crate::home::Home;

/// The last run of one document.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    /// The document's canonical path.
    pub doc: String,
    /// The digest of the document's text when it ran.
    pub digest: String,
    /// The blocks processed, in order (up to a failure).
    pub blocks: Vec<BlockRecord>,
    /// What each URL import left, so the next fetch can be conditional.
    pub fetches: Vec<FetchRecord>,
    /// Whether `shark md` was still running the document when the record was written (it
    /// is rewritten after every command, so a viewer can follow the run).
    #[serde(default)]
    pub running: bool,
    /// The process running it, while `running`.
    #[serde(default)]
    pub pid: u32,
    /// The status the run ended with (0 when every block succeeded), once it ended.
    #[serde(default)]
    pub exit_code: Option<i32>,
}

/// One processed block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct BlockRecord {
    /// The 1-based line of its opening fence.
    pub line: usize,
    /// Its kind (`shark-run`, …).
    pub kind: String,
    /// Its commands, in order.
    pub commands: Vec<CommandRecord>,
    /// The BLAKE3 digest of its body (after `%{NAME}` substitution), to tell whether the
    /// block is the same the next time.
    #[serde(default)]
    pub body: String,
    /// Whether it left the shell state other than it found it (`cd`, variables); unknown
    /// (`None`) in records written before this was kept, or when the block stopped.
    #[serde(default)]
    pub changes_state: Option<bool>,
}

/// One command of a block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CommandRecord {
    /// The command line run.
    pub text: String,
    /// The run recorded for it.
    pub run: i64,
    /// Absolute paths the command is known to provide even when its run changed nothing (a
    /// conditional download of an unchanged file).
    #[serde(default)]
    pub writes: Vec<String>,
}

/// What a URL import left at its destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct FetchRecord {
    /// The URL.
    pub url: String,
    /// The absolute destination.
    pub dest: String,
    /// The digest of what the download left there.
    pub digest: String,
}

/// Where the record of the document at `doc` (canonical) lives.
fn path_of(home: &Home, doc: &Path) -> PathBuf {
    let key = Digest::of_bytes(doc.as_os_str().as_encoded_bytes());
    home.root()
        .join("md")
        .join(format!("{}.json", key.short(32)))
}

impl Record {
    /// The record of the document's last run, if it ran and the record is readable.
    pub fn load(home: &Home, doc: &Path) -> Option<Record> {
        let bytes = std::fs::read(path_of(home, doc)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Replaces the document's record.
    pub fn save(&self, home: &Home, doc: &Path) -> Result<(), CliError> {
        let path = path_of(home, doc);
        let dir = path.parent().unwrap_or(home.root());
        let fail = |e: std::io::Error| {
            CliError::failed(format!("cannot write the record {}", path.display()), e)
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other);
        tmp.write_all(&json.map_err(fail)?).map_err(fail)?;
        tmp.persist(&path).map_err(|e| fail(e.error))?;
        Ok(())
    }

    /// Every readable record in the home, most recently written first.
    pub fn all(home: &Home) -> Vec<Record> {
        let Ok(entries) = std::fs::read_dir(home.root().join("md")) else {
            return Vec::new();
        };
        let mut found: Vec<(std::time::SystemTime, Record)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| {
                let modified = e.metadata().and_then(|m| m.modified()).ok()?;
                let record = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                Some((modified, record))
            })
            .collect();
        found.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        found.into_iter().map(|(_, r)| r).collect()
    }

    /// Whether the `shark md` that wrote this record is still running it.
    pub fn is_running(&self) -> bool {
        self.running && self.pid != 0 && Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// The fetch of `url` to `dest` in this record, if any.
    pub fn fetch(&self, url: &str, dest: &str) -> Option<&FetchRecord> {
        self.fetches.iter().find(|f| f.url == url && f.dest == dest)
    }
}
