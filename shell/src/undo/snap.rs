//! Snapshots in place of stored prior content, where a run's paths live on a ZFS dataset or a
//! btrfs subvolume that this user may snapshot (see [`shark_zfs`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use shark_lineage::{Db, RunId, SnapshotRecord};
use shark_zfs::{Access, Retention, Snapshot, System, Volume};

/// The volumes of paths, found once per directory, and the snapshots taken of them.
#[derive(Debug)]
pub(crate) struct Volumes {
    tools: System,
    by_dir: RefCell<HashMap<PathBuf, Option<Volume>>>,
    access: RefCell<HashMap<Volume, bool>>,
    notices: PathBuf,
}

/// A snapshot taken before a run.
#[derive(Debug, Clone)]
pub(crate) struct Taken {
    pub(crate) volume: Volume,
    pub(crate) snapshot: Snapshot,
}

impl Volumes {
    /// Volumes whose notices are remembered under `home`.
    pub(crate) fn new(home: &Path) -> Volumes {
        Volumes {
            tools: System,
            by_dir: RefCell::new(HashMap::new()),
            access: RefCell::new(HashMap::new()),
            notices: home.join("notices"),
        }
    }

    /// The volume `path` is (or will be) on: that of the nearest existing directory above it.
    pub(crate) fn of(&self, path: &Path) -> Option<Volume> {
        let dir = path.ancestors().skip(1).find(|d| d.is_dir())?;
        if let Some(v) = self.by_dir.borrow().get(dir) {
            return v.clone();
        }
        let found = shark_zfs::detect(dir, &self.tools).ok().flatten();
        self.by_dir
            .borrow_mut()
            .insert(dir.to_owned(), found.clone());
        found
    }

    /// Snapshots each of `volumes` as `short`; a volume that cannot be snapshotted is left out
    /// (its prior content goes to the store), with one notice saying why.
    pub(crate) fn take(&self, volumes: &[Volume], short: &str) -> Vec<Taken> {
        let mut taken = Vec::new();
        for volume in volumes {
            if !self.allowed(volume) {
                continue;
            }
            let snapshot = free_name(short, |name| {
                volume.snapshot(&self.tools, name, SystemTime::now())
            });
            match snapshot {
                Ok(snapshot) => taken.push(Taken {
                    volume: volume.clone(),
                    snapshot,
                }),
                Err(e) => self.notice(volume, "snapshots", &crate::error::chain(&e)),
            }
        }
        taken
    }

    fn allowed(&self, volume: &Volume) -> bool {
        if let Some(ok) = self.access.borrow().get(volume) {
            return *ok;
        }
        let ok = match volume.access(&self.tools) {
            Access::Allowed => true,
            Access::Denied(why) => {
                self.notice(volume, "snapshots", &why);
                false
            }
        };
        self.access.borrow_mut().insert(volume.clone(), ok);
        ok
    }

    /// Says once per shark home, volume and `kind` (`snapshots`, `prune`) what cannot be
    /// done there, and why.
    fn notice(&self, volume: &Volume, kind: &str, why: &str) {
        let tag: String = format!("{}-{}", volume.backend.as_str(), volume.name)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let marker = self.notices.join(format!("{kind}-{tag}"));
        if marker.exists() {
            return;
        }
        let (backend, name) = (volume.backend.as_str(), &volume.name);
        match kind {
            "prune" => eprintln!(
                "shark: note: cannot prune old snapshots of {backend} {name} ({why}); they \
                 stay until removed by hand"
            ),
            _ => eprintln!(
                "shark: note: not snapshotting {backend} {name} ({why}); prior content for \
                 undo goes to the store instead"
            ),
        }
        let _ = std::fs::create_dir_all(&self.notices);
        let _ = std::fs::write(&marker, why);
    }

    /// Renames pending snapshots after run `run`.
    pub(crate) fn name_after(&self, taken: &mut [Taken], run: RunId) {
        for t in taken {
            let short = short_name(run);
            if !t.snapshot.short.starts_with(&short) {
                let renamed = free_name(&short, |n| t.volume.rename(&self.tools, &t.snapshot, n));
                if let Ok(s) = renamed {
                    t.snapshot = s;
                }
            }
        }
    }

    /// Destroys the snapshots of `volume` that `policy` lets go and marks them pruned.
    pub(crate) fn prune(&self, db: &mut Db, volume: &Volume, policy: &Retention) {
        let Ok(list) = volume.snapshots(&self.tools) else {
            return;
        };
        let times: Vec<SystemTime> = list.iter().map(|s| s.created).collect();
        let mut doomed = policy.prune(&times, SystemTime::now());
        // A snapshot a killed reuse took and never named after its run is of no use.
        doomed.extend((0..list.len()).filter(|&i| stale_pending(&list[i].short)));
        doomed.sort_unstable();
        doomed.dedup();
        for i in doomed {
            let snap = &list[i];
            match volume.destroy(&self.tools, &snap.name) {
                Ok(()) => {
                    if let Some(run) = run_of(&snap.short) {
                        let _ = db.mark_snapshot_pruned(run, &snap.name);
                    }
                }
                Err(e) => {
                    self.notice(volume, "prune", &crate::error::chain(&e));
                    return;
                }
            }
        }
    }
}

/// Whether `short` is a pending name (`shark-pending-PID`) of a process that is gone.
fn stale_pending(short: &str) -> bool {
    short
        .strip_prefix("shark-pending-")
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| !Path::new("/proc").join(pid.to_string()).exists())
}

/// The snapshot name for run `run`.
pub(crate) fn short_name(run: RunId) -> String {
    format!("shark-{}", run.0)
}

/// Tries `short`, then `short-1`, `short-2`... while the name is taken (by a shark home
/// whose run ids overlap this one's).
fn free_name(
    short: &str,
    mut make: impl FnMut(&str) -> Result<Snapshot, shark_zfs::ZfsError>,
) -> Result<Snapshot, shark_zfs::ZfsError> {
    let mut name = short.to_owned();
    for n in 1.. {
        match make(&name) {
            Err(shark_zfs::ZfsError::Exists { .. }) if n < 100 => name = format!("{short}-{n}"),
            other => return other,
        }
    }
    unreachable!("the loop returns")
}

/// The run a snapshot name (`shark-42`, `shark-42-1`) stands for.
fn run_of(short: &str) -> Option<RunId> {
    let rest = short.strip_prefix("shark-")?;
    rest.split('-').next()?.parse().ok().map(RunId)
}

/// The record of a snapshot taken before `run`.
pub(crate) fn record(t: &Taken, run: RunId) -> SnapshotRecord {
    SnapshotRecord {
        run,
        name: t.snapshot.name.clone(),
        backend: t.volume.backend.as_str().to_owned(),
        filesystem: t.volume.name.clone(),
        mountpoint: t.volume.root.to_string_lossy().into_owned(),
        created: t.snapshot.created,
        pruned: false,
    }
}

/// The volume a recorded snapshot belongs to.
pub(crate) fn volume_of(s: &SnapshotRecord) -> Option<Volume> {
    Some(Volume {
        backend: shark_zfs::Backend::from_name(&s.backend)?,
        name: s.filesystem.clone(),
        root: PathBuf::from(&s.mountpoint),
    })
}
