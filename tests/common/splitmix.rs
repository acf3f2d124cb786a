//! The counter-based splitmix64 generator of tools/make_parity_fixtures.py (`stream`, `uniform`,
//! `labels`, `project`), bit for bit: value i of the stream `seed` is splitmix64's finaliser of
//! seed + (i + 1) * GOLDEN (wrapping), so any value is made without the ones before it. The
//! parity fixtures hold seeds and ranges, not weights; this makes the weights, the batch and the
//! labels again, and projects an update onto the fixture's random signs.

pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
/// Rademacher projections of an update (the script's P).
pub const PROJECTIONS: usize = 32;

/// splitmix64's finaliser.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Value `i` of the stream `seed`.
pub fn at(seed: u64, i: u64) -> u64 {
    mix(seed.wrapping_add((i + 1).wrapping_mul(GOLDEN)))
}

/// `n` values uniform on [lo, hi): lo + (hi - lo) * u in f64 with u = (z >> 11) * 2^-53, rounded
/// once to f32 (as numpy's astype, to nearest).
pub fn uniform(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let u = (at(seed, i) >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            (lo + (hi - lo) * u) as f32
        })
        .collect()
}

/// `n` labels in 0..classes: each value of the stream modulo `classes`.
pub fn labels(seed: u64, n: usize, classes: u64) -> Vec<i64> {
    (0..n as u64).map(|i| (at(seed, i) % classes) as i64).collect()
}

/// The PROJECTIONS Rademacher projections of `v`: projection j sums v[i] with the sign of bit j
/// of value i of the stream `seed` (+ where set); a vector of at most PROJECTIONS elements is
/// returned itself, zero-padded.
pub fn project(seed: u64, v: &[f64]) -> [f64; PROJECTIONS] {
    let mut p = [0.0; PROJECTIONS];
    if v.len() <= PROJECTIONS {
        p[..v.len()].copy_from_slice(v);
        return p;
    }
    for (i, &x) in v.iter().enumerate() {
        let (h, bits) = (at(seed, i as u64), x.to_bits());
        for (j, pj) in p.iter_mut().enumerate() {
            // x where bit j is set, else x with its sign bit flipped (-x)
            *pj += f64::from_bits(bits ^ ((!h >> j & 1) << 63));
        }
    }
    p
}

/// Values tools/make_parity_fixtures.py gives (`stream(0, 3)` is splitmix64's published
/// sequence from state 0): a drift on either side fails here before any parity test does.
#[test]
fn splitmix_matches_the_fixture_script() {
    assert_eq!(
        (0..3).map(|i| at(0, i)).collect::<Vec<_>>(),
        [0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f]
    );
    assert_eq!([at(1234, 5), at(1234, 6)], [0xb0bfb29e8c72a511, 0x7ecc3291b0181b9e]);
    let wide = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
    assert_eq!(
        wide(uniform(42, 4, -1.0, 1.0)),
        [
            0.4831297695636749,
            -0.680179238319397,
            -0.4427977502346039,
            -0.3116185665130615
        ]
    );
    assert_eq!(wide(uniform(7, 2, 0.5, 1.5)), [0.8898297548294067, 0.5167883038520813]);
    assert_eq!(labels(99, 6, 10), [3, 4, 7, 7, 6, 9]);
    let v: Vec<f64> = (0..40).map(|i| i as f64 - 20.5).collect();
    assert_eq!(project(5, &v)[..4], [7.0, 89.0, 111.0, 69.0]);
}
