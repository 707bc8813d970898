//! The lineage graph: which run produced a file's content, which runs produced that run's
//! inputs, and so on down to sources nobody produced.
//!
//! Only producers that *started before* the consumer (ties broken by id) are followed, so a
//! run that reads and rewrites the same content is not its own ancestor. Each run's inputs
//! are expanded once; a run met again is shown with its summary and
//! [`LineageNode::shared`] set, so a diamond-shaped history stays a small DAG in a tree.

use std::collections::HashSet;

use serde::Serialize;
use shark_store::Digest;

use crate::error::query;
use crate::load::inputs_of;
use crate::query::Before;
use crate::{Db, InputKind, LineageError, Run, RunId};

/// Directories whose files are the system's, not the user's: not followed upstream.
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev",
];

/// What [`Db::lineage`] includes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineageOptions {
    /// List inputs under system directories (`/usr`, `/lib`, `/etc`, ...) as leaves. They are
    /// never followed upstream either way.
    pub include_system: bool,
    /// How many producing runs deep to go: the producer of the file itself is level 1, and a
    /// run's inputs are listed only when its level is below this. 0 acts as 1.
    pub max_depth: usize,
}

impl Default for LineageOptions {
    fn default() -> Self {
        LineageOptions {
            include_system: false,
            max_depth: 64,
        }
    }
}

/// One file version in a lineage tree.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineageNode {
    /// Its path.
    pub path: String,
    /// Its content digest.
    #[serde(serialize_with = "crate::serial::digest_opt")]
    pub digest: Option<Digest>,
    /// The run that produced this content, as a summary (empty lists); `None` for a source.
    pub run: Option<Run>,
    /// The file inputs of `run`, each with its own lineage.
    pub inputs: Vec<LineageNode>,
    /// `run`'s inputs were already listed at an earlier node of the tree, so `inputs` is left
    /// empty here.
    pub shared: bool,
}

impl LineageNode {
    fn leaf(path: &str, digest: Option<Digest>) -> Self {
        LineageNode {
            path: path.to_owned(),
            digest,
            run: None,
            inputs: Vec::new(),
            shared: false,
        }
    }
}

/// The state of one walk.
struct Walk<'a> {
    db: &'a Db,
    opts: &'a LineageOptions,
    expanded: HashSet<RunId>,
}

impl Db {
    /// The lineage of the file at `path` whose content is `digest`: the run that produced
    /// it, then recursively the producers of that run's file inputs.
    pub fn lineage(
        &self,
        path: &str,
        digest: &Digest,
        opts: &LineageOptions,
    ) -> Result<LineageNode, LineageError> {
        let mut walk = Walk {
            db: self,
            opts,
            expanded: HashSet::new(),
        };
        walk.node(path, *digest, Before::END, 1)
    }
}

impl Walk<'_> {
    fn node(
        &mut self,
        path: &str,
        digest: Digest,
        before: Before,
        level: usize,
    ) -> Result<LineageNode, LineageError> {
        let mut node = LineageNode::leaf(path, Some(digest));
        let Some(run) = self.db.producer_before(path, &digest, before)? else {
            return Ok(node);
        };
        if level < self.opts.max_depth {
            if self.expanded.insert(run.id) {
                node.inputs = self.inputs(&run, level)?;
            } else {
                node.shared = true;
            }
        }
        node.run = Some(run);
        Ok(node)
    }

    /// The file inputs of `run` (at `level`), each with its lineage.
    fn inputs(&mut self, run: &Run, level: usize) -> Result<Vec<LineageNode>, LineageError> {
        let what = format!("load the inputs of run {}", run.id);
        let inputs = inputs_of(&self.db.conn, run.id).map_err(query(&what))?;
        let mut nodes = Vec::new();
        for input in inputs {
            let (InputKind::File, Some(digest)) = (input.kind, input.digest) else {
                continue;
            };
            if is_system(&input.path) {
                if self.opts.include_system {
                    nodes.push(LineageNode::leaf(&input.path, Some(digest)));
                }
                continue;
            }
            nodes.push(self.node(&input.path, digest, Before::of(run), level + 1)?);
        }
        Ok(nodes)
    }
}

/// Whether `path` is under one of [`SYSTEM_DIRS`].
fn is_system(path: &str) -> bool {
    SYSTEM_DIRS.iter().any(|dir| {
        path.strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::is_system;

    #[test]
    fn system_paths_are_whole_components() {
        assert!(is_system("/usr/bin/python3"));
        assert!(is_system("/etc"));
        assert!(is_system("/lib64/ld-linux-x86-64.so.2"));
        assert!(!is_system("/usrdata/x"));
        assert!(!is_system("/home/u/etc/x"));
        assert!(!is_system("relative/usr"));
    }
}
