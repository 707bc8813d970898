//! Which blocks of a document may run at once (`shark md -j N`).
//!
//! Shark cannot tell from a command's text what it will read and write, but the record of the
//! document's last run says what each block's runs did read and write. Two blocks may run at
//! once when, last time, neither wrote a path the other read or wrote (a listed directory
//! counts as read, so creating a file in it is a conflict), and both left the shell state as
//! they found it (no `cd`, no variable set; the first block, which starts from this
//! process's state rather than one bash left, counts as changing it). A block is only judged by its last run when its
//! text is unchanged since; a new or edited block, or one whose runs cannot be loaded, runs
//! alone. So the first run of a document is sequential, and later runs group consecutive
//! independent blocks into *waves* of at most N, each wave starting from the state the
//! previous one left. Within a wave, a failing block stops the document after the wave.

use std::collections::BTreeSet;

use shark_lineage::{Db, InputKind, OutputKind, RunId};

use super::record::BlockRecord;

/// What a block's runs read and wrote last time.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct BlockIo {
    /// Paths read (files, symlinks, listed directories, paths found absent).
    pub reads: BTreeSet<String>,
    /// Paths written, created or deleted.
    pub writes: BTreeSet<String>,
}

impl BlockIo {
    /// The paths a block's recorded runs touched (for a reuse, the run it reused), or
    /// `None` when a run cannot be loaded.
    pub(super) fn of(db: &Db, block: &BlockRecord) -> Option<BlockIo> {
        let mut io = BlockIo::default();
        for command in &block.commands {
            let mut run = db.run(RunId(command.run)).ok()?;
            if let Some(original) = run.reused_from {
                run = db.run(original).ok()?;
            }
            for input in &run.inputs {
                // A directory only looked at (no listing digest) does not depend on its entries.
                let unlisted_dir = input.kind == InputKind::Dir && input.digest.is_none();
                if input.kind != InputKind::Stdin && !unlisted_dir {
                    io.reads.insert(input.path.clone());
                }
            }
            for output in &run.outputs {
                if matches!(
                    output.kind,
                    OutputKind::File | OutputKind::Symlink | OutputKind::Dir | OutputKind::Deleted
                ) {
                    io.writes.insert(output.path.clone());
                }
            }
            io.writes.extend(command.writes.iter().cloned());
        }
        Some(io)
    }

    /// Whether this block and `other` touched nothing the other wrote.
    pub(super) fn independent(&self, other: &BlockIo) -> bool {
        !clash(&self.writes, &other.reads)
            && !clash(&other.writes, &self.reads)
            && !clash(&self.writes, &other.writes)
    }
}

/// Whether a written path is one of `reads` or lies under one of them.
fn clash(writes: &BTreeSet<String>, reads: &BTreeSet<String>) -> bool {
    writes.iter().any(|w| {
        reads.contains(w)
            || std::path::Path::new(w)
                .ancestors()
                .skip(1)
                .any(|a| reads.contains(a.to_string_lossy().as_ref()))
    })
}

/// The blocks (by index) grouped into waves, in document order: consecutive blocks that are
/// all judged (`Some`) and pairwise independent, at most `jobs` at a time.
pub(super) fn waves(blocks: &[Option<BlockIo>], jobs: usize) -> Vec<Vec<usize>> {
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for (i, io) in blocks.iter().enumerate() {
        let joins = waves.last().is_some_and(|wave| {
            wave.len() < jobs
                && wave.iter().all(|&j| match (&blocks[j], io) {
                    (Some(a), Some(b)) => a.independent(b),
                    _ => false,
                })
        });
        match joins {
            true => waves.last_mut().expect("a wave").push(i),
            false => waves.push(vec![i]),
        }
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(reads: &[&str], writes: &[&str]) -> Option<BlockIo> {
        Some(BlockIo {
            reads: reads.iter().map(|s| s.to_string()).collect(),
            writes: writes.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn independent_blocks_share_a_wave_and_dependent_ones_do_not() {
        let blocks = [
            io(&["/d/in.csv"], &["/d/a.tif"]),
            io(&["/d/in.csv"], &["/d/b.tif"]),
            // Reads what the first wrote: a new wave.
            io(&["/d/a.tif", "/d/b.tif"], &["/d/c.txt"]),
            // Unknown (new or edited): alone.
            None,
            io(&["/x"], &["/y"]),
        ];
        assert_eq!(waves(&blocks, 4), [vec![0, 1], vec![2], vec![3], vec![4]]);
        assert_eq!(
            waves(&blocks, 1),
            [vec![0], vec![1], vec![2], vec![3], vec![4]]
        );
    }

    #[test]
    fn listing_a_folder_clashes_with_writing_into_it() {
        let lister = io(&["/d/out"], &[]).unwrap();
        let writer = io(&[], &["/d/out/x.tif"]).unwrap();
        assert!(!lister.independent(&writer));
        assert!(!writer.independent(&lister));
        let same_output = io(&[], &["/d/x"]).unwrap();
        assert!(!same_output.independent(&same_output.clone()));
        assert!(io(&["/d/a"], &["/d/b"])
            .unwrap()
            .independent(&io(&["/d/a"], &["/d/c"]).unwrap()));
    }

    #[test]
    fn waves_are_at_most_jobs_wide() {
        let blocks: Vec<_> = (0..5).map(|i| io(&[], &[&format!("/o{i}")])).collect();
        assert_eq!(waves(&blocks, 2), [vec![0, 1], vec![2, 3], vec![4]]);
    }
}
