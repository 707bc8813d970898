//! Restores by a reuse: a `kill -9` at any moment leaves no stray file in the user's folder
//! once the next shark has started, and a sparse output comes back sparse.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use crate::common::{stderr, TestEnv};

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Two large outputs, one text (a zstd blob) and one pseudo-random (a raw blob).
const BIG: &str = "seq 1 10000000 > text.txt; \
     head -c 80M /dev/zero | openssl enc -aes-128-ctr -nosalt -pbkdf2 -iter 1 -pass pass:shark > noise.bin";

fn kills_during_restore_leave_nothing(env: &TestEnv) {
    let out = env.line(BIG);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let want = [
        std::fs::read(env.path("text.txt")).unwrap(),
        std::fs::read(env.path("noise.bin")).unwrap(),
    ];
    // How long a whole reuse takes here, to aim the kills inside it.
    std::fs::remove_file(env.path("text.txt")).unwrap();
    std::fs::remove_file(env.path("noise.bin")).unwrap();
    let started = Instant::now();
    let out = env.line(BIG);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(env.last_cached(), "the reuse under test did not happen");
    let reuse = started.elapsed();
    for round in 0..12u32 {
        // Odd rounds restore over the old files (replacing), even ones into a folder
        // without them.
        for name in ["text.txt", "noise.bin"] {
            match round % 2 {
                0 => std::fs::remove_file(env.path(name)).unwrap(),
                _ => env.write(name, "stale\n"),
            }
        }
        let mut child = env.shark().args(["-c", BIG]).spawn().unwrap();
        std::thread::sleep(reuse.mul_f64(0.1 + 0.8 * f64::from(round) / 12.0));
        let _ = child.kill();
        let _ = child.wait();
        // The next shark sweeps what the killed one left.
        let out = env.line("true");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let left = names(&env.work);
        assert!(
            left.iter().all(|n| n == "text.txt" || n == "noise.bin"),
            "round {round}: {left:?}"
        );
        // Whatever is in place is whole: old, or restored.
        for (name, content) in ["text.txt", "noise.bin"].iter().zip(&want) {
            if let Ok(got) = std::fs::read(env.path(name)) {
                assert!(
                    got == *content || got == b"stale\n",
                    "round {round}: {name}"
                );
            }
        }
    }
    let out = env.line(BIG);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::read(env.path("text.txt")).unwrap() == want[0]);
    assert!(std::fs::read(env.path("noise.bin")).unwrap() == want[1]);
}

#[test]
fn kills_during_restore_leave_no_stray_files_after_the_next_command() {
    kills_during_restore_leave_nothing(&TestEnv::new());
}

#[test]
fn kills_during_restore_leave_no_stray_files_for_an_unprivileged_user() {
    let Some(env) = TestEnv::unprivileged() else {
        eprintln!("skipped: not root, so the other test already ran unprivileged");
        return;
    };
    kills_during_restore_leave_nothing(&env);
}

#[test]
fn a_sparse_ten_gib_output_is_restored_sparse() {
    let env = TestEnv::new();
    let line = "truncate -s 10G big.img && printf 'four KiB later' | \
                dd of=big.img bs=4096 seek=1310720 conv=notrunc status=none";
    let out = env.line(line);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::remove_file(env.path("big.img")).unwrap();
    let out = env.line(line);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(env.last_cached(), "restored from the store, not run");
    let meta = std::fs::metadata(env.path("big.img")).unwrap();
    assert_eq!(meta.len(), 10 << 30);
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "{} bytes allocated",
        meta.blocks() * 512
    );
    let file = std::fs::File::open(env.path("big.img")).unwrap();
    let mut data = [0u8; 14];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut data, 5 << 30).unwrap();
    assert_eq!(&data, b"four KiB later");
    // The store holds it small too.
    let stats = env.run(&["store", "stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(&crate::common::stdout(&stats)).unwrap();
    assert!(stats["stored_bytes"].as_u64().unwrap() < 4 << 20, "{stats}");
}
