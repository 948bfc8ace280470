//! Properties of the placement ring: distinct-zone replica sets, full
//! coverage, independence from input order, and movement on join/leave
//! limited to the ranges the node takes or gives.

use proptest::prelude::*;

use super::*;

fn nodes(count: usize, zones: usize) -> Vec<Node> {
    (0..count)
        .map(|i| Node::new(format!("node-{i}"), format!("zone-{}", i % zones)))
        .collect()
}

/// Checks the replica set of `token` against the ring's rules.
fn assert_distinct_zones(ring: &Ring, token: u64) {
    let set: Vec<&Node> = ring.replicas(token).collect();
    assert_eq!(set.len(), ring.replica_count(), "token {token:#x}");
    let mut zones: Vec<&str> = set.iter().map(|n| n.zone.as_str()).collect();
    zones.sort_unstable();
    zones.dedup();
    assert_eq!(zones.len(), set.len(), "token {token:#x}: zones repeat");
    assert_eq!(set[0], ring.owner(token));
}

fn set_ids(ring: &Ring, token: u64) -> Vec<String> {
    ring.replicas(token).map(|n| n.id.clone()).collect()
}

/// Checks that `moves` is exactly where `before` and `after` differ, on
/// every range boundary of both rings and on `samples`.
fn assert_moves_exact(before: &Ring, after: &Ring, moves: &[RangeMove], samples: &[u64]) {
    let mut probes: Vec<u64> = samples.to_vec();
    for (range, _) in before.ranges().chain(after.ranges()) {
        probes.push(range.start);
        if let Some(end) = range.end {
            probes.push(end - 1);
        }
    }
    probes.push(u64::MAX);
    for token in probes {
        let hit = moves.iter().find(|m| m.range.contains(token));
        let (from, to) = (set_ids(before, token), set_ids(after, token));
        match hit {
            Some(m) => {
                let ids = |v: &[Arc<str>]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
                assert_eq!(ids(&m.from), from, "token {token:#x}");
                assert_eq!(ids(&m.to), to, "token {token:#x}");
                assert_ne!(from, to);
            }
            None => assert_eq!(from, to, "token {token:#x} changed outside the moves"),
        }
    }
}

#[test]
fn ranges_cover_every_token_once_in_order() {
    let ring = Ring::builder()
        .nodes(nodes(7, 3))
        .vnodes_per_weight(16)
        .build()
        .unwrap();
    let ranges: Vec<TokenRange> = ring.ranges().map(|(r, _)| r).collect();
    assert_eq!(ranges[0].start, 0);
    for pair in ranges.windows(2) {
        assert_eq!(pair[0].end, Some(pair[1].start));
    }
    assert_eq!(ranges.last().unwrap().end, None);
    let total: u128 = ranges.iter().map(TokenRange::len).sum();
    assert_eq!(total, 1u128 << 64);
    for (range, ids) in ring.ranges() {
        let owner = ring.owner(range.start);
        assert_eq!(&*ids[0], owner.id);
        if let Some(end) = range.end {
            assert_eq!(ring.owner(end - 1).id, owner.id);
        }
    }
}

#[test]
fn bad_rings_are_refused_with_a_reason() {
    assert_eq!(Ring::new([]).unwrap_err(), RingError::Empty);
    let twins = [
        Node::new("a", "z1"),
        Node::new("a", "z2"),
        Node::new("b", "z3"),
    ];
    assert_eq!(
        Ring::new(twins).unwrap_err(),
        RingError::DuplicateNode("a".into())
    );
    assert_eq!(
        Ring::new(nodes(4, 2)).unwrap_err(),
        RingError::TooFewZones {
            replicas: 3,
            zones: 2
        }
    );
    let heavy = [Node::new("a", "z").weight(0)];
    assert_eq!(
        Ring::builder()
            .nodes(heavy)
            .replicas(1)
            .build()
            .unwrap_err(),
        RingError::ZeroWeight("a".into())
    );
    let huge = [Node::new("a", "z").weight(u32::MAX)];
    assert!(matches!(
        Ring::builder().nodes(huge).replicas(1).build(),
        Err(RingError::TooManyPoints(_))
    ));
    let ring = Ring::new(nodes(3, 3)).unwrap();
    assert_eq!(
        ring.without_node("nope").unwrap_err(),
        RingError::UnknownNode("nope".into())
    );
}

#[test]
fn a_heavier_node_gets_proportionally_more_tokens() {
    let mut list = nodes(6, 3);
    list[0].weight = 3;
    let ring = Ring::builder().nodes(list).replicas(1).build().unwrap();
    let mut share = std::collections::HashMap::<String, u128>::new();
    for (range, ids) in ring.ranges() {
        *share.entry(ids[0].to_string()).or_default() += range.len();
    }
    let heavy = share["node-0"] as f64;
    let light: f64 = share
        .iter()
        .filter(|(k, _)| *k != "node-0")
        .map(|(_, v)| *v as f64)
        .sum::<f64>()
        / 5.0;
    let ratio = heavy / light;
    assert!(
        (2.7..3.3).contains(&ratio),
        "weight 3 got {ratio:.2}x the tokens"
    );
}

#[test]
fn default_vnodes_balance_100_nodes_within_ten_percent_of_the_mean() {
    let ring = Ring::builder()
        .nodes(nodes(100, 3))
        .replicas(1)
        .build()
        .unwrap();
    let mut share = std::collections::HashMap::<String, u128>::new();
    for (range, ids) in ring.ranges() {
        *share.entry(ids[0].to_string()).or_default() += range.len();
    }
    let max = *share.values().max().unwrap() as f64;
    let mean = (1u128 << 64) as f64 / 100.0;
    assert!(max / mean <= 1.10, "max/mean = {:.3}", max / mean);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_token_has_replicas_on_distinct_zones(
        count in 3usize..12,
        zones in 3usize..5,
        replicas in 1usize..4,
        tokens in prop::collection::vec(any::<u64>(), 64),
    ) {
        let ring = Ring::builder()
            .nodes(nodes(count.max(zones), zones))
            .vnodes_per_weight(8)
            .replicas(replicas)
            .build()
            .unwrap();
        for token in tokens.into_iter().chain([0, u64::MAX]) {
            assert_distinct_zones(&ring, token);
        }
        for (range, _) in ring.ranges() {
            assert_distinct_zones(&ring, range.start);
        }
    }

    #[test]
    fn the_ring_does_not_depend_on_the_order_of_its_nodes(
        count in 3usize..10,
        seed in any::<u64>(),
    ) {
        let list = nodes(count, 3);
        let mut shuffled = list.clone();
        // A deterministic permutation derived from the seed.
        shuffled.sort_by_key(|n| xxh3_64_with_seed(n.id.as_bytes(), seed));
        let a = Ring::builder().nodes(list).vnodes_per_weight(8).build().unwrap();
        let b = Ring::builder().nodes(shuffled).vnodes_per_weight(8).build().unwrap();
        prop_assert!(a.moves(&b).is_empty());
        let ra: Vec<_> = a.ranges().collect();
        let rb: Vec<_> = b.ranges().collect();
        prop_assert_eq!(ra, rb);
    }

    #[test]
    fn a_joining_node_only_takes_ranges_it_enters(
        count in 3usize..10,
        zone in 0usize..3,
        samples in prop::collection::vec(any::<u64>(), 64),
    ) {
        let before = Ring::builder().nodes(nodes(count, 3)).vnodes_per_weight(8).build().unwrap();
        let after = before.with_node(Node::new("joiner", format!("zone-{zone}"))).unwrap();
        let moves = before.moves(&after);
        prop_assert!(!moves.is_empty());
        for m in &moves {
            // The joiner enters and exactly one member leaves.
            prop_assert_eq!(m.gained_by().collect::<Vec<_>>(), vec!["joiner"]);
            prop_assert_eq!(m.lost_by().count(), 1);
        }
        assert_moves_exact(&before, &after, &moves, &samples);
        // Leaving again undoes exactly those moves.
        let back = after.without_node("joiner").unwrap();
        prop_assert!(before.moves(&back).is_empty());
        let undo = after.moves(&back);
        prop_assert_eq!(undo.len(), moves.len());
        for (m, u) in moves.iter().zip(&undo) {
            prop_assert_eq!(m.range, u.range);
            prop_assert_eq!(&m.from, &u.to);
        }
    }

    #[test]
    fn a_leaving_node_only_gives_up_ranges_it_held(
        count in 6usize..10,
        leaver in 0usize..4,
        samples in prop::collection::vec(any::<u64>(), 64),
    ) {
        let before = Ring::builder().nodes(nodes(count, 3)).vnodes_per_weight(8).build().unwrap();
        let id = format!("node-{leaver}");
        let after = before.without_node(&id).unwrap();
        let moves = before.moves(&after);
        for m in &moves {
            prop_assert_eq!(m.lost_by().collect::<Vec<_>>(), vec![id.as_str()]);
            prop_assert_eq!(m.gained_by().count(), 1);
        }
        assert_moves_exact(&before, &after, &moves, &samples);
    }
}
