//! The placement ring: which nodes hold which token ranges when a database
//! outgrows one machine.
//!
//! Consistent hashing with virtual nodes (Dynamo's scheme): each node puts
//! `vnodes_per_weight × weight` points on the 64-bit token ring, at
//! `xxh3(node id, seed = vnode number)`, so a point's place depends on its
//! node alone — never on which other nodes exist or the order they were
//! given in. A token belongs to the first point above it (clockwise, as in
//! Dynamo), so a point owns the range from the previous point up to itself
//! (`[previous, point)`, the first point also everything from the last
//! point to the ring's end). The replica set of a token is the owner, then
//! the owners of the following points whose zone is not yet in the set,
//! until it holds `replicas` distinct zones — DynamoDB's "one copy per
//! availability zone".
//!
//! Because points never move and a token's walk only ever gains or loses
//! the changed node's points, a joining node changes exactly the ranges
//! whose walk reaches one of its points before it ends: it enters their
//! replica set and evicts exactly one member. A leaving node changes
//! exactly the ranges it was in, each gaining one member. [`Ring::moves`]
//! lists those ranges. Lookups go through a radix index over the top bits of the
//! token, so finding a range costs one or two cache lines, not a binary
//! search over every point.
//!
//! ```
//! use nimbus::partition::{Node, Ring, token};
//!
//! let nodes = (0..6).map(|i| Node::new(format!("n{i}"), format!("az{}", i % 3)));
//! let ring = Ring::new(nodes)?;
//! let zones: Vec<&str> = ring.replicas(token(b"user#42")).map(|n| n.zone.as_str()).collect();
//! assert_eq!(zones.len(), 3); // three replicas, on three zones
//!
//! // A seventh node takes ranges; each changes only by gaining it.
//! let bigger = ring.with_node(Node::new("n6", "az0"))?;
//! for range in ring.moves(&bigger) {
//!     assert_eq!(range.gained_by().collect::<Vec<_>>(), ["n6"]);
//! }
//! # Ok::<(), nimbus::partition::RingError>(())
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Virtual nodes per unit of weight unless [`RingBuilder::vnodes_per_weight`]
/// says otherwise: enough that, with 100 equal nodes, the fullest node holds
/// at most ~10% more tokens than the mean (the relative spread of a node's
/// share is about `1/sqrt(vnodes)`).
pub const DEFAULT_VNODES_PER_WEIGHT: u32 = 1024;

/// Replicas per token range unless [`RingBuilder::replicas`] says otherwise:
/// three, on three zones, as DynamoDB keeps three copies in three AZs.
pub const DEFAULT_REPLICAS: usize = 3;

/// The most points a ring may hold (all nodes' virtual nodes together),
/// which bounds its memory to a few tens of megabytes.
pub const MAX_RING_POINTS: usize = 1 << 22;

/// A machine that can hold replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Unique name of the node; its points on the ring derive from it.
    pub id: String,
    /// Failure domain (availability zone): a range never has two replicas
    /// in one zone.
    pub zone: String,
    /// Relative capacity: a node of weight 2 gets twice the points (and so
    /// about twice the tokens) of a node of weight 1. At least 1.
    pub weight: u32,
}

impl Node {
    /// A node of weight 1.
    pub fn new(id: impl Into<String>, zone: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            zone: zone.into(),
            weight: 1,
        }
    }

    /// The same node with `weight`.
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }
}

/// Why a ring cannot be built (or changed as asked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// No nodes were given.
    #[error("a ring needs at least one node")]
    Empty,
    /// Two nodes share an id.
    #[error("node id {0:?} appears more than once")]
    DuplicateNode(String),
    /// A node has weight zero.
    #[error("node {0:?} has weight 0; weights are at least 1")]
    ZeroWeight(String),
    /// Fewer zones than replicas: a range could not have its replicas on
    /// distinct zones.
    #[error("{replicas} replicas need {replicas} distinct zones, but the nodes span {zones}")]
    TooFewZones {
        /// Replicas asked for.
        replicas: usize,
        /// Distinct zones among the nodes.
        zones: usize,
    },
    /// Zero replicas, or zero virtual nodes per weight.
    #[error("replicas and vnodes per weight must be at least 1")]
    ZeroParameter,
    /// The nodes' weights ask for more than [`MAX_RING_POINTS`] points.
    #[error("the ring would hold {0} points, more than the limit of {MAX_RING_POINTS}")]
    TooManyPoints(u64),
    /// `without_node` named a node the ring does not have.
    #[error("node {0:?} is not on the ring")]
    UnknownNode(String),
}

/// A half-open token range `[start, end)`; `end == None` means up to and
/// including `u64::MAX`. Ranges of a ring never wrap: the range that would
/// wrap past the top is reported as two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenRange {
    /// First token of the range.
    pub start: u64,
    /// First token after the range, `None` for the ring's end.
    pub end: Option<u64>,
}

impl TokenRange {
    /// Whether `token` lies in the range.
    pub fn contains(&self, token: u64) -> bool {
        token >= self.start && self.end.is_none_or(|end| token < end)
    }

    /// How many tokens the range holds (`2^64` for the whole ring).
    pub fn len(&self) -> u128 {
        let end = self.end.map_or(1u128 << 64, u128::from);
        end - u128::from(self.start)
    }

    /// Whether the range holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for TokenRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(end) => write!(f, "[{:#018x}, {:#018x})", self.start, end),
            None => write!(f, "[{:#018x}, end]", self.start),
        }
    }
}

/// A range whose replica set differs between two rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeMove {
    /// The tokens that move.
    pub range: TokenRange,
    /// Node ids of the replica set before, owner first.
    pub from: Vec<Arc<str>>,
    /// Node ids of the replica set after, owner first.
    pub to: Vec<Arc<str>>,
}

impl RangeMove {
    /// Nodes that gain the range (must copy it in).
    pub fn gained_by(&self) -> impl Iterator<Item = &str> {
        self.to
            .iter()
            .filter(|n| !self.from.contains(n))
            .map(|n| &**n)
    }

    /// Nodes that lose the range (may drop it once the others have it).
    pub fn lost_by(&self) -> impl Iterator<Item = &str> {
        self.from
            .iter()
            .filter(|n| !self.to.contains(n))
            .map(|n| &**n)
    }
}

/// Builds a [`Ring`] with non-default parameters.
#[derive(Debug, Clone)]
pub struct RingBuilder {
    nodes: Vec<Node>,
    vnodes_per_weight: u32,
    replicas: usize,
}

impl Default for RingBuilder {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            vnodes_per_weight: DEFAULT_VNODES_PER_WEIGHT,
            replicas: DEFAULT_REPLICAS,
        }
    }
}

impl RingBuilder {
    /// Adds nodes.
    pub fn nodes(mut self, nodes: impl IntoIterator<Item = Node>) -> Self {
        self.nodes.extend(nodes);
        self
    }

    /// Adds one node.
    pub fn node(mut self, node: Node) -> Self {
        self.nodes.push(node);
        self
    }

    /// Points per unit of weight (default [`DEFAULT_VNODES_PER_WEIGHT`]).
    pub fn vnodes_per_weight(mut self, vnodes: u32) -> Self {
        self.vnodes_per_weight = vnodes;
        self
    }

    /// Replicas per range, each on its own zone (default [`DEFAULT_REPLICAS`]).
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Builds the ring.
    pub fn build(self) -> Result<Ring, RingError> {
        Ring::build(self.nodes, self.vnodes_per_weight, self.replicas)
    }
}

/// One node as the ring keeps it.
#[derive(Debug, Clone)]
struct Member {
    id: Arc<str>,
    zone: u32,
    node: Node,
}

/// Consistent-hash placement of token ranges on nodes (see the module doc).
#[derive(Clone)]
pub struct Ring {
    /// Sorted by id, so a node's index does not depend on input order.
    members: Vec<Member>,
    vnodes_per_weight: u32,
    replicas: usize,
    /// Point tokens, ascending.
    points: Vec<u64>,
    /// `replicas` member indexes per point: the replica set of the range
    /// the point starts, owner first.
    sets: Vec<u32>,
    /// `radix[b]` is the first point whose token is at least `b << shift`;
    /// one extra entry at the end equals `points.len()`.
    radix: Vec<u32>,
    shift: u32,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("nodes", &self.members.len())
            .field("points", &self.points.len())
            .field("replicas", &self.replicas)
            .finish()
    }
}

/// The point of vnode `vnode` of the node called `id`.
fn point_token(id: &str, vnode: u32) -> u64 {
    xxh3_64_with_seed(id.as_bytes(), u64::from(vnode))
}

impl Ring {
    /// A ring of `nodes` with the default vnode count and replicas.
    pub fn new(nodes: impl IntoIterator<Item = Node>) -> Result<Self, RingError> {
        RingBuilder::default().nodes(nodes).build()
    }

    /// A builder, to set vnodes per weight or replicas.
    pub fn builder() -> RingBuilder {
        RingBuilder::default()
    }

    fn build(
        mut nodes: Vec<Node>,
        vnodes_per_weight: u32,
        replicas: usize,
    ) -> Result<Self, RingError> {
        if replicas == 0 || vnodes_per_weight == 0 {
            return Err(RingError::ZeroParameter);
        }
        if nodes.is_empty() {
            return Err(RingError::Empty);
        }
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let mut zones: Vec<&str> = Vec::new();
        let mut total_points = 0u64;
        for (i, node) in nodes.iter().enumerate() {
            if i > 0 && nodes[i - 1].id == node.id {
                return Err(RingError::DuplicateNode(node.id.clone()));
            }
            if node.weight == 0 {
                return Err(RingError::ZeroWeight(node.id.clone()));
            }
            if !zones.contains(&node.zone.as_str()) {
                zones.push(&node.zone);
            }
            total_points += u64::from(node.weight) * u64::from(vnodes_per_weight);
        }
        if zones.len() < replicas {
            return Err(RingError::TooFewZones {
                replicas,
                zones: zones.len(),
            });
        }
        if total_points > MAX_RING_POINTS as u64 {
            return Err(RingError::TooManyPoints(total_points));
        }
        zones.sort_unstable();
        let members: Vec<Member> = nodes
            .iter()
            .map(|node| Member {
                id: Arc::from(node.id.as_str()),
                // The zone list holds every node's zone (built above).
                zone: zones.binary_search(&node.zone.as_str()).unwrap_or(0) as u32,
                node: node.clone(),
            })
            .collect();
        // (token, member): ties (astronomically rare) break by member, so
        // the order is still independent of the input order.
        let mut tagged: Vec<(u64, u32)> = Vec::with_capacity(total_points as usize);
        for (index, member) in members.iter().enumerate() {
            for vnode in 0..member.node.weight * vnodes_per_weight {
                tagged.push((point_token(&member.id, vnode), index as u32));
            }
        }
        tagged.sort_unstable();
        let points: Vec<u64> = tagged.iter().map(|(token, _)| *token).collect();
        let owners: Vec<u32> = tagged.iter().map(|(_, member)| *member).collect();
        let sets = replica_sets(&owners, &members, replicas);
        let (radix, shift) = radix_index(&points);
        Ok(Self {
            members,
            vnodes_per_weight,
            replicas,
            points,
            sets,
            radix,
            shift,
        })
    }

    /// The nodes, sorted by id.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &Node> {
        self.members.iter().map(|m| &m.node)
    }

    /// Replicas per range.
    pub fn replica_count(&self) -> usize {
        self.replicas
    }

    /// Points on the ring (all virtual nodes).
    pub fn point_count(&self) -> usize {
        self.points.len()
    }

    /// The index of the point whose range holds `token`: the first point
    /// above it, wrapping to the first point past the top of the ring.
    #[inline]
    fn point_of(&self, token: u64) -> usize {
        let bucket = (token >> self.shift) as usize;
        let mut i = self.radix[bucket] as usize;
        // `radix[bucket + 1]` is above every token of this bucket, so the
        // scan stops there at the latest.
        let end = self.radix[bucket + 1] as usize;
        while i < end && self.points[i] <= token {
            i += 1;
        }
        if i == self.points.len() { 0 } else { i }
    }

    #[inline]
    fn set_at(&self, point: usize) -> &[u32] {
        &self.sets[point * self.replicas..(point + 1) * self.replicas]
    }

    /// The node that owns `token` (the first of its replica set).
    #[inline]
    pub fn owner(&self, token: u64) -> &Node {
        let set = self.set_at(self.point_of(token));
        &self.members[set[0] as usize].node
    }

    /// The replica set of `token`: `replicas` nodes on distinct zones,
    /// owner first.
    #[inline]
    pub fn replicas(&self, token: u64) -> impl ExactSizeIterator<Item = &Node> {
        self.set_at(self.point_of(token))
            .iter()
            .map(|&m| &self.members[m as usize].node)
    }

    /// Every range of the ring with its replica set's node ids (owner
    /// first), in token order; together they cover every token once.
    pub fn ranges(&self) -> impl Iterator<Item = (TokenRange, Vec<Arc<str>>)> + '_ {
        self.segments().map(|(range, point)| {
            let ids = self
                .set_at(point)
                .iter()
                .map(|&m| Arc::clone(&self.members[m as usize].id))
                .collect();
            (range, ids)
        })
    }

    /// `(range, point)` for every non-empty range in token order; the
    /// wrapping range of the first point is split into its head (from
    /// token 0) and its tail (from the last point to the ring's end).
    fn segments(&self) -> impl Iterator<Item = (TokenRange, usize)> + '_ {
        let last = self.points.len() - 1;
        let body = (0..self.points.len()).filter_map(move |i| {
            let start = if i == 0 { 0 } else { self.points[i - 1] };
            let range = TokenRange {
                start,
                end: Some(self.points[i]),
            };
            (!range.is_empty()).then_some((range, i))
        });
        let tail = TokenRange {
            start: self.points[last],
            end: None,
        };
        body.chain([(tail, 0)])
    }

    /// The ring with `node` added, same parameters.
    pub fn with_node(&self, node: Node) -> Result<Self, RingError> {
        let mut nodes: Vec<Node> = self.nodes().cloned().collect();
        nodes.push(node);
        Self::build(nodes, self.vnodes_per_weight, self.replicas)
    }

    /// The ring without the node called `id`, same parameters.
    pub fn without_node(&self, id: &str) -> Result<Self, RingError> {
        if !self.members.iter().any(|m| &*m.id == id) {
            return Err(RingError::UnknownNode(id.to_owned()));
        }
        let nodes = self.nodes().filter(|n| n.id != id).cloned().collect();
        Self::build(nodes, self.vnodes_per_weight, self.replicas)
    }

    /// Exactly the token ranges whose replica set differs in `next`, with
    /// the sets before and after; adjacent ranges with the same change are
    /// merged. Empty when the rings place every token alike.
    pub fn moves(&self, next: &Ring) -> Vec<RangeMove> {
        let mut bounds: Vec<u64> = Vec::with_capacity(self.points.len() + next.points.len() + 1);
        bounds.push(0);
        bounds.extend_from_slice(&self.points);
        bounds.extend_from_slice(&next.points);
        bounds.sort_unstable();
        bounds.dedup();
        let mut moves: Vec<RangeMove> = Vec::new();
        for (i, &start) in bounds.iter().enumerate() {
            let end = bounds.get(i + 1).copied();
            let from = self.ids(self.point_of(start));
            let to = next.ids(next.point_of(start));
            if from == to {
                continue;
            }
            match moves.last_mut() {
                Some(last)
                    if last.range.end == Some(start) && last.from == from && last.to == to =>
                {
                    last.range.end = end;
                }
                _ => moves.push(RangeMove {
                    range: TokenRange { start, end },
                    from,
                    to,
                }),
            }
        }
        moves
    }

    fn ids(&self, point: usize) -> Vec<Arc<str>> {
        self.set_at(point)
            .iter()
            .map(|&m| Arc::clone(&self.members[m as usize].id))
            .collect()
    }
}

/// For each point, the replica set of its range: walk the points from it
/// onwards, taking each owner whose zone is not yet in the set.
fn replica_sets(owners: &[u32], members: &[Member], replicas: usize) -> Vec<u32> {
    let mut sets = Vec::with_capacity(owners.len() * replicas);
    let mut zones_taken: HashSet<u32> = HashSet::with_capacity(replicas);
    for start in 0..owners.len() {
        zones_taken.clear();
        let before = sets.len();
        // Bounded: one lap of the ring visits every member, and there are
        // at least `replicas` zones (checked by the builder).
        for step in 0..owners.len() {
            let member = owners[(start + step) % owners.len()];
            if zones_taken.insert(members[member as usize].zone) {
                sets.push(member);
                if sets.len() - before == replicas {
                    break;
                }
            }
        }
        assert_eq!(
            sets.len() - before,
            replicas,
            "point {start}: a lap of the ring found too few zones"
        );
    }
    sets
}

/// A radix index over the top bits of the points' tokens: about one point
/// per bucket, so a lookup scans one or two entries.
fn radix_index(points: &[u64]) -> (Vec<u32>, u32) {
    let bits = points
        .len()
        .next_power_of_two()
        .trailing_zeros()
        .clamp(1, 24);
    let shift = 64 - bits;
    let buckets = 1usize << bits;
    let mut radix = Vec::with_capacity(buckets + 1);
    let mut i = 0usize;
    for bucket in 0..buckets {
        let bucket_start = (bucket as u64) << shift;
        while i < points.len() && points[i] < bucket_start {
            i += 1;
        }
        radix.push(i as u32);
    }
    radix.push(points.len() as u32);
    (radix, shift)
}

#[cfg(test)]
#[path = "ring_tests.rs"]
mod tests;
