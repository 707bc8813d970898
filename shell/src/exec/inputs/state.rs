//! What is at a path now, in the terms inputs are recorded in: content digests of files,
//! listing digests of directories (with names left out), digests of special files and of
//! extended attributes, and permission bits.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use shark_lineage::{InputKind, PathState};
use shark_store::{Digest, EntryKind, StatCache};

/// Permission bits kept for inputs (with setuid, setgid and sticky).
pub(crate) const MODE_BITS: u32 = 0o7777;

/// The permission bits of `meta`.
pub(crate) fn mode_of(meta: &fs::Metadata) -> u32 {
    meta.permissions().mode() & MODE_BITS
}

/// The listing digest of a directory: its names and their kinds, leaving out `exclude` (see
/// `shark_store::digest` for the format).
pub fn listing_digest(dir: &Path, exclude: &[String]) -> std::io::Result<Digest> {
    let mut entries = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        if exclude.iter().any(|x| x.as_bytes() == name.as_bytes()) {
            continue;
        }
        entries.push((name, EntryKind::of(e.file_type()?)));
    }
    Ok(Digest::of_listing(
        entries.iter().map(|(n, k)| (n.as_bytes(), *k)),
    ))
}

/// The digest standing for a fifo, socket or device node: its kind and device number.
pub(crate) fn special_digest(meta: &fs::Metadata) -> Digest {
    let ft = meta.file_type();
    let kind = if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "char"
    } else {
        "block"
    };
    Digest::of_bytes(format!("shark-special-v1 {kind} {}", meta.rdev()).as_bytes())
}

/// The digest of every extended attribute of `path` (symlinks followed) that this process
/// can read: names sorted, each with its value, length-prefixed.
pub(crate) fn xattrs_digest(path: &Path) -> std::io::Result<Digest> {
    let mut names = vec![0u8; 4096];
    let len = loop {
        match rustix::fs::listxattr(path, &mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => break 0,
            Err(e) => return Err(e.into()),
        }
    };
    let mut list: Vec<&[u8]> = names[..len]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .collect();
    list.sort();
    let mut h = blake3::Hasher::new();
    h.update(b"shark-xattrs-v1");
    let mut value = vec![0u8; 256];
    for name in list {
        let cname = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
        let n = loop {
            match rustix::fs::getxattr(path, cname.as_c_str(), &mut value[..]) {
                Ok(n) => break n,
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                // Gone or unreadable since it was listed: recorded as without a value.
                Err(_) => break 0,
            }
        };
        for field in [name, &value[..n]] {
            h.update(&(field.len() as u64).to_le_bytes());
            h.update(field);
        }
    }
    Ok(Digest::from(h.finalize()))
}

/// What is at `path` (symlinks followed) as an input of kind `kind` would record it, and its
/// permission bits; `listing` asks for a directory's listing digest without `exclude`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Now {
    /// Kind, digest and permission bits.
    Is(InputKind, Option<Digest>, Option<u32>),
    /// It could not be read: never equal to a recorded state.
    Unreadable(String),
}

/// The state of `path` now (symlinks followed), with a directory's listing when `listing`.
pub(crate) fn now(path: &Path, listing: Option<&[String]>, cache: &StatCache) -> Now {
    let meta = match fs::metadata(path) {
        Err(_) => return Now::Is(InputKind::Absent, None, None),
        Ok(meta) => meta,
    };
    let mode = Some(mode_of(&meta));
    if meta.is_file() {
        match cache.digest_with(path, &meta) {
            Ok(d) => Now::Is(InputKind::File, Some(d), mode),
            Err(e) => Now::Unreadable(format!("unreadable file ({e})")),
        }
    } else if meta.is_dir() {
        match listing.map(|x| listing_digest(path, x)).transpose() {
            Ok(d) => Now::Is(InputKind::Dir, d, mode),
            Err(e) => Now::Unreadable(format!("unreadable directory ({e})")),
        }
    } else {
        Now::Is(InputKind::Special, Some(special_digest(&meta)), mode)
    }
}

/// What the unit of work leaves at `path` when it tracks it: its whole listing for a listed
/// directory, else what is there (as [`now`], without permission bits).
pub(crate) fn unit_state(path: &Path, listing: bool, cache: &StatCache) -> Option<PathState> {
    if listing {
        let digest = listing_digest(path, &[]).ok()?;
        return Some(PathState::Listing { digest });
    }
    match now(path, None, cache) {
        Now::Is(kind, digest, _) => Some(PathState::Entry { kind, digest }),
        Now::Unreadable(_) => None,
    }
}

/// Describes a recorded or current state in a few words.
pub(crate) fn describe(kind: InputKind, digest: Option<&Digest>, mode: Option<u32>) -> String {
    let short = |d: Option<&Digest>| d.map_or_else(|| "?".to_string(), |d| d.short(12));
    let what = match (kind, digest) {
        (InputKind::File, d) => format!("file {}", short(d)),
        (InputKind::Dir, Some(d)) => format!("directory listing {}", d.short(12)),
        (InputKind::Dir, None) => "a directory".into(),
        (InputKind::Symlink, d) => format!("symlink {}", short(d)),
        (InputKind::Absent, _) => "absent".into(),
        (InputKind::Stdin, d) => format!("stdin {}", short(d)),
        (InputKind::NotDir, _) => "not a directory".into(),
        (InputKind::Special, d) => format!("special file {}", short(d)),
        (InputKind::Xattrs, d) => format!("extended attributes {}", short(d)),
    };
    match mode {
        Some(m) => format!("{what} (mode {m:o})"),
        None => what,
    }
}
