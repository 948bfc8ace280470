//! nimbus's placement ring against the textbook alternatives, in one run:
//! jump consistent hash (Lamping and Veach, 2014) and rendezvous (highest
//! random weight) hashing. Measures token -> node lookup time with 10 and
//! 100 nodes, load balance (max/mean keys per node), and the fraction of
//! keys that move when an 11th node joins 10. Prints a Markdown table and
//! writes it into benches/README.md between `<!-- partition:begin -->` and
//! `<!-- partition:end -->`.
//!
//! ```sh
//! cargo run --release --manifest-path benches/peers/Cargo.toml --bin partition
//! PARTITION_QUICK=1 cargo run ...   # fewer keys and repetitions, prints only
//! ```
//!
//! Environment: `PARTITION_KEYS` (keys, default 1,000,000), `PARTITION_REPS`
//! (lookup repetitions, median reported, default 5), `PARTITION_WRITE` (0:
//! do not touch the README), `PARTITION_QUICK`.
//!
//! Every subject maps the same 64-bit tokens (nimbus's `partition::token`,
//! xxh3 of `key-<i>`) to a node index; all three are given their best case
//! (jump and rendezvous need no table; rendezvous mixes with splitmix64,
//! cheaper than a byte hash). The ring uses its defaults: 1,024 virtual
//! nodes per node and 3 replicas on 3 zones; its lookup returns the owner.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use nimbus::partition::{Node, Ring, token};

/// A placement scheme under test.
trait Subject {
    fn name(&self) -> &'static str;
    /// The node (index into the scheme's node list) owning `token`.
    fn owner(&self, token: u64) -> usize;
}

struct RingSubject {
    ring: Ring,
    /// Node id -> index, so lookups report comparable indexes.
    index: std::collections::HashMap<String, usize>,
}

impl RingSubject {
    fn new(nodes: usize) -> Self {
        let list: Vec<Node> = (0..nodes)
            .map(|i| Node::new(format!("node-{i}"), format!("zone-{}", i % 3)))
            .collect();
        let index = list
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        Self {
            ring: Ring::new(list).expect("valid ring"),
            index,
        }
    }
}

impl Subject for RingSubject {
    fn name(&self) -> &'static str {
        "nimbus ring"
    }
    fn owner(&self, token: u64) -> usize {
        self.index[&self.ring.owner(token).id]
    }
}

/// nimbus's lookup alone, without mapping the id back to an index.
fn ring_lookup(ring: &Ring, token: u64) -> usize {
    ring.owner(token).weight as usize
}

struct Jump(i64);

impl Subject for Jump {
    fn name(&self) -> &'static str {
        "jump hash"
    }
    fn owner(&self, token: u64) -> usize {
        jump(token, self.0) as usize
    }
}

/// Jump consistent hash, as published.
fn jump(mut key: u64, buckets: i64) -> i64 {
    let (mut b, mut j) = (-1i64, 0i64);
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b
}

struct Rendezvous(Vec<u64>);

impl Rendezvous {
    fn new(nodes: usize) -> Self {
        Self(
            (0..nodes)
                .map(|i| token(format!("node-{i}").as_bytes()))
                .collect(),
        )
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Subject for Rendezvous {
    fn name(&self) -> &'static str {
        "rendezvous"
    }
    fn owner(&self, token: u64) -> usize {
        let mut best = (0u64, 0usize);
        for (i, seed) in self.0.iter().enumerate() {
            let score = splitmix(token ^ seed);
            if score >= best.0 {
                best = (score, i);
            }
        }
        best.1
    }
}

fn subjects(nodes: usize) -> Vec<Box<dyn Subject>> {
    vec![
        Box::new(RingSubject::new(nodes)),
        Box::new(Jump(nodes as i64)),
        Box::new(Rendezvous::new(nodes)),
    ]
}

struct Config {
    keys: usize,
    reps: usize,
    write: bool,
}

impl Config {
    fn from_env() -> Self {
        let var = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let quick = var("PARTITION_QUICK", 0) != 0;
        Self {
            keys: var("PARTITION_KEYS", if quick { 100_000 } else { 1_000_000 }),
            reps: var("PARTITION_REPS", if quick { 3 } else { 5 }),
            write: !quick && var("PARTITION_WRITE", 1) != 0,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median ns per lookup of `lookup` over `tokens`, `reps` times.
fn time_lookups(tokens: &[u64], reps: usize, lookup: impl Fn(u64) -> usize) -> f64 {
    let samples = (0..reps)
        .map(|_| {
            let start = Instant::now();
            let mut sink = 0usize;
            for &t in tokens {
                sink = sink.wrapping_add(lookup(black_box(t)));
            }
            black_box(sink);
            start.elapsed().as_nanos() as f64 / tokens.len() as f64
        })
        .collect();
    median(samples)
}

fn balance(subject: &dyn Subject, nodes: usize, tokens: &[u64]) -> f64 {
    let mut counts = vec![0usize; nodes];
    for &t in tokens {
        counts[subject.owner(t)] += 1;
    }
    let max = *counts.iter().max().unwrap_or(&0) as f64;
    max / (tokens.len() as f64 / nodes as f64)
}

fn moved(before: &dyn Subject, after: &dyn Subject, tokens: &[u64]) -> f64 {
    let moved = tokens
        .iter()
        .filter(|&&t| before.owner(t) != after.owner(t))
        .count();
    moved as f64 / tokens.len() as f64
}

fn main() {
    let config = Config::from_env();
    let tokens: Vec<u64> = (0..config.keys)
        .map(|i| token(format!("key-{i}").as_bytes()))
        .collect();
    let mut rows: Vec<[String; 7]> = Vec::new();
    let by_size: Vec<(usize, Vec<Box<dyn Subject>>)> =
        [10, 100].into_iter().map(|n| (n, subjects(n))).collect();
    let eleven = subjects(11);
    for s in 0..3 {
        let name = by_size[0].1[s].name();
        let mut lookup = Vec::new();
        let mut spread = Vec::new();
        for (nodes, list) in &by_size {
            let subject = &list[s];
            let ns = if s == 0 {
                let ring = RingSubject::new(*nodes).ring;
                time_lookups(&tokens, config.reps, |t| ring_lookup(&ring, t))
            } else {
                time_lookups(&tokens, config.reps, |t| subject.owner(t))
            };
            lookup.push(format!("{ns:.1}"));
            spread.push(format!("{:.3}", balance(subject.as_ref(), *nodes, &tokens)));
        }
        let fraction = moved(by_size[0].1[s].as_ref(), eleven[s].as_ref(), &tokens);
        rows.push([
            name.to_owned(),
            lookup[0].clone(),
            lookup[1].clone(),
            spread[0].clone(),
            spread[1].clone(),
            format!("{:.2}%", fraction * 100.0),
            format!("{:.2}%", (fraction - 1.0 / 11.0) * 100.0),
        ]);
    }
    let build = {
        let samples = (0..config.reps)
            .map(|_| {
                let start = Instant::now();
                black_box(RingSubject::new(100));
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        median(samples)
    };
    let replica_ns = {
        let ring = RingSubject::new(100).ring;
        time_lookups(&tokens, config.reps, |t| {
            ring.replicas(t).map(|n| n.weight as usize).sum()
        })
    };
    let mut table = format!(
        "Machine: {}. {} keys (tokens: xxh3 of `key-<i>`), lookups timed over all of them, \
         median of {} runs. Targets for the ring: lookup ≤ 50 ns, max/mean ≤ 1.10 at the \
         default 1,024 vnodes, moved ≤ 1/11 + 1% (10.09%) from 10 to 11 nodes.\n\n",
        machine(),
        config.keys,
        config.reps
    );
    table.push_str(
        "| scheme | lookup ns, 10 nodes | lookup ns, 100 nodes | max/mean keys, 10 nodes | \
         max/mean keys, 100 nodes | moved 10→11 | moved − 1/11 |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in &rows {
        table.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    table.push_str(&format!(
        "\nThe ring with 100 nodes also: whole replica set (3 nodes on 3 zones) {replica_ns:.1} ns \
         per lookup; building it (102,400 points, replica sets and radix index) {build:.1} ms.\n"
    ));
    print!("{table}");
    if config.write {
        write_readme(&table);
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown kernel".to_owned());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    format!("{cores} cores, {cpu}, Linux {kernel}")
}

fn write_readme(table: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let begin = "<!-- partition:begin -->";
    let end = "<!-- partition:end -->";
    let current = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let body = format!("{begin}\n{table}{end}");
    let updated = match (current.find(begin), current.find(end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{body}{}", &current[..b], &current[e + end.len()..])
        }
        _ => format!(
            "{}\n\n## The placement ring against jump and rendezvous hashing\n\n\
             `cargo run --release --manifest-path benches/peers/Cargo.toml --bin partition` \
             (under a minute) regenerates this section; `PARTITION_QUICK=1` prints a \
             smaller run without writing it. Jump hash can only add or remove the last \
             bucket and has no zones or weights; rendezvous costs one hash per node per \
             lookup; the ring answers with the whole zone-aware replica set and lists the \
             exact ranges a join or leave moves (`Ring::moves`).\n\n{body}\n",
            current.trim_end()
        ),
    };
    if let Err(e) = std::fs::write(&path, updated) {
        eprintln!("partition: cannot write {}: {e}", path.display());
    } else {
        eprintln!("partition: table written to {}", path.display());
    }
}
