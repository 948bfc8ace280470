//! Process-kill test of the storage engine: a child process writes with
//! `Durability::Sync` and is killed with SIGKILL at a random moment; the
//! parent reopens the database and checks that every acknowledged batch is
//! there, that no batch is half-applied, and that each writer's batches form
//! a prefix (a batch survives only with every batch its writer wrote before).
//!
//! The child is this same binary, re-executed with `NIMBUS_KILL_CHILD` set
//! to the database directory (hence `harness = false`). The child runs two
//! writer threads, so kills land inside group commits, and a small memtable,
//! so they land inside flushes and compactions too.
//!
//! Runs [`KILLS_CI`] kills by default and [`KILLS_LONG`] with
//! `NIMBUS_LONG_TESTS=1`.

// Test code: a failed unwrap is a failed test, with the reason in the panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nimbus::storage::{
    CompactionOptions, Direction, Durability, Engine, EngineOptions, SegmentOptions, WriteBatch,
};

/// Kills in a default `cargo test` run.
const KILLS_CI: u32 = 6;
/// Kills with `NIMBUS_LONG_TESTS=1`.
const KILLS_LONG: u32 = 250;
/// Writer threads in the child.
const WRITERS: u32 = 2;
/// Bytes of each value: large enough that the small memtable flushes often.
const VALUE_BYTES: usize = 200;
/// The longest the parent lets a child run before killing it.
const KILL_AFTER_MAX: Duration = Duration::from_millis(400);

fn options() -> EngineOptions {
    EngineOptions {
        durability: Durability::Sync,
        memtable_bytes_max: 64 * 1024,
        compaction: CompactionOptions {
            l0_compaction_trigger_files: 2,
            level_base_bytes: 256 * 1024,
            target_file_size_bytes: 64 * 1024,
            ..CompactionOptions::default()
        },
        segment: SegmentOptions {
            block_size_bytes: 1024,
            ..SegmentOptions::default()
        },
        ..EngineOptions::default()
    }
}

fn batch_key(writer: u32, batch: u64, part: u64) -> Vec<u8> {
    format!("w{writer}/b{batch:010}/{part}").into_bytes()
}

fn last_key(writer: u32) -> Vec<u8> {
    format!("w{writer}/last").into_bytes()
}

/// How many puts batch `batch` holds besides its `last` marker (1 to 5).
fn batch_parts(batch: u64) -> u64 {
    batch % 5 + 1
}

fn batch_value(writer: u32, batch: u64, part: u64) -> Vec<u8> {
    let mut value = format!("{writer}:{batch}:{part}:").into_bytes();
    value.resize(VALUE_BYTES, b'.');
    value
}

fn main() {
    if let Ok(dir) = std::env::var("NIMBUS_KILL_CHILD") {
        child(Path::new(&dir));
        return;
    }
    let long = std::env::var_os("NIMBUS_LONG_TESTS").is_some();
    let kills = if long { KILLS_LONG } else { KILLS_CI };
    let started = Instant::now();
    let acknowledged = parent(kills);
    println!(
        "storage_kill: {kills} SIGKILLs, {acknowledged} batches acknowledged and checked after their kill, {:.1} s: ok",
        started.elapsed().as_secs_f64()
    );
}

/// The child: recovers, then each writer thread commits batches numbered
/// from where the database left off, printing `ack <writer> <batch>` after
/// each acknowledgement, until it is killed.
fn child(dir: &Path) {
    let engine = Engine::open(dir, options()).expect("child open");
    let stdout = std::sync::Mutex::new(std::io::stdout());
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let engine = &engine;
            let stdout = &stdout;
            scope.spawn(move || {
                let mut batch = next_batch(engine, writer);
                loop {
                    let mut write = WriteBatch::new();
                    for part in 0..batch_parts(batch) {
                        write.put(
                            &batch_key(writer, batch, part),
                            &batch_value(writer, batch, part),
                        );
                    }
                    write.put(&last_key(writer), batch.to_string().as_bytes());
                    engine.write(write).expect("child write");
                    let mut out = stdout.lock().expect("stdout lock");
                    writeln!(out, "ack {writer} {batch}").expect("stdout");
                    out.flush().expect("stdout flush");
                    drop(out);
                    batch += 1;
                }
            });
        }
    });
}

/// The first batch number `writer` has not yet committed.
fn next_batch(engine: &Engine, writer: u32) -> u64 {
    engine
        .get(&last_key(writer))
        .expect("read last")
        .map_or(0, |last| parse(&last) + 1)
}

fn parse(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes)
        .expect("utf-8 number")
        .parse()
        .expect("number")
}

/// Runs `kills` child processes on one directory, killing each at a seeded
/// random moment and checking the database after each. Returns how many
/// batches were acknowledged in all.
fn parent(kills: u32) -> u64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut acknowledged_total = 0;
    for kill in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let kill_after = Duration::from_millis(rng % KILL_AFTER_MAX.as_millis() as u64);
        let mut child = Command::new(&exe)
            .env("NIMBUS_KILL_CHILD", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let reader = std::thread::spawn(move || {
            let mut acked: BTreeMap<u32, u64> = BTreeMap::new();
            let mut acks = 0u64;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut words = line.split_whitespace().skip(1);
                let writer: u32 = words.next().expect("writer").parse().expect("writer");
                let batch: u64 = words.next().expect("batch").parse().expect("batch");
                acked.insert(writer, batch);
                acks += 1;
            }
            (acked, acks)
        });
        std::thread::sleep(kill_after);
        // Kill and reap; `try_wait` tells a child that died on its own
        // (a panic in the child is a failure, not a kill).
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("kill {kill}: the child exited by itself: {status}");
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        let (acked, acks) = reader.join().expect("reader thread");
        check(dir.path(), &acked, kill);
        acknowledged_total += acks;
    }
    acknowledged_total
}

/// Reopens the database and checks it against the acknowledgements of the
/// last child.
fn check(dir: &Path, acked: &BTreeMap<u32, u64>, kill: u32) {
    let engine = Engine::open(dir, options()).expect("reopen after kill");
    engine.verify().expect("verify after kill");
    for writer in 0..WRITERS {
        let last = engine.get(&last_key(writer)).expect("get last");
        let last = last.map(|bytes| parse(&bytes));
        if let Some(&acked_batch) = acked.get(&writer) {
            assert!(
                last.is_some_and(|last| last >= acked_batch),
                "kill {kill}: writer {writer} was acknowledged batch {acked_batch}, \
                 the database ends at {last:?}"
            );
        }
        // Every batch up to `last` is whole, and none after it exists.
        let prefix = format!("w{writer}/b");
        let mut expected_batch = 0;
        let mut expected_part = 0;
        for pair in engine
            .prefix(prefix.as_bytes(), Direction::Forward, None)
            .expect("scan")
        {
            let (key, value) = pair.expect("scan pair");
            let (batch, part) = (expected_batch, expected_part);
            assert_eq!(
                key.as_ref(),
                batch_key(writer, batch, part).as_slice(),
                "kill {kill}: writer {writer} has a gap or a half batch"
            );
            assert_eq!(value.as_ref(), batch_value(writer, batch, part).as_slice());
            expected_part += 1;
            if expected_part == batch_parts(batch) {
                expected_batch += 1;
                expected_part = 0;
            }
        }
        assert_eq!(
            expected_part, 0,
            "kill {kill}: writer {writer}'s batch {expected_batch} is half applied"
        );
        assert_eq!(
            last.map_or(0, |last| last + 1),
            expected_batch,
            "kill {kill}: writer {writer}'s last marker disagrees with its batches"
        );
    }
    engine.close().expect("close");
}
