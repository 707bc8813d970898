//! Choosing between zstd and raw storage for a blob.
//!
//! The first [`SAMPLE_SIZE`] bytes of the content are compressed with zstd at [`LEVEL`]; when the
//! result is smaller than 90% of the sample the whole blob is stored as zstd at the same level,
//! otherwise raw. The choice depends only on the content, so the same content always gets the
//! same encoding. Already-compressed data (GeoTIFFs with deflate, archives, random bytes) is
//! stored raw: it costs nothing to decode, and a raw blob can be restored by reflink.

use crate::blob::Encoding;

/// How many leading bytes of a blob decide its encoding.
pub const SAMPLE_SIZE: usize = 256 * 1024;

/// The zstd level of stored blobs (and of the sample test): fast, and 3-10x on text.
pub const LEVEL: i32 = 1;

/// Blobs at least this large are compressed by two zstd worker threads.
pub(crate) const MULTITHREAD_MIN: u64 = 8 * 1024 * 1024;

/// The encoding for a blob whose content starts with `sample` (at most [`SAMPLE_SIZE`] bytes;
/// shorter only when the content is).
pub fn choose(sample: &[u8]) -> Encoding {
    if sample.is_empty() {
        return Encoding::Raw;
    }
    match zstd::bulk::compress(sample, LEVEL) {
        Ok(packed) if packed.len() * 10 < sample.len() * 9 => Encoding::Zstd,
        _ => Encoding::Raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic xorshift stream: incompressible for zstd.
    pub(crate) fn noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn text_is_compressed_noise_and_tiny_content_are_not() {
        let csv: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("{i},{},station-{}\n", i * 7 % 1000, i % 13).into_bytes())
            .collect();
        assert_eq!(choose(&csv[..SAMPLE_SIZE.min(csv.len())]), Encoding::Zstd);
        assert_eq!(choose(&noise(SAMPLE_SIZE)), Encoding::Raw);
        assert_eq!(choose(b""), Encoding::Raw);
        assert_eq!(choose(b"hello\n"), Encoding::Raw);
        assert_eq!(choose(&[0u8; 64]), Encoding::Zstd);
    }

    #[test]
    fn the_threshold_is_ninety_percent() {
        // Half noise, half zeros compresses to about 50%: zstd. 95% noise: raw.
        let mut half = noise(SAMPLE_SIZE / 2);
        half.resize(SAMPLE_SIZE, 0);
        assert_eq!(choose(&half), Encoding::Zstd);
        let mut mostly = noise(SAMPLE_SIZE * 95 / 100);
        mostly.resize(SAMPLE_SIZE, 0);
        assert_eq!(choose(&mostly), Encoding::Raw);
    }
}
