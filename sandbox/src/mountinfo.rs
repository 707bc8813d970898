//! The host's mount points, to refuse writable roots that overlayfs cannot cover.
//!
//! In a user namespace every inherited mount is locked to the one above it, and overlayfs will
//! not take a lower directory with locked mounts beneath it (that would reveal what they hide).
//! So a writable root with a mount point inside gets a clear error before anything starts.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::error::InvalidSpec;
use crate::SandboxError;

/// Fails if a mount point lies strictly inside one of `roots`.
pub(crate) fn check_roots(roots: &[PathBuf]) -> Result<(), SandboxError> {
    let mut table = Vec::with_capacity(16 * 1024); // one read for most tables
    let read =
        std::fs::File::open("/proc/self/mountinfo").and_then(|mut f| f.read_to_end(&mut table));
    if read.is_err() {
        return Ok(()); // no /proc: the overlay mount itself will report the problem
    }
    for mount in mount_points(&table) {
        if let Some(root) = roots.iter().find(|r| mount != **r && mount.starts_with(r)) {
            let reason = InvalidSpec::MountInsideRoot {
                root: root.clone(),
                mount,
            };
            return Err(SandboxError::InvalidSpec { reason });
        }
    }
    Ok(())
}

/// The mount point (fifth field) of every line of a mountinfo table.
fn mount_points(table: &[u8]) -> impl Iterator<Item = PathBuf> + '_ {
    table
        .split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape(field))))
        .filter(|p| p != Path::new("/"))
}

/// Undoes the kernel's octal escapes (`\040` for a space, `\012`, `\011`, `\134`).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, c| acc.wrapping_mul(8) + (c - b'0')),
                );
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mount_points_with_escapes() {
        let table = b"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
            44 22 0:47 / /tmp/a\\040b rw,relatime - btrfs /dev/loop0 rw\n";
        let points: Vec<_> = mount_points(table).collect();
        assert_eq!(points, [PathBuf::from("/tmp/a b")]);
    }

    #[test]
    fn a_mount_inside_a_root_is_refused_but_one_at_the_root_is_fine() {
        let table = b"44 22 0:47 / /tmp rw - tmpfs tmpfs rw\n45 22 0:48 / /home/u/m rw - x y rw\n";
        let inside =
            |root: &str| mount_points(table).any(|m| m != Path::new(root) && m.starts_with(root));
        assert!(!inside("/tmp"));
        assert!(inside("/home/u"));
        assert!(!inside("/home/u2"));
    }
}
