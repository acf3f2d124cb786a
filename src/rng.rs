//! A small seeded generator (SplitMix64) for weight init, shuffling and tests: reproducible
//! across platforms, including wasm, with no dependency.

/// SplitMix64's increment: the state after `k` draws is the seed's plus `k` times this, so the
/// stream can be jumped ahead and split across threads without changing a value.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Below this many values a fill runs on the calling thread: a thread costs more than it saves.
const PARALLEL_FILL_MIN: usize = 1 << 16;

#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// Draws of `next_u64` one `uniform` or `range` value makes.
    pub const UNIFORM_DRAWS: u64 = 1;
    /// Draws of `next_u64` one `normal` value makes (Box-Muller's two uniforms).
    pub const NORMAL_DRAWS: u64 = 2;

    pub fn new(seed: u64) -> Rng {
        Rng { state: seed ^ GAMMA }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in [lo, hi] (inclusive).
    pub fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// `n` values uniform in [lo, hi) as f32 (`fill_range`).
    pub fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        let mut v = vec![0.0; n];
        self.fill_range(&mut v, lo, hi);
        v
    }

    /// `n` normals of standard deviation `std` as f32 (`fill_normal`).
    pub fn normals(&mut self, n: usize, std: f64) -> Vec<f32> {
        let mut v = vec![0.0; n];
        self.fill_normal(&mut v, std);
        v
    }

    /// Move on as if `draws` calls of `next_u64` had been made (`UNIFORM_DRAWS`,
    /// `NORMAL_DRAWS` a value), at no cost: a value that is not needed (a parameter loaded from a
    /// checkpoint) is skipped without shifting the ones after it.
    pub fn skip(&mut self, draws: u64) {
        self.state = self.state.wrapping_add(draws.wrapping_mul(GAMMA));
    }

    /// `out.len()` normals of standard deviation `std`: the same values, in the same order, as
    /// that many `normal()` calls, computed on worker threads when there are many (a ResNet's
    /// weights are millions of logarithms and cosines, a large part of a fresh process's start).
    pub fn fill_normal(&mut self, out: &mut [f32], std: f64) {
        self.fill(out, Self::NORMAL_DRAWS, |r| (r.normal() * std) as f32);
    }

    /// `out.len()` values uniform in [lo, hi): the same as that many `range(lo, hi)` calls.
    pub fn fill_range(&mut self, out: &mut [f32], lo: f64, hi: f64) {
        self.fill(out, Self::UNIFORM_DRAWS, |r| r.range(lo, hi) as f32);
    }

    /// Fill `out` with `value`, which makes `draws` draws a call, split into contiguous parts
    /// each starting from the stream jumped to its first value; the stream ends where
    /// `out.len()` sequential calls would leave it.
    fn fill(&mut self, out: &mut [f32], draws: u64, value: impl Fn(&mut Rng) -> f32 + Sync) {
        let threads = fill_threads(out.len());
        let part = out.len().div_ceil(threads).max(1);
        let start = self.clone();
        let fill_part = |(i, chunk): (usize, &mut [f32])| {
            let mut r = start.clone();
            r.skip((i * part) as u64 * draws);
            for v in chunk.iter_mut() {
                *v = value(&mut r);
            }
        };
        if threads == 1 {
            out.chunks_mut(part).enumerate().for_each(fill_part);
        } else {
            #[cfg(not(target_arch = "wasm32"))]
            std::thread::scope(|s| {
                for job in out.chunks_mut(part).enumerate() {
                    s.spawn(move || fill_part(job));
                }
            });
        }
        self.skip(out.len() as u64 * draws);
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Threads for a fill of `n` values: one below `PARALLEL_FILL_MIN` and in a browser, else the
/// cores, no more than one per `PARALLEL_FILL_MIN` values.
fn fill_threads(n: usize) -> usize {
    #[cfg(target_arch = "wasm32")]
    let cores = 1;
    #[cfg(not(target_arch = "wasm32"))]
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    cores.min(n / PARALLEL_FILL_MIN).max(1)
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn fills_match_sequential_draws_and_leave_the_stream_where_they_would() {
        for n in [0, 1, 7, (1 << 16) + 3, 3 << 17] {
            let (mut a, mut b) = (Rng::new(11), Rng::new(11));
            let mut filled = vec![0.0f32; n];
            a.fill_normal(&mut filled, 0.5);
            let sequential: Vec<f32> = (0..n).map(|_| (b.normal() * 0.5) as f32).collect();
            assert_eq!(filled, sequential, "normals, n = {n}");
            a.fill_range(&mut filled, -2.0, 3.0);
            let sequential: Vec<f32> = (0..n).map(|_| b.range(-2.0, 3.0) as f32).collect();
            assert_eq!(filled, sequential, "uniforms, n = {n}");
            assert_eq!(a.next_u64(), b.next_u64(), "stream after n = {n}");
        }
    }

    #[test]
    fn skip_is_the_same_as_drawing() {
        let (mut a, mut b) = (Rng::new(3), Rng::new(3));
        a.skip(1001);
        for _ in 0..1001 {
            b.next_u64();
        }
        assert_eq!(a.next_u64(), b.next_u64());
    }
}
