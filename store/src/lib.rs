//! `shark-store`: the content-addressed store every recorded file passes through.
//!
//! Key types: [`Digest`], the BLAKE3 name of a file's content, of a directory listing or of a
//! symlink target (formats in [`digest`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod digest;

pub use digest::{Digest, DigestParseError, EntryKind};
