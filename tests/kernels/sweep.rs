//! How much of a tile sweep a test runs. The exhaustive sweeps (every tile the tuner may pick,
//! for every shape) run in CI's extended run, `cargo test --release -- --include-ignored`, as
//! `#[ignore]`d tests of their own. The default run takes a rotating sample of each list:
//! shape `case` gets every `EVERY`-th candidate starting at `case % EVERY`, so across a test's
//! shapes every candidate still runs, each on fewer shapes; the kernel each pass takes by default
//! always runs.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// Every candidate on every shape (the extended run).
    Every,
    /// A third of the candidates on each shape, rotating (the default run).
    Sample,
}

/// The share of candidates a sampled sweep runs per shape.
pub const EVERY: usize = 3;

impl Sweep {
    /// The candidates of `items` shape number `case` runs.
    pub fn pick<T>(self, items: Vec<T>, case: usize) -> Vec<T> {
        match self {
            Sweep::Every => items,
            Sweep::Sample => {
                // at least one per shape: a list shorter than the offset takes one item in turn
                let n = items.len().max(1);
                let offset = if case % EVERY < n { case % EVERY } else { case % n };
                items
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| i % EVERY == offset)
                    .map(|(_, t)| t)
                    .collect()
            }
        }
    }
}

#[test]
fn a_sample_rotates_through_every_candidate() {
    let items: Vec<usize> = (0..8).collect();
    let mut seen = vec![0; 8];
    for case in 0..EVERY {
        for i in Sweep::Sample.pick(items.clone(), case) {
            seen[i] += 1;
        }
    }
    assert_eq!(seen, vec![1; 8], "each candidate exactly once over {EVERY} shapes");
    for case in 0..6 {
        assert_eq!(Sweep::Sample.pick(vec!['a', 'b'], case).len(), 1, "one of a short list");
    }
    assert!(Sweep::Sample.pick(Vec::<u8>::new(), 2).is_empty());
    assert_eq!(Sweep::Every.pick(items.clone(), 1), items);
}
