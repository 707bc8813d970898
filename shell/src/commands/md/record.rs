//! What the last `shark md DOC` did, kept in the shark home for `shark md --dot` and for
//! conditional re-fetching of URL imports.
//!
//! One JSON file per document under `HOME/md/`, named by the BLAKE3 digest of the document's
//! canonical path, replaced atomically after each run:
//!
//! ```json
//! {"doc": "/w/pipeline.md", "digest": "…", "blocks": [
//!   {"line": 7, "kind": "shark-run", "commands": [{"text": "sort a > b", "run": 12, "writes": []}]}],
//!  "fetches": [{"url": "http://…", "dest": "/w/data/a.csv", "digest": "…"}]}
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shark_store::Digest;

use crate::error::CliError;
use crate::home::Home;

/// The last run of one document.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Record {
    /// The document's canonical path.
    pub doc: String,
    /// The digest of the document's text when it ran.
    pub digest: String,
    /// The blocks processed, in order (up to a failure).
    pub blocks: Vec<BlockRecord>,
    /// What each URL import left, so the next fetch can be conditional.
    pub fetches: Vec<FetchRecord>,
}

/// One processed block.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct BlockRecord {
    /// The 1-based line of its opening fence.
    pub line: usize,
    /// Its kind (`shark-run`, …).
    pub kind: String,
    /// Its commands, in order.
    pub commands: Vec<CommandRecord>,
}

/// One command of a block.
#[derive(Debug, Serialize, Deserialize)]
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

    /// The fetch of `url` to `dest` in this record, if any.
    pub fn fetch(&self, url: &str, dest: &str) -> Option<&FetchRecord> {
        self.fetches.iter().find(|f| f.url == url && f.dest == dest)
    }
}
