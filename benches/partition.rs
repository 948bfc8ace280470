//! Criterion benchmarks of the placement ring alone: owner and replica-set
//! lookups with 10 and 100 nodes, building a ring of 100 nodes, and
//! computing the ranges that move when an 11th node joins 10. Comparisons
//! with jump and rendezvous hashing are in `benches/peers` (`partition`).

// A bench: a failure should stop it loudly; criterion_group! generates undocumented items.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nimbus::partition::{Node, Ring, token};

fn nodes(count: usize) -> Vec<Node> {
    (0..count)
        .map(|i| Node::new(format!("node-{i}"), format!("zone-{}", i % 3)))
        .collect()
}

fn lookups(c: &mut Criterion) {
    let tokens: Vec<u64> = (0..4096u32).map(|i| token(&i.to_le_bytes())).collect();
    for count in [10, 100] {
        let ring = Ring::new(nodes(count)).unwrap();
        let mut i = 0usize;
        c.bench_function(&format!("ring_owner_{count}_nodes"), |b| {
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(ring.owner(black_box(tokens[i])).weight)
            })
        });
        c.bench_function(&format!("ring_replicas_{count}_nodes"), |b| {
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(ring.replicas(black_box(tokens[i])).count())
            })
        });
    }
}

fn topology(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_topology");
    group.sample_size(10);
    group.bench_function("build_100_nodes", |b| {
        b.iter(|| Ring::new(nodes(100)).unwrap())
    });
    let ten = Ring::new(nodes(10)).unwrap();
    let eleven = ten.with_node(Node::new("node-10", "zone-1")).unwrap();
    group.bench_function("moves_10_to_11_nodes", |b| {
        b.iter(|| black_box(ten.moves(&eleven).len()))
    });
    group.finish();
}

criterion_group!(benches, lookups, topology);
criterion_main!(benches);
