//! Digests: 32-byte BLAKE3 hashes, written as 64 lowercase hex characters.
//!
//! # Formats
//!
//! These formats are part of the lineage database and the store layout; changing one changes
//! every recorded digest, so each is pinned by a test vector below.
//!
//! - **File**: BLAKE3 of the file's bytes, nothing else. The empty file is
//!   `af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262`.
//! - **Symlink**: BLAKE3 of `"shark-symlink-v1\0"` followed by the raw target bytes.
//! - **Directory listing**: BLAKE3 of `"shark-dir-v1\0"` followed by, for each entry in
//!   ascending byte order of its name, one kind byte (`f` file, `d` directory, `l` symlink,
//!   `o` anything else), the raw name bytes and a `\0`. `.` and `..` are never entries. Names
//!   cannot contain `\0`, so the encoding is unambiguous. The listing covers names and kinds
//!   only: a file whose content changes does not change its directory's listing digest.
//!
//! Test vectors (checked below, and reproducible with `b3sum`):
//!
//! | input | digest |
//! |---|---|
//! | empty file | `af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262` |
//! | file `hello\n` (6 bytes) | `8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99` |
//! | file of 1,048,577 zero bytes (1 MiB + 1) | `c9b3e89559bb623b5e2dc19daebf3933c1afe5ee5dca08428522e60a40fcb998` |
//! | symlink to `../data/in.tif` | `b3c9c02048696d0a458908bfb8a4d28f2932dba19e26dc6f5db1e884b0dfe4e1` |
//! | empty directory | `3d4a1e7f0386ea226c796e6a12878c124a61299ccf8af5b7aaf70fcd50262411` |
//! | directory: file `a.txt`, dir `sub`, symlink `link` | `1c23dbaa30b678286143604006ed351f83a0a69d9d4594503009a1e33bc26349` |
//!
//! For example `head -c 1048577 /dev/zero | b3sum` gives the third,
//! `printf 'shark-symlink-v1\0../data/in.tif' | b3sum` the fourth and
//! `printf 'shark-dir-v1\0fa.txt\0llink\0dsub\0' | b3sum` the last one. The store's streaming
//! put, which hashes in 1 MiB chunks, gives the same file digests (checked in its tests).
//!
//! ```
//! use shark_store::{Digest, EntryKind};
//! let d = Digest::of_bytes(b"hello\n");
//! assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
//! let listing = Digest::of_listing([(b"a.txt".as_slice(), EntryKind::File)]);
//! assert_ne!(listing, d);
//! ```

use std::fmt;
use std::str::FromStr;

/// Domain prefix of a symlink digest.
const SYMLINK_DOMAIN: &[u8] = b"shark-symlink-v1\0";
/// Domain prefix of a directory-listing digest.
const LISTING_DOMAIN: &[u8] = b"shark-dir-v1\0";

/// A 32-byte BLAKE3 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// The kind of a directory entry, as it enters a listing digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (fifo, socket, device).
    Other,
}

impl EntryKind {
    /// The byte that stands for this kind in a listing digest.
    pub fn tag(self) -> u8 {
        match self {
            EntryKind::File => b'f',
            EntryKind::Dir => b'd',
            EntryKind::Symlink => b'l',
            EntryKind::Other => b'o',
        }
    }

    /// The kind of a `std::fs::FileType`.
    pub fn of(file_type: std::fs::FileType) -> Self {
        if file_type.is_file() {
            EntryKind::File
        } else if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Other
        }
    }
}

/// A string that is not 64 hex characters.
#[derive(Debug, thiserror::Error)]
#[error("malformed digest {input:?}: expected 64 hexadecimal characters")]
pub struct DigestParseError {
    /// The rejected text.
    pub input: String,
}

impl Digest {
    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest of a file whose content is `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// The digest of the file at `path`, streamed: read a chunk at a time and hashed on every
    /// core, its holes hashed as zeros without being read (see `SEEK_DATA`), so memory stays
    /// a few MiB whatever its size. Anything but a regular file (after following symlinks) is
    /// an error of kind [`std::io::ErrorKind::InvalidInput`]; a FIFO is refused, not waited
    /// on.
    pub fn of_file(path: &std::path::Path) -> std::io::Result<Self> {
        let file = crate::put::open_nonblocking(path)?;
        if !file.metadata()?.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let (hash, _) = crate::sparse::hash_file(&file)?;
        Ok(Digest(*hash.as_bytes()))
    }

    /// The digest of a symlink whose target is `target` (raw bytes of the path).
    pub fn of_symlink(target: &[u8]) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(SYMLINK_DOMAIN);
        h.update(target);
        Digest(*h.finalize().as_bytes())
    }

    /// The digest of a directory listing; entries may come in any order.
    pub fn of_listing<'a, I>(entries: I) -> Self
    where
        I: IntoIterator<Item = (&'a [u8], EntryKind)>,
    {
        let mut sorted: Vec<(&[u8], EntryKind)> = entries.into_iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut h = blake3::Hasher::new();
        h.update(LISTING_DOMAIN);
        for (name, kind) in sorted {
            h.update(&[kind.tag()]);
            h.update(name);
            h.update(b"\0");
        }
        Digest(*h.finalize().as_bytes())
    }

    /// The 64-character lowercase hex form.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// The first `n` hex characters, for display.
    pub fn short(&self, n: usize) -> String {
        let mut s = self.to_string();
        s.truncate(n);
        s
    }
}

impl From<blake3::Hash> for Digest {
    fn from(h: blake3::Hash) -> Self {
        Digest(*h.as_bytes())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DigestParseError {
            input: s.to_owned(),
        };
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(err());
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or_else(err)?;
            let lo = hex_value(pair[1]).ok_or_else(err)?;
            out[i] = hi << 4 | lo;
        }
        Ok(Digest(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn empty_file_vector() {
        assert_eq!(
            Digest::of_bytes(b"").to_string(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    /// `hello\n` and 1 MiB + 1 zero bytes: the latter spans more than one hashing chunk.
    pub(crate) const FILE_VECTORS: [(&[u8], usize, &str); 2] = [
        (
            b"hello\n",
            1,
            "8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99",
        ),
        (
            &[0],
            1_048_577,
            "c9b3e89559bb623b5e2dc19daebf3933c1afe5ee5dca08428522e60a40fcb998",
        ),
    ];

    /// The content of a [`FILE_VECTORS`] entry: `pattern` repeated `times`.
    pub(crate) fn vector_content(pattern: &[u8], times: usize) -> Vec<u8> {
        pattern.repeat(times)
    }

    #[test]
    fn file_vectors_from_bytes_and_files() {
        let dir = tempfile::tempdir().unwrap();
        for (pattern, times, hex) in FILE_VECTORS {
            let content = vector_content(pattern, times);
            assert_eq!(Digest::of_bytes(&content).to_string(), hex);
            let p = dir.path().join("f");
            std::fs::write(&p, &content).unwrap();
            assert_eq!(Digest::of_file(&p).unwrap().to_string(), hex);
        }
    }

    #[test]
    fn symlink_and_listing_vectors() {
        assert_eq!(
            Digest::of_symlink(b"../data/in.tif").to_string(),
            "b3c9c02048696d0a458908bfb8a4d28f2932dba19e26dc6f5db1e884b0dfe4e1"
        );
        assert_eq!(
            Digest::of_listing([]).to_string(),
            "3d4a1e7f0386ea226c796e6a12878c124a61299ccf8af5b7aaf70fcd50262411"
        );
        let listing = Digest::of_listing([
            (b"sub".as_slice(), EntryKind::Dir),
            (b"a.txt", EntryKind::File),
            (b"link", EntryKind::Symlink),
        ]);
        assert_eq!(
            listing.to_string(),
            "1c23dbaa30b678286143604006ed351f83a0a69d9d4594503009a1e33bc26349"
        );
    }

    #[test]
    fn file_digest_streams_small_and_large_files() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 5, 16 * 1024, 3 * 1024 * 1024 + 17] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let p = dir.path().join(format!("f{len}"));
            std::fs::write(&p, &bytes).unwrap();
            assert_eq!(
                Digest::of_file(&p).unwrap(),
                Digest::of_bytes(&bytes),
                "{len}"
            );
        }
        assert!(Digest::of_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn hex_round_trip_and_rejects_malformed() {
        let d = Digest::of_bytes(b"abc");
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert_eq!(d.to_string().to_uppercase().parse::<Digest>().unwrap(), d);
        for bad in [
            "",
            "abc",
            &"g".repeat(64),
            &"a".repeat(63),
            &"a".repeat(65),
            "é",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn listing_is_order_independent_and_kind_sensitive() {
        let a = Digest::of_listing([(b"x".as_slice(), EntryKind::File), (b"y", EntryKind::Dir)]);
        let b = Digest::of_listing([(b"y".as_slice(), EntryKind::Dir), (b"x", EntryKind::File)]);
        let c = Digest::of_listing([(b"x".as_slice(), EntryKind::Dir), (b"y", EntryKind::Dir)]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        // "ab" + "c" must differ from "a" + "bc": the NUL terminator separates names.
        let d = Digest::of_listing([(b"ab".as_slice(), EntryKind::File), (b"c", EntryKind::File)]);
        let e = Digest::of_listing([(b"a".as_slice(), EntryKind::File), (b"bc", EntryKind::File)]);
        assert_ne!(d, e);
    }
}
