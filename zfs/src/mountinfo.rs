//! Which mount a path is on, from `/proc/self/mountinfo`.

use std::path::{Path, PathBuf};

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// The filesystem type (`btrfs`, `zfs`, `fuse.zfs`, ...).
    pub fstype: String,
    /// The mount source (a ZFS dataset's name, a device).
    pub source: String,
}

/// Parses mountinfo text; malformed lines are skipped.
pub(crate) fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let fields: Vec<&str> = line.split(' ').collect();
    let point = fields.get(4)?;
    let dash = fields.iter().position(|f| *f == "-")?;
    Some(Mount {
        point: PathBuf::from(unescape(point)),
        fstype: fields.get(dash + 1)?.to_string(),
        source: unescape(fields.get(dash + 2)?),
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount `path` (absolute, symlinks resolved) is on: the longest mount point above it, the
/// later mount winning among equals (it hides the earlier one).
pub(crate) fn containing<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.point))
        .max_by_key(|(i, m)| (m.point.components().count(), *i))
        .map(|(_, m)| m)
}

/// This process's mounts.
pub(crate) fn current() -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
90 22 0:41 / /var/tmp/zfs\\040pool/mnt rw,relatime shared:50 - fuse.zfs tank/work rw,user_id=0
91 22 7:0 / /var/tmp/b rw - btrfs /dev/loop0 rw,space_cache=v2,subvolid=5,subvol=/
92 22 7:1 / /var/tmp/b rw - btrfs /dev/loop1 rw
";

    #[test]
    fn the_longest_and_latest_mount_point_wins() {
        let mounts = parse(SAMPLE);
        assert_eq!(mounts.len(), 4);
        let m = containing(&mounts, Path::new("/var/tmp/zfs pool/mnt/a/b")).unwrap();
        assert_eq!(
            (m.fstype.as_str(), m.source.as_str()),
            ("fuse.zfs", "tank/work")
        );
        let m = containing(&mounts, Path::new("/var/tmp/b/x")).unwrap();
        assert_eq!(m.source, "/dev/loop1");
        let m = containing(&mounts, Path::new("/var/tmp/bx")).unwrap();
        assert_eq!(m.fstype, "ext4");
    }
}
