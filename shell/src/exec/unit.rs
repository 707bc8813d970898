//! Units of work: the script, document, interactive session, or single `-c`/`run` command a
//! run belongs to, and the state each leaves behind.
//!
//! Some inputs also hold when their path is exactly as the run's unit of work left it
//! ([`Input::as_left`]): the listing of a directory the run listed, and a path the run found
//! absent and then created. That is Riker's second scenario: re-running a script whose steps
//! write into the directory they list, with nothing changed since it last ran, finds every
//! directory as the script left it, and every step is reused; a file added by hand, or a new
//! file from an upstream step, changes the listing from both what the step saw and what the
//! unit left, and the step runs.
//!
//! So after each of its runs (or reuses), a unit records the state of the paths it tracks: the
//! paths of such inputs, refreshed whenever a run changes them (a listing whenever an entry of
//! the directory changes). A unit is named by its first run's id.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use shark_lineage::{AsLeft, Db, Input, Output, RunId, UnitState};
use shark_store::StatCache;

use super::inputs;

/// The unit of work of an executor, and the paths it tracks.
#[derive(Debug, Default)]
pub(crate) struct Unit {
    /// The first run of the unit, once there is one.
    pub(crate) first: Option<RunId>,
    /// A script or document: what its runs read may hold as the unit left it
    /// ([`AsLeft::Entry`]), so the paths among those that the unit itself changes are tracked.
    pub(crate) whole: bool,
    /// Directories whose listing is tracked.
    listings: HashSet<PathBuf>,
    /// Paths whose state is tracked once the unit writes them.
    entries: HashSet<PathBuf>,
}

impl Unit {
    /// After run `id` (or a reuse recorded as `id`) whose inputs were `inputs` and whose
    /// changes were `outputs`: records what the unit now leaves at the paths it tracks that
    /// the run added or changed. Best effort: a failure only costs later reuse.
    pub(crate) fn settle(
        &mut self,
        id: RunId,
        inputs: &[Input],
        outputs: &[Output],
        db: &mut Db,
        cache: &StatCache,
    ) {
        let unit = *self.first.get_or_insert(id);
        let mut refresh = BTreeSet::new();
        for input in inputs {
            let path = PathBuf::from(&input.path);
            match input.as_left {
                AsLeft::Listing if self.listings.insert(path.clone()) => {
                    refresh.insert((path, true));
                }
                AsLeft::Entry if self.whole => {
                    self.entries.insert(path);
                }
                _ => {}
            }
        }
        for output in outputs {
            let path = Path::new(&output.path);
            if self.entries.contains(path) {
                refresh.insert((path.to_path_buf(), false));
            }
            if let Some(parent) = path.parent().filter(|p| self.listings.contains(*p)) {
                refresh.insert((parent.to_path_buf(), true));
            }
        }
        let states: Vec<UnitState> = refresh
            .into_iter()
            .filter_map(|(path, listing)| {
                let state = inputs::unit_state(&path, listing, cache)?;
                Some(UnitState {
                    path: path.to_str()?.to_owned(),
                    state,
                })
            })
            .collect();
        if !states.is_empty() {
            let _ = db.record_unit_states(unit, &states);
        }
    }
}
