//! Data-parallel sharding check, run under MPI: every rank trains with `Learner` on a small
//! synthetic data set that records which samples it hands out; after each epoch the ranks add up
//! their counts and rank 0 checks that every sample was trained on exactly once across ranks.
//! Exits non-zero (and aborts the job) otherwise. CI runs it from tests/dist.rs:
//!
//! ```text
//! cargo build --release --features mpi --example ddp_sharding
//! mpirun -np 3 target/release/examples/ddp_sharding
//! ```

use convoy::data::{Batch, Dataset, Split};
use convoy::dist::{Collective, DistOptions, Mpi};
use convoy::nn::by_name;
use convoy::rng::Rng;
use convoy::train::{Learner, Optimizer};
use convoy::Gpu;
use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::Mutex;

/// A data set that records the indices of every batch it prepares.
struct Recording {
    inner: Split,
    seen: Mutex<Vec<usize>>,
}

impl Dataset for Recording {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn channels(&self) -> usize {
        self.inner.channels()
    }
    fn classes(&self) -> usize {
        Dataset::classes(&self.inner)
    }
    fn default_size(&self) -> [usize; 2] {
        self.inner.default_size()
    }
    fn batch(&self, idx: &[usize], size: Option<usize>, augment: Option<&mut Rng>) -> convoy::Result<Batch> {
        convoy::device::lock(&self.seen).extend_from_slice(idx);
        self.inner.batch(idx, size, augment)
    }
}

fn synthetic(n: usize, seed: u64) -> Split {
    let mut rng = Rng::new(seed);
    Split {
        n,
        h: 8,
        w: 8,
        images: (0..n * 64).map(|_| (rng.uniform() * 255.0) as u8).collect(),
        labels: (0..n).map(|i| (i % 3) as u8).collect(),
    }
}

fn main() -> convoy::Result<()> {
    let mpi = Rc::new(Mpi::init()?);
    let (rank, world) = (mpi.rank(), mpi.size());
    // 37 samples, 5 per rank: an uneven last global batch for 2 and 3 ranks
    let (n, bs, epochs) = (37, 5, 3);
    let gpu = Gpu::builder().local_rank(mpi.local_rank()).build()?;
    let train = Recording {
        inner: synthetic(n, 1),
        seen: Mutex::new(Vec::new()),
    };
    let valid = synthetic(11, 2);
    let opt = Optimizer::Sgd {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 0.0,
        nesterov: false,
    };
    let mut learner = Learner::new(&gpu, by_name("simple_cnn", 3, 1)?, opt, bs, 7);
    learner.distribute(DistOptions::new(mpi.clone()));
    let mut failure = None;
    learner.fit(&train, &valid, epochs, 0.05, &mut |s| {
        let mut counts = vec![0.0f64; n];
        for i in convoy::device::lock(&train.seen).drain(..) {
            counts[i] += 1.0;
        }
        let reduced = mpi.all_reduce_sum_f64(&mut counts);
        if rank == 0 {
            let wrong: Vec<(usize, f64)> = counts.iter().copied().enumerate().filter(|&(_, c)| c != 1.0).collect();
            match (reduced, wrong.is_empty()) {
                (Ok(()), true) => println!(
                    "epoch {}: all {n} samples seen exactly once across {world} ranks",
                    s.epoch
                ),
                (r, _) => {
                    failure = Some(format!(
                        "epoch {}: {r:?}, samples not seen exactly once: {wrong:?}",
                        s.epoch
                    ))
                }
            }
        }
        ControlFlow::Continue(())
    })?;
    if let Some(f) = failure {
        eprintln!("ddp_sharding: {f}");
        mpi.abort(1);
    }
    Ok(())
}
