//! The digests a server speaks, and how shark's BLAKE3 digests map onto them.
//!
//! Shark names content by BLAKE3 ([`shark_store::Digest`]). A REAPI server names it by the
//! digest function it was asked for, among those its capabilities list. Where the server
//! offers BLAKE3 the two names are the same hash; otherwise the remote name is SHA-256, which
//! is computed once per blob (while the blob is read for its first upload, or while it is
//! downloaded) and kept in the [`crate::DigestMap`].

use std::io::Read;

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use sha2::Digest as _;

/// A digest function shark can use with a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestKind {
    /// BLAKE3: the server's names are shark's own.
    Blake3,
    /// SHA-256: every REAPI server supports it.
    Sha256,
}

impl DigestKind {
    /// The best of the digest functions a server lists (REAPI enum values): BLAKE3 where
    /// offered, else SHA-256; `None` when the server offers neither.
    pub fn choose(offered: &[i32]) -> Option<DigestKind> {
        let has = |v: re::digest_function::Value| offered.contains(&(v as i32));
        if has(re::digest_function::Value::Blake3) {
            Some(DigestKind::Blake3)
        } else if has(re::digest_function::Value::Sha256) || offered.is_empty() {
            // A server that lists nothing predates the field and speaks SHA-256.
            Some(DigestKind::Sha256)
        } else {
            None
        }
    }

    /// The REAPI enum value, for requests' `digest_function` fields.
    pub fn proto(self) -> i32 {
        match self {
            DigestKind::Blake3 => re::digest_function::Value::Blake3 as i32,
            DigestKind::Sha256 => re::digest_function::Value::Sha256 as i32,
        }
    }

    /// The name ByteStream resource names use (lowercase REAPI enum name).
    pub fn name(self) -> &'static str {
        match self {
            DigestKind::Blake3 => "blake3",
            DigestKind::Sha256 => "sha256",
        }
    }

    /// A hasher of this kind.
    pub fn hasher(self) -> Hasher {
        let inner = match self {
            DigestKind::Blake3 => Inner::Blake3(Box::default()),
            DigestKind::Sha256 => Inner::Sha256(sha2::Sha256::new()),
        };
        Hasher { inner, size: 0 }
    }

    /// The digest of `bytes`.
    pub fn of_bytes(self, bytes: &[u8]) -> RemoteDigest {
        let mut h = self.hasher();
        h.update(bytes);
        h.finish()
    }

    /// The digest of everything `reader` yields.
    pub fn of_reader(self, mut reader: impl Read) -> std::io::Result<RemoteDigest> {
        let mut h = self.hasher();
        let mut buf = vec![0; 1 << 16];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok(h.finish());
            }
            h.update(&buf[..n]);
        }
    }
}

/// An incremental hash of one [`DigestKind`] that counts the bytes it saw.
#[derive(Debug)]
pub struct Hasher {
    inner: Inner,
    size: u64,
}

#[derive(Debug)]
enum Inner {
    Blake3(Box<blake3::Hasher>),
    Sha256(sha2::Sha256),
}

impl Hasher {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        match &mut self.inner {
            Inner::Blake3(h) => {
                h.update(bytes);
            }
            Inner::Sha256(h) => h.update(bytes),
        }
    }

    /// The digest of everything added.
    pub fn finish(self) -> RemoteDigest {
        let hash = match self.inner {
            Inner::Blake3(h) => h.finalize().to_hex().to_string(),
            Inner::Sha256(h) => hex(&h.finalize()),
        };
        RemoteDigest {
            hash,
            size: self.size,
        }
    }
}

/// A content name as a server knows it: lowercase hex hash and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteDigest {
    /// Lowercase hex.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
}

impl RemoteDigest {
    /// The protocol message.
    pub fn proto(&self) -> re::Digest {
        re::Digest {
            hash: self.hash.clone(),
            size_bytes: i64::try_from(self.size).unwrap_or(i64::MAX),
        }
    }

    /// From the protocol message; `None` for a malformed one (negative size, hash that is not
    /// lowercase hex of the expected length).
    pub fn from_proto(d: &re::Digest, kind: DigestKind) -> Option<RemoteDigest> {
        let size = u64::try_from(d.size_bytes).ok()?;
        let expected = match kind {
            DigestKind::Blake3 | DigestKind::Sha256 => 64,
        };
        let hex_ok = d.hash.len() == expected
            && d.hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        hex_ok.then(|| RemoteDigest {
            hash: d.hash.clone(),
            size,
        })
    }
}

impl std::fmt::Display for RemoteDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.hash, self.size)
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // SHA-256 and BLAKE3 of the empty string and of "abc" (published test vectors).
        let sha = DigestKind::Sha256.hasher().finish();
        assert_eq!(
            sha.hash,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sha.size, 0);
        let mut c = DigestKind::Sha256.hasher();
        c.update(b"ab");
        c.update(b"c");
        let abc = c.finish();
        assert_eq!(
            abc.hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(abc.size, 3);
        assert_eq!(DigestKind::Sha256.of_bytes(b"abc").hash, abc.hash);
        let b3 = DigestKind::Blake3.of_bytes(b"abc");
        assert_eq!(
            b3.hash,
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        assert_eq!(b3.hash, shark_store::Digest::of_bytes(b"abc").to_hex());
    }

    #[test]
    fn blake3_is_chosen_where_offered() {
        use re::digest_function::Value;
        let sha = Value::Sha256 as i32;
        let b3 = Value::Blake3 as i32;
        assert_eq!(DigestKind::choose(&[sha]), Some(DigestKind::Sha256));
        assert_eq!(DigestKind::choose(&[sha, b3]), Some(DigestKind::Blake3));
        assert_eq!(DigestKind::choose(&[]), Some(DigestKind::Sha256));
        assert_eq!(DigestKind::choose(&[Value::Md5 as i32]), None);
    }

    #[test]
    fn malformed_proto_digests_are_refused() {
        let good = DigestKind::Sha256.of_bytes(b"x");
        assert_eq!(
            RemoteDigest::from_proto(&good.proto(), DigestKind::Sha256),
            Some(good.clone())
        );
        let mut bad = good.proto();
        bad.size_bytes = -1;
        assert!(RemoteDigest::from_proto(&bad, DigestKind::Sha256).is_none());
        let mut bad = good.proto();
        bad.hash = "../../etc/passwd".into();
        assert!(RemoteDigest::from_proto(&bad, DigestKind::Sha256).is_none());
    }
}
