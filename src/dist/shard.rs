//! Which samples each rank trains on: disjoint shards of the same seeded epoch order.

/// One rank's part of one global batch.
#[derive(Clone, Debug, PartialEq)]
pub struct RankBatch {
    /// Sample indices this rank trains on in this step.
    pub indices: Vec<usize>,
    /// Samples in the global batch (all ranks together).
    pub global: usize,
    /// This rank's share of the global batch, `indices.len() / global`: the weight of its
    /// gradients in the average. 0 for a rank with nothing left in an uneven last batch: it
    /// still runs the step (on one sample it repeats, with weight 0) so that every rank joins
    /// every collective.
    pub weight: f32,
}

/// The batches of rank `rank` of `world` over an epoch `order` (the same on every rank), with
/// `bs` samples per rank. Global batch i is `order[i*bs*world ..][.. bs*world]`, and rank r
/// takes the r-th contiguous part of it. The last global batch, when shorter, is split as evenly
/// as possible (parts differ by at most one sample), so every sample of the epoch is seen
/// exactly once across ranks, and the weights of a step sum to 1 over ranks. Rank 0 always has
/// samples.
/// With `world == 1` and `keep_last == false` this is plain batching that drops the last
/// partial batch (one compiled shape per epoch), as single-process training does.
pub fn shard_epoch(order: &[usize], bs: usize, rank: usize, world: usize, keep_last: bool) -> Vec<RankBatch> {
    let (bs, world) = (bs.max(1), world.max(1));
    let global = bs * world;
    order
        .chunks(global)
        .filter(|c| keep_last || c.len() == global)
        .map(|c| {
            let m = c.len();
            // rounded up, so the lowest ranks take the extra samples and rank 0 (whose running
            // statistics the job keeps) always has some
            let part = &c[(rank * m).div_ceil(world)..((rank + 1) * m).div_ceil(world)];
            if part.is_empty() {
                RankBatch {
                    indices: vec![c[0]],
                    global: m,
                    weight: 0.0,
                }
            } else {
                RankBatch {
                    indices: part.to_vec(),
                    global: m,
                    weight: part.len() as f32 / m as f32,
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_exactly_once_across_ranks() {
        for (n, bs, world) in [(100, 8, 2), (101, 8, 2), (17, 4, 3), (5, 4, 4), (9, 1, 4), (64, 16, 2)] {
            let order: Vec<usize> = (0..n).rev().collect();
            let mut seen = vec![0; n];
            let per_rank: Vec<_> = (0..world).map(|r| shard_epoch(&order, bs, r, world, true)).collect();
            let steps = per_rank[0].len();
            for (r, batches) in per_rank.iter().enumerate() {
                assert_eq!(batches.len(), steps, "every rank takes the same number of steps");
                for b in batches {
                    assert!(b.indices.len() <= bs, "rank {r} batch larger than bs");
                    if b.weight > 0.0 {
                        for &i in &b.indices {
                            seen[i] += 1;
                        }
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "n={n} bs={bs} world={world}: {seen:?}");
            assert!(per_rank[0].iter().all(|b| b.weight > 0.0), "rank 0 always has samples");
            for s in 0..steps {
                let w: f32 = per_rank.iter().map(|b| b[s].weight).sum();
                assert!((w - 1.0).abs() < 1e-6, "weights of step {s} sum to {w}");
                let sizes: Vec<usize> = per_rank
                    .iter()
                    .map(|b| if b[s].weight > 0.0 { b[s].indices.len() } else { 0 })
                    .collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "uneven split {sizes:?}");
            }
        }
    }

    #[test]
    fn one_rank_without_keep_last_is_plain_batching() {
        let order: Vec<usize> = (0..10).collect();
        let b = shard_epoch(&order, 4, 0, 1, false);
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].indices, vec![4, 5, 6, 7]);
        assert_eq!(b[1].weight, 1.0);
    }
}
