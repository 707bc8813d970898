//! ZFS through its command-line tools (`zfs`). Shark's snapshots are `DATASET@shark-RUN`, with
//! the time taken in the user property `org.shark:created` (seconds since the epoch, with
//! nanoseconds: `zfs list` prints `creation` to the minute only on some versions).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::tools::args;
use crate::{Access, Snapshot, Tools, View, Volume, ZfsError};

const CREATED: &str = "org.shark:created";
/// The permissions shark needs on a dataset: take, destroy (prune) and mount (read) snapshots.
const NEEDED: [&str; 1] = ["snapshot"];

pub(crate) fn access(tools: &dyn Tools, dataset: &str) -> Access {
    if rustix::process::geteuid().is_root() {
        return match tools.run("zfs", &args(["list", "-H", "-o", "name", dataset])) {
            Ok(_) => Access::Allowed,
            Err(e) => Access::Denied(format!("the zfs tool cannot reach dataset {dataset}: {e}")),
        };
    }
    match tools.run("zfs", &args(["allow", dataset])) {
        Ok(text) => {
            let granted = delegated(&text, &identities());
            match NEEDED.iter().find(|p| !granted.iter().any(|g| g == *p)) {
                None => Access::Allowed,
                Some(p) => Access::Denied(format!(
                    "no ZFS delegation of `{p}` on {dataset} for this user (an administrator \
                     can run `zfs allow USER snapshot,destroy,mount,clone,rollback {dataset}`)"
                )),
            }
        }
        Err(e) => Access::Denied(format!("cannot read the ZFS delegations of {dataset}: {e}")),
    }
}

/// The current user's name and groups, as `zfs allow` names them (`user NAME`, `group NAME`).
fn identities() -> Vec<String> {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let mut ids = vec![
        format!("user {uid}"),
        format!("group {gid}"),
        "everyone".into(),
    ];
    if let Some(name) = name_of("/etc/passwd", uid) {
        ids.push(format!("user {name}"));
    }
    if let Some(name) = name_of("/etc/group", gid) {
        ids.push(format!("group {name}"));
    }
    ids
}

fn name_of(db: &str, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(db).ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.get(2).and_then(|n| n.parse::<u32>().ok()) == Some(id))
        .map(|f| f[0].to_owned())
}

/// The permissions `zfs allow DATASET` output grants to any of `who` (lines such as
/// `\tuser alice snapshot,mount` or `\teveryone hold`), in local or descendent sections.
pub(crate) fn delegated(text: &str, who: &[String]) -> Vec<String> {
    let mut perms = Vec::new();
    for line in text.lines().map(str::trim) {
        for id in who {
            let Some(rest) = line.strip_prefix(id.as_str()) else {
                continue;
            };
            if let Some(list) = rest.strip_prefix(' ') {
                perms.extend(list.split(',').map(|p| p.trim().to_owned()));
            }
        }
    }
    perms
}

pub(crate) fn snapshot(
    tools: &dyn Tools,
    dataset: &str,
    short: &str,
    created: SystemTime,
) -> Result<Snapshot, ZfsError> {
    let name = format!("{dataset}@{short}");
    let stamp = format!("{CREATED}={}", encode_time(created));
    tools
        .run("zfs", &args(["snapshot", "-o", &stamp, &name]))
        .map_err(|e| exists(e, &name))?;
    Ok(Snapshot {
        name,
        short: short.to_owned(),
        created,
    })
}

pub(crate) fn rename(
    tools: &dyn Tools,
    dataset: &str,
    snap: &Snapshot,
    short: &str,
) -> Result<Snapshot, ZfsError> {
    let name = format!("{dataset}@{short}");
    tools
        .run("zfs", &args(["rename", &snap.name, &name]))
        .map_err(|e| exists(e, &name))?;
    Ok(Snapshot {
        name,
        short: short.to_owned(),
        created: snap.created,
    })
}

/// A failure because the name is taken, as [`ZfsError::Exists`].
fn exists(e: ZfsError, name: &str) -> ZfsError {
    match e {
        ZfsError::Command { ref stderr, .. } if stderr.contains("already exists") => {
            ZfsError::Exists {
                name: name.to_owned(),
            }
        }
        other => other,
    }
}

pub(crate) fn list(tools: &dyn Tools, dataset: &str) -> Result<Vec<Snapshot>, ZfsError> {
    let text = tools.run(
        "zfs",
        &args(
            ["list", "-H", "-d", "1", "-t", "snapshot", "-o"]
                .into_iter()
                .map(String::from)
                .chain([format!("name,{CREATED}"), dataset.to_owned()]),
        ),
    )?;
    parse_list(&text, dataset)
}

pub(crate) fn parse_list(text: &str, dataset: &str) -> Result<Vec<Snapshot>, ZfsError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let parse_err = || ZfsError::Parse {
            program: "zfs".into(),
            line: line.to_owned(),
        };
        let (name, created) = line.split_once('\t').ok_or_else(parse_err)?;
        let Some(short) = name
            .strip_prefix(dataset)
            .and_then(|r| r.strip_prefix('@'))
            .filter(|s| s.starts_with("shark-"))
        else {
            continue;
        };
        let Some(created) = decode_time(created) else {
            continue; // named like ours, not stamped by shark: not ours
        };
        out.push(Snapshot {
            name: name.to_owned(),
            short: short.to_owned(),
            created,
        });
    }
    Ok(out)
}

fn encode_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

fn decode_time(text: &str) -> Option<SystemTime> {
    let (secs, nanos) = text.split_once('.').unwrap_or((text, "0"));
    let d = Duration::new(secs.parse().ok()?, nanos.parse().ok()?);
    Some(UNIX_EPOCH + d)
}

pub(crate) fn destroy(tools: &dyn Tools, name: &str) -> Result<(), ZfsError> {
    tools.run("zfs", &args(["destroy", name])).map(drop)
}

pub(crate) fn is_latest(tools: &dyn Tools, dataset: &str, name: &str) -> Result<bool, ZfsError> {
    let text = tools.run(
        "zfs",
        &args([
            "list", "-H", "-d", "1", "-t", "snapshot", "-o", "name", "-s", "creation", dataset,
        ]),
    )?;
    Ok(text.lines().rfind(|l| !l.is_empty()) == Some(name))
}

pub(crate) fn rollback(tools: &dyn Tools, name: &str) -> Result<(), ZfsError> {
    tools.run("zfs", &args(["rollback", name])).map(drop)
}

/// The snapshot's files: `.zfs/snapshot/SHORT` under the mount point where the dataset shows
/// it (kernel ZFS), else a clone mounted under `scratch`.
pub(crate) fn view<'t>(
    tools: &'t dyn Tools,
    volume: &Volume,
    name: &str,
    scratch: &Path,
) -> Result<View<'t>, ZfsError> {
    let short = name.rsplit_once('@').map_or(name, |(_, s)| s);
    let dir = volume.root.join(".zfs/snapshot").join(short);
    if dir.is_dir() {
        return Ok(View {
            root: dir,
            clone: None,
        });
    }
    static N: AtomicU64 = AtomicU64::new(0);
    let pool = volume.name.split('/').next().unwrap_or(&volume.name);
    sweep_views(tools, pool);
    let tag = format!(
        "shark-view-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let clone = format!("{pool}/{tag}");
    let mount = scratch.join(&tag);
    std::fs::create_dir_all(&mount).map_err(crate::error::io_err(&mount))?;
    let mountpoint = format!("mountpoint={}", mount.display());
    let cloned = tools.run(
        "zfs",
        &args([
            "clone",
            "-o",
            &mountpoint,
            "-o",
            "readonly=on",
            name,
            &clone,
        ]),
    );
    if let Err(e) = cloned {
        let _ = std::fs::remove_dir(&mount);
        return Err(e);
    }
    Ok(View {
        root: mount,
        clone: Some((clone, tools)),
    })
}

/// Destroys the view clones (`POOL/shark-view-PID-N`) that killed processes left behind.
pub(crate) fn sweep_views(tools: &dyn Tools, pool: &str) {
    let Ok(text) = tools.run("zfs", &args(["list", "-H", "-d", "1", "-o", "name", pool])) else {
        return;
    };
    for name in text.lines() {
        let pid = name
            .strip_prefix(pool)
            .and_then(|r| r.strip_prefix("/shark-view-"))
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new("/proc").join(p.to_string()).exists()) {
            destroy_clone(tools, name);
        }
    }
}

/// Unmounts and destroys a view's clone. zfs-fuse reports a dataset busy for a moment after
/// its files were last used, so a busy clone is tried again for a few seconds.
pub(crate) fn destroy_clone(tools: &dyn Tools, clone: &str) {
    let mount = tools
        .run(
            "zfs",
            &args(["get", "-H", "-o", "value", "mountpoint", clone]),
        )
        .ok();
    for attempt in 0..50 {
        match tools.run("zfs", &args(["destroy", "-f", clone])) {
            Err(ZfsError::Command { stderr, .. }) if stderr.contains("busy") && attempt < 49 => {
                std::thread::sleep(Duration::from_millis(100));
            }
            _ => break,
        }
    }
    if let Some(m) = mount {
        let _ = std::fs::remove_dir(m.trim());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegations_of_the_user_group_and_everyone_count() {
        let text = "---- Permissions on tank/work ---------------------------------------\n\
                    Local+Descendent permissions:\n\
                    \tuser alice snapshot,mount\n\
                    \tuser alicia destroy\n\
                    \tgroup staff clone\n\
                    \teveryone hold\n";
        let who = [
            "user alice".to_owned(),
            "group staff".into(),
            "everyone".into(),
        ];
        assert_eq!(
            delegated(text, &who),
            ["snapshot", "mount", "clone", "hold"]
        );
        assert!(delegated(text, &["user bob".to_owned()]).is_empty());
    }

    #[test]
    fn only_stamped_shark_snapshots_of_the_dataset_are_listed() {
        let text = "tank/w@shark-7\t1700000000.000000005\n\
                    tank/w@daily\t-\n\
                    tank/w@shark-manual\t-\n\
                    tank/w@shark-9\t1700000100.5\n";
        let list = parse_list(text, "tank/w").unwrap();
        let names: Vec<&str> = list.iter().map(|s| s.short.as_str()).collect();
        assert_eq!(names, ["shark-7", "shark-9"]);
        assert_eq!(
            list[0].created,
            UNIX_EPOCH + Duration::new(1_700_000_000, 5)
        );
        assert_eq!(encode_time(list[0].created), "1700000000.000000005");
        assert!(parse_list("garbage-without-tab", "tank/w").is_err());
    }
}
