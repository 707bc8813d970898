//! `shark-remote`: shark's results shared through a Remote Execution API (REAPI) server.
//!
//! A group that runs the same pipelines on several machines points every shark at one REAPI
//! server (BuildGrid, Buildbarn, NativeLink, bazel-remote): its Action Cache and
//! Content-Addressable Store hold what one machine computed, and another machine reuses it
//! instead of running the command. Shark's observed inputs map onto the Action Cache with a
//! two-phase lookup ([`key`], [`shared`]):
//!
//! 1. The **weak key** ([`WeakKey`]: the command in portable form and the conditions it ran
//!    under) names an entry that lists the recorded **path-sets** ([`PathSets`]): for each
//!    recorded run of the command, which paths it depended on, without their values.
//! 2. For each path-set, this machine observes its paths ([`Probe`]) and the **strong key**
//!    over the values seen names an entry whose result holds the outputs, streams, exit status
//!    and the run's [`Description`]. Only what it names is downloaded, each blob checked
//!    against its digest ([`RemoteCache::fetch`]).
//!
//! Keys are **portable** ([`portable`]): the machine's own locations (working directory,
//! `HOME`, `TMPDIR`, the shark home) are replaced by the role they play, so checkouts in
//! different places share results, while system files stay absolute and keep machines with
//! different software apart. A run whose outputs mention such a location is not shared.
//!
//! Digests: the server's capabilities decide ([`DigestKind`]): BLAKE3, shark's own, where
//! offered, else SHA-256, with the BLAKE3 → SHA-256 names kept in a [`DigestMap`] so content
//! is hashed for the server once.
//!
//! The [`Client`] is blocking (a private single-threaded runtime drives tonic), bounded by
//! timeouts and retries ([`client`]); small blobs travel in batches, large ones through
//! ByteStream ([`bytestream`]). This crate never prints: the shell decides what to tell the
//! user (a warning when the server cannot be used, progress for large transfers).
//!
//! ```no_run
//! use shark_remote::{Client, Settings};
//! let settings = Settings::parse_url("grpc://127.0.0.1:50051")?;
//! let client = Client::new(settings)?;
//! println!("digest function: {:?}", client.capabilities()?.digest);
//! # Ok::<(), shark_remote::RemoteError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bytestream;
mod cache;
pub mod client;
pub mod config;
pub mod digest;
mod error;
pub mod key;
mod map;
pub mod portable;
pub mod shared;
mod upload;

pub use bytestream::{Progress, Quiet};
pub use cache::{Hit, Miss, Probe, ProgressFactory, RemoteCache, SHARK_FILE, STREAM_FROM};
pub use client::{Capabilities, Client};
pub use config::{Overrides, Settings};
pub use digest::{DigestKind, RemoteDigest};
pub use error::RemoteError;
pub use key::WeakKey;
pub use map::{DigestMap, RunKey};
pub use portable::{Locations, Role};
pub use shared::{Description, PathEntry, PathSet, PathSets};
pub use upload::{Sent, Unshareable, Upload};

/// An error and its causes, on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
