// The block statistics of a conv forward that tiles fewer pixels per workgroup than a
// statistics block (conv2d_fwd_block: 64 of `kernels::conv::STATS_BLOCK`'s 256): merges each
// run of `factor` consecutive fine blocks, in order, with Chan's formula into one block of the
// (blocks, C, 2) layout batch_norm_merge reads. One invocation per (block, channel).

struct Params {
    c: u32, total: u32, fine: u32, factor: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> fine: array<f32>;            // (ceil(total / fine), C, 2)
@group(0) @binding(2) var<storage, read_write> coarse: array<f32>;    // (ceil(total / (fine * factor)), C, 2)

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let coarse_block = p.fine * p.factor;
    let blocks = (p.total + coarse_block - 1u) / coarse_block;
    if (i >= blocks * p.c) {
        return;
    }
    let b = i / p.c;
    let c = i % p.c;
    var n = 0.0;
    var m = 0.0;
    var m2 = 0.0;
    for (var f = 0u; f < p.factor; f++) {
        let start = (b * p.factor + f) * p.fine;
        if (start >= p.total) {
            break;
        }
        let nb = f32(min(p.fine, p.total - start));
        let at = ((b * p.factor + f) * p.c + c) * 2u;
        let nn = n + nb;
        let d = fine[at] - m;
        m += d * (nb / nn);
        m2 += fine[at + 1u] + d * d * (n * nb / nn);
        n = nn;
    }
    coarse[i * 2u] = m;
    coarse[i * 2u + 1u] = m2;
}
