//! Large blobs through ByteStream: streamed in chunks both ways, never held whole in memory,
//! checked against their digest as they arrive.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use bazel_remote_apis::google::bytestream::byte_stream_client::ByteStreamClient;
use bazel_remote_apis::google::bytestream::{ReadRequest, WriteRequest};
use tonic::{Code, Status};

use crate::client::Client;
use crate::digest::{DigestKind, RemoteDigest};
use crate::RemoteError;

/// Bytes per ByteStream message.
pub const CHUNK: usize = 1 << 20;

/// Told how a transfer advances.
pub trait Progress {
    /// `done` of `total` bytes have gone through.
    fn advance(&mut self, done: u64, total: u64);
}

/// Progress nobody watches.
#[derive(Debug, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn advance(&mut self, _: u64, _: u64) {}
}

fn blob_path(kind: DigestKind, d: &RemoteDigest) -> String {
    match kind {
        // SHA-256 blobs keep the form every server understands, without the function name.
        DigestKind::Sha256 => format!("blobs/{}/{}", d.hash, d.size),
        other => format!("blobs/{}/{}/{}", other.name(), d.hash, d.size),
    }
}

fn with_instance(instance: &str, rest: String) -> String {
    match instance {
        "" => rest,
        i => format!("{i}/{rest}"),
    }
}

/// A name no other upload uses.
fn upload_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut h = blake3::Hasher::new();
    h.update(&std::process::id().to_le_bytes());
    h.update(&COUNT.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(&now.as_nanos().to_le_bytes());
    let x = h.finalize().to_hex();
    format!(
        "{}-{}-4{}-a{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[17..20],
        &x[20..32]
    )
}

impl Client {
    /// Streams blob `digest` into `sink`, checking it: a blob whose content does not match
    /// is [`RemoteError::Corrupt`] (what reached `sink` must then be thrown away). Each chunk
    /// must arrive within the timeout.
    pub fn read_blob(
        &self,
        digest: &RemoteDigest,
        sink: &mut dyn Write,
        progress: &mut dyn Progress,
    ) -> Result<(), RemoteError> {
        let conn = self.conn()?;
        let kind = conn.caps.digest;
        let timeout = self.settings.timeout;
        let name = with_instance(&self.settings.instance, blob_path(kind, digest));
        let mut client = ByteStreamClient::new(conn.channel.clone());
        let call_err = |status: Status| RemoteError::Call {
            call: "ByteStream.Read",
            status: Box::new(status),
        };
        let slow = || Status::deadline_exceeded(format!("no data within {} s", timeout.as_secs()));
        self.rt.block_on(async {
            let request = self.request(ReadRequest {
                resource_name: name.clone(),
                read_offset: 0,
                read_limit: 0,
            });
            let mut stream = tokio::time::timeout(timeout, client.read(request))
                .await
                .map_err(|_| call_err(slow()))?
                .map_err(call_err)?
                .into_inner();
            let mut hasher = kind.hasher();
            let mut done = 0;
            loop {
                let message = tokio::time::timeout(timeout, stream.message())
                    .await
                    .map_err(|_| call_err(slow()))?
                    .map_err(call_err)?;
                let Some(message) = message else { break };
                done += message.data.len() as u64;
                if done > digest.size {
                    return Err(RemoteError::Corrupt {
                        digest: digest.to_string(),
                    });
                }
                hasher.update(&message.data);
                sink.write_all(&message.data)
                    .map_err(|source| RemoteError::Io {
                        path: "(download)".into(),
                        source,
                    })?;
                progress.advance(done, digest.size);
            }
            if hasher.finish() != *digest {
                return Err(RemoteError::Corrupt {
                    digest: digest.to_string(),
                });
            }
            Ok(())
        })
    }

    /// Streams `source` (which must yield exactly the content `digest` names) to the server.
    /// The whole upload is bounded by the timeout plus one second per megabyte.
    pub fn write_blob(
        &self,
        digest: &RemoteDigest,
        source: Box<dyn Read + Send>,
        progress: &mut dyn Progress,
    ) -> Result<(), RemoteError> {
        let conn = self.conn()?;
        let kind = conn.caps.digest;
        let name = with_instance(
            &self.settings.instance,
            format!("uploads/{}/{}", upload_id(), blob_path(kind, digest)),
        );
        let mut client = ByteStreamClient::new(conn.channel.clone());
        let total = digest.size;
        let sent = Arc::new(Mutex::new((0u64, None::<std::io::Error>)));
        let chunks = Chunks {
            source,
            name,
            offset: 0,
            total,
            finished: false,
            state: Arc::clone(&sent),
        };
        let budget = self.settings.timeout + std::time::Duration::from_secs(total >> 20);
        let request = self.request(tokio_stream::iter(chunks));
        let call_err = |status: Status| RemoteError::Call {
            call: "ByteStream.Write",
            status: Box::new(status),
        };
        let outcome = self.rt.block_on(async {
            let write = client.write(request);
            tokio::pin!(write);
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
            let deadline = tokio::time::sleep(budget);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    r = &mut write => return r,
                    _ = tick.tick() => {
                        let done = sent.lock().map_or(0, |s| s.0);
                        progress.advance(done, total);
                    }
                    _ = &mut deadline => {
                        return Err(Status::deadline_exceeded("the upload took too long"));
                    }
                }
            }
        });
        let read_error = sent.lock().ok().and_then(|mut s| s.1.take());
        if let Some(source) = read_error {
            return Err(RemoteError::Io {
                path: "(upload)".into(),
                source,
            });
        }
        let response = outcome.map_err(call_err)?;
        progress.advance(total, total);
        // A server that already had the blob may end the stream early and say so.
        let committed = u64::try_from(response.into_inner().committed_size).unwrap_or(0);
        if committed != total {
            return Err(call_err(Status::new(
                Code::DataLoss,
                format!("the server committed {committed} of {total} bytes"),
            )));
        }
        Ok(())
    }
}

/// The messages of one upload, read from the source as the stream is polled.
struct Chunks {
    source: Box<dyn Read + Send>,
    name: String,
    offset: u64,
    total: u64,
    finished: bool,
    state: Arc<Mutex<(u64, Option<std::io::Error>)>>,
}

impl Iterator for Chunks {
    type Item = WriteRequest;

    fn next(&mut self) -> Option<WriteRequest> {
        if self.finished {
            return None;
        }
        let want = usize::try_from((self.total - self.offset).min(CHUNK as u64)).unwrap_or(CHUNK);
        let mut data = vec![0; want];
        if let Err(e) = self.source.read_exact(&mut data) {
            // Ending without `finish_write` makes the server drop the upload.
            if let Ok(mut s) = self.state.lock() {
                s.1 = Some(e);
            }
            self.finished = true;
            return None;
        }
        let first = self.offset == 0;
        let write_offset = i64::try_from(self.offset).unwrap_or(i64::MAX);
        self.offset += want as u64;
        self.finished = self.offset >= self.total;
        if let Ok(mut s) = self.state.lock() {
            s.0 = self.offset;
        }
        Some(WriteRequest {
            // Only the first message needs the name.
            resource_name: if first {
                self.name.clone()
            } else {
                String::new()
            },
            write_offset,
            finish_write: self.finished,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names() {
        let d = DigestKind::Sha256.of_bytes(b"x");
        assert_eq!(
            with_instance("", blob_path(DigestKind::Sha256, &d)),
            format!("blobs/{}/1", d.hash)
        );
        assert_eq!(
            with_instance("main", blob_path(DigestKind::Blake3, &d)),
            format!("main/blobs/blake3/{}/1", d.hash)
        );
        let (a, b) = (upload_id(), upload_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn chunks_cover_the_source_and_finish_once() {
        let data = vec![7u8; CHUNK * 2 + 5];
        let state = Arc::new(Mutex::new((0, None)));
        let chunks = Chunks {
            source: Box::new(std::io::Cursor::new(data.clone())),
            name: "n".into(),
            offset: 0,
            total: data.len() as u64,
            finished: false,
            state: Arc::clone(&state),
        };
        let all: Vec<WriteRequest> = chunks.collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].resource_name, "n");
        assert!(all[1].resource_name.is_empty());
        assert_eq!(all[2].write_offset, (CHUNK * 2) as i64);
        assert_eq!(all.iter().filter(|c| c.finish_write).count(), 1);
        assert!(all[2].finish_write);
        let joined: Vec<u8> = all.into_iter().flat_map(|c| c.data).collect();
        assert_eq!(joined, data);
        assert_eq!(state.lock().unwrap().0, data.len() as u64);
    }

    #[test]
    fn a_short_source_ends_without_finishing() {
        let state = Arc::new(Mutex::new((0, None)));
        let chunks = Chunks {
            source: Box::new(std::io::Cursor::new(vec![1u8; 10])),
            name: "n".into(),
            offset: 0,
            total: 20,
            finished: false,
            state: Arc::clone(&state),
        };
        assert_eq!(chunks.count(), 0);
        assert!(state.lock().unwrap().1.is_some());
    }
}
