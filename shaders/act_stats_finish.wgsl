// Activation statistics, second half (one workgroup): adds the rows of act_stats_partial and
// writes out = [mean, std, fraction with |x| <= NEAR, histogram counts (BINS)].

override BINS: u32 = 40u;
override HI: f32 = 10.0;
override NEAR: f32 = 0.01;

const WG: u32 = 256u;
const MAX_BINS: u32 = 64u;

struct Params { n: u32, parts: u32, per_part: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;    // (parts, 3 + BINS)
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // (3 + BINS)

var<workgroup> sums: array<f32, 3>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
    let width = 3u + BINS;
    var s = 0.0;
    if (lid < width) {
        for (var r = 0u; r < p.parts; r++) {
            s += part[r * width + lid];
        }
        if (lid < 3u) {
            sums[lid] = s;
        } else {
            out[lid] = s;
        }
    }
    workgroupBarrier();
    if (lid == 0u) {
        let n = f32(p.n);
        let mean = sums[0] / n;
        out[0] = mean;
        out[1] = sqrt(max(sums[1] / n - mean * mean, 0.0));
        out[2] = sums[2] / n;
    }
}
