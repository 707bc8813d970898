//! Undo: keeping what a run's changes replace, and putting it back.
//!
//! Just before a run's changes reach the user's files, the executor calls the [`Keeper`]: for
//! a fresh run once it is recorded ([`Keeper::keep`]), for a reuse before its outputs are
//! restored ([`Keeper::capture`]) and after it is recorded ([`PriorRecord::attach`]). The
//! keeper records, for every path the run changes, what was there ([`capture`]): content in
//! the store, or, on a ZFS dataset or btrfs subvolume this user may snapshot, in a snapshot
//! taken just before ([`snap`]). Store bytes kept only for undo stay within a budget
//! ([`config`]); the oldest undo data is dropped first.
//!
//! `shark undo` ([`plan`], [`apply`]) checks that every path is still as the run left it,
//! removes what the run created and restores what it replaced or deleted, through writes that
//! never follow a symlink and never tear a file ([`fsops`]). The undo is recorded as a run of
//! its own, whose prior state is the undone run's result, so it can be undone in turn.

pub(crate) mod apply;
pub(crate) mod capture;
pub(crate) mod config;
pub(crate) mod fsops;
pub(crate) mod plan;
pub(crate) mod snap;

use std::path::{Path, PathBuf};

use std::cell::RefCell;

use shark_lineage::{Db, FileStamp, LineageError, Output, OutputKind, RunId, UndoRecord};
use shark_store::{StatCache, Store, StoreError};

use crate::error::CliError;
use crate::home::Home;
use capture::{Captured, Keep};
use config::Config;
use snap::{Taken, Volumes};

/// Why undo data could not be kept or used.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    /// A path could not be looked at.
    #[error("cannot read {}", path.display())]
    Capture {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file's content could not be stored.
    #[error("cannot keep the content of {}", path.display())]
    Keep {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The store could not be synced or read.
    #[error("store operation failed")]
    Store(#[source] StoreError),
    /// Keeping the prior content would take more than the whole undo budget.
    #[error(
        "keeping what it replaces ({} and more) would exceed the undo budget of {budget} bytes",
        path.display()
    )]
    OverBudget {
        /// The file that went over.
        path: PathBuf,
        /// The budget.
        budget: u64,
    },
    /// The lineage database refused.
    #[error("cannot record undo data")]
    Record(#[source] LineageError),
}

/// Keeps prior content for the runs of one executor.
#[derive(Debug)]
pub struct Keeper {
    config: Config,
    volumes: Volumes,
    store_dir: PathBuf,
    /// The files of the run being applied, whose stamps [`Keeper::applied`] records.
    applying: RefCell<Vec<String>>,
}

/// What a run is about to replace, captured but not yet recorded.
#[derive(Debug, Default)]
pub struct PriorRecord {
    captured: Captured,
    taken: Vec<Taken>,
    files: Vec<String>,
}

/// The name a snapshot has until its run is recorded.
fn pending_name() -> String {
    format!("shark-pending-{}", std::process::id())
}

impl Keeper {
    /// The keeper for `home`, with the settings in force.
    pub fn open(home: &Home) -> Result<Keeper, CliError> {
        Ok(Keeper {
            config: Config::load()?,
            volumes: Volumes::new(home.root()),
            store_dir: home.store_dir(),
            applying: RefCell::new(Vec::new()),
        })
    }

    /// For a fresh run, recorded as `run` and about to be applied: captures and records what
    /// its changes replace. A failure is a warning: the run's results matter more than its undo.
    pub fn keep(
        &self,
        store: &Store,
        cache: &StatCache,
        db: &mut Db,
        run: RunId,
        outputs: &[Output],
    ) {
        if !self.config.enabled {
            return;
        }
        let kept = self
            .try_capture(store, cache, db, outputs, &snap::short_name(run))
            .and_then(|mut prior| {
                *self.applying.borrow_mut() = std::mem::take(&mut prior.files);
                self.try_attach(prior, store, db, run)
            });
        if let Err(e) = kept {
            warn(run, &e);
        }
    }

    /// After a fresh run's changes were applied: records the stamps of the files it left.
    pub fn applied(&self, db: &mut Db, run: RunId) {
        let files = std::mem::take(&mut *self.applying.borrow_mut());
        record_stamps(db, run, &files);
    }

    /// For a reuse about to restore `outputs`: captures what they replace.
    pub fn capture(
        &self,
        store: &Store,
        cache: &StatCache,
        db: &Db,
        outputs: &[Output],
    ) -> PriorRecord {
        if !self.config.enabled {
            return PriorRecord::default();
        }
        // Only what the reuse will change: outputs already in place stay as they are.
        let changing: Vec<Output> = outputs
            .iter()
            .filter(|o| plan::differs(Path::new(&o.path), o, None, cache).is_some())
            .cloned()
            .collect();
        match self.try_capture(store, cache, db, &changing, &pending_name()) {
            Ok(prior) => prior,
            Err(e) => {
                eprintln!(
                    "shark: warning: cannot keep undo data: {}",
                    crate::error::chain(&e)
                );
                PriorRecord::default()
            }
        }
    }

    fn try_capture(
        &self,
        store: &Store,
        cache: &StatCache,
        db: &Db,
        outputs: &[Output],
        short: &str,
    ) -> Result<PriorRecord, UndoError> {
        let targets = capture::targets(outputs);
        let mut taken = Vec::new();
        if self.config.snapshots && !targets.is_empty() {
            let mut volumes = Vec::new();
            for t in &targets {
                if let Some(v) = self.volumes.of(&t.path) {
                    if !volumes.contains(&v) {
                        volumes.push(v);
                    }
                }
            }
            taken = self.volumes.take(&volumes, short);
        }
        let keep = SnapKeep {
            volumes: &self.volumes,
            taken: &taken,
            db,
        };
        let budget = self.config.budget.bytes(&self.store_dir);
        let captured = capture::capture(&targets, outputs, store, cache, &keep, budget)?;
        let files = outputs
            .iter()
            .filter(|o| o.kind == OutputKind::File)
            .map(|o| o.path.clone())
            .collect();
        Ok(PriorRecord {
            captured,
            taken,
            files,
        })
    }

    fn try_attach(
        &self,
        mut prior: PriorRecord,
        store: &Store,
        db: &mut Db,
        run: RunId,
    ) -> Result<(), UndoError> {
        let (mut captured, mut taken) = (
            std::mem::take(&mut prior.captured),
            std::mem::take(&mut prior.taken),
        );
        if captured.prior.is_empty() && taken.is_empty() {
            return Ok(());
        }
        let before: Vec<String> = taken.iter().map(|t| t.snapshot.name.clone()).collect();
        self.volumes.name_after(&mut taken, run);
        for entry in &mut captured.prior {
            if let Some(i) = before
                .iter()
                .position(|b| Some(b) == entry.snapshot.as_ref())
            {
                entry.snapshot = Some(taken[i].snapshot.name.clone());
            }
        }
        store.sync().map_err(UndoError::Store)?;
        let record = UndoRecord {
            undoes: None,
            kept_bytes: captured.kept_bytes,
            prior: captured.prior,
            snapshots: taken.iter().map(|t| snap::record(t, run)).collect(),
        };
        db.record_undo(run, &record).map_err(UndoError::Record)?;
        db.drop_undo_over(self.config.budget.bytes(&self.store_dir))
            .map_err(UndoError::Record)?;
        for t in &taken {
            self.volumes.prune(db, &t.volume, &self.config.retention);
        }
        Ok(())
    }
}

impl PriorRecord {
    /// Records what a reuse replaced as the undo data of `run`, the reuse's record.
    pub fn attach(mut self, keeper: &Keeper, store: &Store, db: &mut Db, run: RunId) {
        let files = std::mem::take(&mut self.files);
        match keeper.try_attach(self, store, db, run) {
            Ok(()) => record_stamps(db, run, &files),
            Err(e) => warn(run, &e),
        }
    }
}

impl Drop for PriorRecord {
    /// A capture that was never recorded (the reuse failed and the command runs instead)
    /// leaves no snapshot behind.
    fn drop(&mut self) {
        for t in &self.taken {
            let _ = t.volume.destroy(&shark_zfs::System, &t.snapshot.name);
        }
    }
}

/// The stamp of the file `meta` describes.
pub(crate) fn stamp_of(meta: &std::fs::Metadata) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
    FileStamp {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
        mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
        ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
    }
}

/// Records the stamps of `files` as `run` left them. Best effort: without them, undo hashes.
pub(crate) fn record_stamps(db: &mut Db, run: RunId, files: &[String]) {
    let stamps: Vec<(String, FileStamp)> = files
        .iter()
        .filter_map(|f| {
            let meta = std::fs::symlink_metadata(f).ok().filter(|m| m.is_file())?;
            Some((f.clone(), stamp_of(&meta)))
        })
        .collect();
    if !stamps.is_empty() {
        let _ = db.record_after_stamps(run, &stamps);
    }
}

fn warn(run: RunId, e: &UndoError) {
    eprintln!(
        "shark: warning: cannot keep undo data for run {run}: {}; it cannot be undone",
        crate::error::chain(e)
    );
}

/// Paths on a snapshotted volume are kept by the snapshot.
struct SnapKeep<'a> {
    volumes: &'a Volumes,
    taken: &'a [Taken],
    db: &'a Db,
}

impl Keep for SnapKeep<'_> {
    fn snapshot_of(&self, path: &Path) -> Option<String> {
        if self.taken.is_empty() {
            return None;
        }
        let volume = self.volumes.of(path)?;
        self.taken
            .iter()
            .find(|t| t.volume == volume)
            .map(|t| t.snapshot.name.clone())
    }

    fn known_digest(&self, path: &Path) -> Option<shark_store::Digest> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        let text = path.to_str()?;
        self.db
            .stamped_digest(text, &stamp_of(&meta))
            .ok()
            .flatten()
    }
}
