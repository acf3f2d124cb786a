// Dropout, forward and backward in one kernel: out = inp * keep / (1 - P), where keep is drawn
// again from a counter-based hash of (seed, step, SALT, element) instead of being stored, so
// the backward recomputes the forward's mask exactly and a run resumed at the same step draws
// the same masks. PER_SAMPLE draws one keep per image (stochastic depth: a residual branch
// dropped for whole samples). Forward: inp = x, out = y; backward: inp = dy, out = dx.

override WG: u32 = 256u;
override P: f32 = 0.5;
override SALT: u32 = 0u;        // one per dropout layer, so layers draw different masks
override PER_SAMPLE: bool = false;

struct Params { total: u32, sample: u32 }   // sample: elements per image

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> seed: array<u32>;    // [seed, step]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// A 32-bit integer hash with full avalanche (two multiply-xorshift rounds); `ops::dropout`'s
// `hash32` is the same function, for the tests' reference.
fn hash32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.total) {
        return;
    }
    let unit = select(i, i / p.sample, PER_SAMPLE);
    let stream = hash32(hash32(hash32(seed[0]) ^ seed[1]) ^ SALT);
    // 24 random bits as a uniform in [0, 1)
    let u = f32(hash32(hash32(unit) ^ stream) >> 8u) * (1.0 / 16777216.0);
    // PyTorch's scaling: times 1 / (1 - p), rounded once to f32
    let scale = 1.0 / (1.0 - P);
    out[i] = select(0.0, inp[i] * scale, u >= P);
}
