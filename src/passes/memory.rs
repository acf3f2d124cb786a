//! Memory planning: every temporary value gets a slot (a buffer) that it shares only with values
//! whose lifetimes do not overlap. Lifetimes are node intervals [producer, last reader]; a
//! reshape is a view, so it extends the lifetime of the value it views. Slots are handed out in
//! execution order, best fit first; a node's outputs never share a slot with its inputs.

use crate::graph::{Graph, Op, ValueId, ValueKind};

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

/// The value whose buffer `v` uses: itself, or the base of a chain of reshapes.
pub fn base_of(g: &Graph, mut v: ValueId) -> ValueId {
    while let Some(p) = g.value(v).producer {
        let n = g.node(p);
        if n.op != Op::Reshape {
            break;
        }
        v = n.inputs[0];
    }
    v
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

    let mut slot_of: Vec<Option<usize>> = vec![None; g.values.len()];
    let mut slot_bytes: Vec<u64> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    // values whose last use is node i, released after node i
    let mut dies_at: Vec<Vec<usize>> = vec![Vec::new(); n_nodes + 1];
    for (v, l) in live.iter().enumerate() {
        if let Some((_, e)) = l {
            dies_at[*e].push(v);
        }
    }
    // CONVOY_NO_MEMORY_PLANNER=1: one buffer per value (to rule the planner out when debugging)
    let reuse = std::env::var("CONVOY_NO_MEMORY_PLANNER").map_or(true, |v| v == "0");
    for (i, n) in g.nodes.iter().enumerate() {
        if !reuse {
            free.clear();
        }
        for &o in &n.outputs {
            if live[o.0].is_none() || g.value(o).kind != ValueKind::Temp {
                continue;
            }
            let need = bytes_of(g, o);
            // best fit among free slots; else grow the largest free one; else a new slot
            let fit = free
                .iter()
                .enumerate()
                .filter(|(_, &s)| slot_bytes[s] >= need)
                .min_by_key(|(_, &s)| slot_bytes[s]);
            let pick = fit
                .or_else(|| free.iter().enumerate().max_by_key(|(_, &s)| slot_bytes[s]))
                .map(|(k, _)| k);
            let slot = match pick {
                Some(k) => free.swap_remove(k),
                None => {
                    slot_bytes.push(0);
                    slot_bytes.len() - 1
                }
            };
            slot_bytes[slot] = slot_bytes[slot].max(need);
            slot_of[o.0] = Some(slot);
        }
        for &v in &dies_at[i] {
            if let Some(s) = slot_of[v] {
                free.push(s);
            }
        }
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
