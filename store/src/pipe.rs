//! Overlapping reading and hashing with writing and flushing.
//!
//! Puts and restores read a chunk, hash it (and check it), and write it. On one thread those
//! costs add up; here a second thread writes while the first reads and hashes the next chunk.
//! Runs of zeros (holes) travel as counts, so a sparse file's holes cost neither memory nor
//! copying, and a [`SparseWriter`] keeps them holes. For a put, whose blob is fsynced, every
//! [`FLUSH_EVERY`] bytes the writer asks the kernel to start writing back what it has written
//! so far (`posix_fadvise(DONTNEED)`), so that the final `fsync` finds little left to do and
//! the page cache is not filled with blob data nobody is about to read; a restore, like `cp`,
//! leaves that to the kernel. At most [`DEPTH`] + 2 chunks are in memory, whatever the file
//! size.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use rustix::fs::Advice;

use crate::blob::CHUNK;
use crate::sparse::{SparseWriter, ZEROS};

/// Chunks that may wait between the reading and the writing thread.
pub(crate) const DEPTH: usize = 4;

/// Bytes written between two requests to start writeback.
pub(crate) const FLUSH_EVERY: u64 = 16 * 1024 * 1024;

/// Where the writing thread puts what it is sent.
pub(crate) trait Sink: Write {
    /// Puts `count` zero bytes, by default by writing them; a sparse file skips them.
    fn zeros(&mut self, count: u64) -> io::Result<()> {
        write_zeros(self, count)
    }
}

/// Writes `count` zero bytes to `out`.
pub(crate) fn write_zeros(out: &mut (impl Write + ?Sized), mut count: u64) -> io::Result<()> {
    while count > 0 {
        let n = count.min(CHUNK as u64) as usize;
        out.write_all(&ZEROS[..n])?;
        count -= n as u64;
    }
    Ok(())
}

impl Sink for &File {}
impl Sink for File {}

impl Sink for SparseWriter<'_> {
    fn zeros(&mut self, count: u64) -> io::Result<()> {
        self.skip(count)
    }
}

/// What the reading side sends: bytes, or a run of zeros.
enum Message {
    Data(Vec<u8>),
    Zeros(u64),
}

/// The reading side's handle: recycled buffers in, filled buffers out.
pub(crate) struct Feeder {
    full: SyncSender<Message>,
    empty: Receiver<Vec<u8>>,
}

/// The writing thread has stopped (after an error, which [`with_writer`] returns).
#[derive(Debug)]
pub(crate) struct WriterGone;

impl Feeder {
    /// An empty buffer with room for a chunk, recycled when possible.
    pub fn buffer(&self) -> Vec<u8> {
        let mut buf = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        buf.clear();
        buf
    }

    /// Hands a filled buffer to the writing thread.
    pub fn send(&self, buf: Vec<u8>) -> Result<(), WriterGone> {
        self.full.send(Message::Data(buf)).map_err(|_| WriterGone)
    }

    /// Tells the writing thread that `count` zero bytes come next.
    pub fn zeros(&self, count: u64) -> Result<(), WriterGone> {
        self.full
            .send(Message::Zeros(count))
            .map_err(|_| WriterGone)
    }
}

/// Runs `produce` on this thread while another writes what it sends to `sink`. With
/// `writeback`, the file under `sink` is asked to start writing back every [`FLUSH_EVERY`]
/// bytes (for files about to be fsynced). Returns what `produce` returned and the sink, or
/// the first write error.
pub(crate) fn with_writer<W, T>(
    sink: W,
    writeback: Option<&File>,
    produce: impl FnOnce(&Feeder) -> T,
) -> (T, io::Result<W>)
where
    W: Sink + Send,
{
    let (full_tx, full_rx) = sync_channel::<Message>(DEPTH);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
    std::thread::scope(|s| {
        let writer = s.spawn(move || write_chunks(sink, writeback, full_rx, empty_tx));
        let feeder = Feeder {
            full: full_tx,
            empty: empty_rx,
        };
        let out = produce(&feeder);
        drop(feeder); // ends the writer's loop
        let written = writer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (out, written)
    })
}

fn write_chunks<W: Sink>(
    mut sink: W,
    writeback: Option<&File>,
    full: Receiver<Message>,
    empty: SyncSender<Vec<u8>>,
) -> io::Result<W> {
    let mut unflushed = 0u64;
    for message in full {
        let buf = match message {
            Message::Zeros(count) => {
                sink.zeros(count)?;
                continue;
            }
            Message::Data(buf) => buf,
        };
        sink.write_all(&buf)?;
        unflushed += buf.len() as u64;
        if let Some(file) = writeback.filter(|_| unflushed >= FLUSH_EVERY) {
            // Only a hint: if the kernel declines, fsync does the work later.
            let _ = rustix::fs::fadvise(file, 0, None, Advice::DontNeed);
            unflushed = 0;
        }
        let _ = empty.try_send(buf);
    }
    Ok(sink)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn every_chunk_arrives_in_order() {
        let mut file = tempfile::tempfile().unwrap();
        let (sent, written) = with_writer(&file, None, |feeder| {
            let mut total = 0;
            for i in 0..40u8 {
                let mut buf = feeder.buffer();
                buf.resize(CHUNK / 2 + usize::from(i), i);
                total += buf.len();
                feeder.send(buf).unwrap();
            }
            total
        });
        written.unwrap();
        let mut back = Vec::new();
        use std::io::Seek;
        file.rewind().unwrap();
        file.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), sent);
        assert_eq!(back[0], 0);
        assert_eq!(back[back.len() - 1], 39);
        assert_eq!(back[CHUNK / 2], 1);
    }

    #[test]
    fn a_write_error_stops_the_producer_and_is_returned() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let (sent, written) = with_writer(&full, None, |feeder| {
            let mut n = 0;
            while n < 1000 {
                if feeder.send(vec![1u8; 4096]).is_err() {
                    break;
                }
                n += 1;
            }
            n
        });
        assert!(sent < 1000);
        assert_eq!(written.unwrap_err().raw_os_error(), Some(28)); // ENOSPC
    }
}
