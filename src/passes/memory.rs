//! Memory planning: every temporary value gets a slot (a buffer) that it shares only with values
//! whose lifetimes do not overlap. Lifetimes are node intervals [producer, last reader]; a
//! reshape is a view, so it extends the lifetime of the value it views. Slots are handed out
//! largest value first, best fit; a node's outputs never share a slot with its inputs.

use crate::graph::{Graph, ValueId, ValueKind};

#[derive(Clone, Debug)]
pub struct MemoryPlan {
    /// Slot of each temporary value (views share their base's slot); None for other kinds.
    pub slot_of: Vec<Option<usize>>,
    /// Bytes of each slot: the largest value it holds.
    pub slot_bytes: Vec<u64>,
    /// [first, last] node index during which each base value must stay intact.
    pub live: Vec<Option<(usize, usize)>>,
}

impl MemoryPlan {
    pub fn total_bytes(&self) -> u64 {
        self.slot_bytes.iter().sum()
    }

    /// The most bytes of planned temporaries alive at once, over the nodes of `g` (the graph
    /// planned): the floor under `total_bytes` that no assignment of slots can go below.
    pub fn live_peak_bytes(&self, g: &Graph) -> u64 {
        // +bytes where a value's life starts, -bytes after it ends, swept in node order
        let mut delta = vec![0i64; g.nodes.len() + 2];
        for (v, l) in self.live.iter().enumerate() {
            if let (Some((s, e)), Some(_)) = (l, self.slot_of[v]) {
                let b = bytes_of(g, ValueId(v)) as i64;
                delta[*s] += b;
                delta[e + 1] -= b;
            }
        }
        let mut live = 0i64;
        delta
            .iter()
            .map(|d| {
                live += d;
                live
            })
            .max()
            .unwrap_or(0)
            .max(0) as u64
    }
}

fn bytes_of(g: &Graph, v: ValueId) -> u64 {
    let val = g.value(v);
    ((val.shape.numel() * val.dtype.size()) as u64).div_ceil(4).max(1) * 4
}

/// The value whose buffer `v` uses: itself, or the base of a chain of reshapes
/// (`Graph::view_base`).
pub fn base_of(g: &Graph, v: ValueId) -> ValueId {
    g.view_base(v)
}

/// Plan the temporaries of `g`; values in `keep` stay intact to the end (they are read back).
pub fn plan(g: &Graph, keep: &[ValueId]) -> MemoryPlan {
    let n_nodes = g.nodes.len();
    let mut live: Vec<Option<(usize, usize)>> = vec![None; g.values.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        for &o in &n.outputs {
            let b = base_of(g, o);
            if b == o {
                live[o.0] = Some((i, i));
            }
        }
        for &v in &n.inputs {
            let b = base_of(g, v);
            if let Some((s, e)) = live[b.0] {
                live[b.0] = Some((s, e.max(i)));
            }
        }
    }
    for &k in keep {
        let b = base_of(g, k);
        if let Some((s, _)) = live[b.0] {
            live[b.0] = Some((s, n_nodes));
        }
    }

    // Greedy by size (as TensorFlow Lite's planner): the largest values first, each into the
    // smallest slot whose values' lives do not overlap its own, else a new slot. Sizes known in
    // advance waste less than handing slots out in execution order, where a small value can
    // take a large slot that a later large value then needs (measured on ResNet-50: BENCHMARKS.md,
    // "Mixed-precision training"). Lives are inclusive node intervals, so a node's outputs never
    // share a slot with its inputs.
    // CONVOY_NO_MEMORY_PLANNER=1: one buffer per value (to rule the planner out when debugging)
    let reuse = std::env::var("CONVOY_NO_MEMORY_PLANNER").map_or(true, |v| v == "0");
    let mut order: Vec<usize> = (0..g.values.len())
        .filter(|&v| live[v].is_some() && g.values[v].kind == ValueKind::Temp)
        .collect();
    order.sort_by_key(|&v| (std::cmp::Reverse(bytes_of(g, ValueId(v))), live[v].map(|l| l.0)));
    let mut slot_of: Vec<Option<usize>> = vec![None; g.values.len()];
    let mut slot_bytes: Vec<u64> = Vec::new();
    // the lives each slot holds, sorted by start
    let mut held: Vec<Vec<(usize, usize)>> = Vec::new();
    for v in order {
        let (s, e) = live[v].expect("filtered");
        let need = bytes_of(g, ValueId(v));
        let free = |lives: &Vec<(usize, usize)>| {
            // the first life starting after s, and the one before it, must both miss [s, e]
            let k = lives.partition_point(|l| l.0 <= s);
            (k == 0 || lives[k - 1].1 < s) && lives.get(k).is_none_or(|l| l.0 > e)
        };
        let pick = match reuse {
            true => (0..held.len())
                .filter(|&k| slot_bytes[k] >= need && free(&held[k]))
                .min_by_key(|&k| slot_bytes[k]),
            false => None,
        };
        let slot = pick.unwrap_or_else(|| {
            slot_bytes.push(need);
            held.push(Vec::new());
            held.len() - 1
        });
        let at = held[slot].partition_point(|l| l.0 <= s);
        held[slot].insert(at, (s, e));
        slot_of[v] = Some(slot);
    }
    // views share their base's slot
    for v in 0..g.values.len() {
        let b = base_of(g, ValueId(v));
        if b.0 != v {
            slot_of[v] = slot_of[b.0];
        }
    }
    MemoryPlan {
        slot_of,
        slot_bytes,
        live,
    }
}
