// Activation statistics of one tensor, for training diagnostics (fastai's ActivationStats),
// first half: each workgroup takes a contiguous slice of x and writes to its own row of `part`
// the sum, the sum of squares, the count of |x| <= NEAR and a histogram of BINS equal bins over
// [0, HI) (values outside are not counted, as torch.histc). act_stats_finish adds the rows.

override BINS: u32 = 40u;
override HI: f32 = 10.0;
override NEAR: f32 = 0.01;

const WG: u32 = 256u;
const MAX_BINS: u32 = 64u;

struct Params { n: u32, parts: u32, per_part: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;  // (parts, 3 + BINS)

var<workgroup> hist: array<atomic<u32>, MAX_BINS>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, lanes: Lanes) {
    let lid = lanes.index;
    if (lid < MAX_BINS) {
        atomicStore(&hist[lid], 0u);
    }
    workgroupBarrier();
    let start = wid.x * p.per_part;
    let end = min(start + p.per_part, p.n);
    var acc = vec3f(0.0);  // sum, sum of squares, near-zero count
    for (var i = start + lid; i < end; i += WG) {
        let v = x[i];
        acc += vec3f(v, v * v, select(0.0, 1.0, abs(v) <= NEAR));
        let b = v * (f32(BINS) / HI);
        if (b >= 0.0 && b < f32(BINS)) {
            atomicAdd(&hist[min(u32(b), BINS - 1u)], 1u);
        }
    }
    let total = workgroup_sum4(vec4f(acc, 0.0), lanes);
    let row = wid.x * (3u + BINS);
    if (lid == 0u) {
        part[row] = total.x;
        part[row + 1u] = total.y;
        part[row + 2u] = total.z;
    }
    if (lid < BINS) {
        part[row + 3u + lid] = f32(atomicLoad(&hist[lid]));
    }
}
