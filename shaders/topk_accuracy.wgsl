// top-k accuracy: row i is right when fewer than TOPK classes score strictly higher than its
// label (ties count in the label's favour). Writes the fraction of right rows.

const WG: u32 = 256u;

struct Params { n: u32, k: u32, topk: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;    // (N, K)
@group(0) @binding(2) var<storage, read> labels: array<i32>;    // (N)
@group(0) @binding(3) var<storage, read_write> acc: array<f32>; // (1)

@compute @workgroup_size(WG)
fn main(lanes: Lanes) {
    let lid = lanes.index;
    var right = 0.0;
    for (var r = lid; r < p.n; r += WG) {
        let label = labels[r];
        if (label < 0 || u32(label) >= p.k) {
            continue;
        }
        let base = r * p.k;
        let target_score = logits[base + u32(label)];
        var higher = 0u;
        for (var j = 0u; j < p.k; j++) {
            if (logits[base + j] > target_score) {
                higher++;
            }
        }
        if (higher < p.topk) {
            right += 1.0;
        }
    }
    let total = workgroup_sum(right, lanes);
    if (lid == 0u) {
        acc[0] = total / f32(p.n);
    }
}
