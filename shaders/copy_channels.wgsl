// Channel-range copies between (N, C, HW) tensors: `count` channels from src (starting at
// channel src_off of src_c) to dst (starting at dst_off of dst_c). Concat writes each input
// into its range of the output, a channel slice (torch.chunk, split) reads one range out, and
// with FILL (the slice's backward) every channel of dst is written: the range from src, the
// rest zero.

override WG: u32 = 256u;
override FILL: bool = false;

struct Params { total: u32, hw: u32, src_c: u32, dst_c: u32, src_off: u32, dst_off: u32, count: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.total) {
        return;
    }
    // consecutive lanes walk the map: coalesced reads and writes
    let per = select(p.count, p.dst_c, FILL) * p.hw;
    let n = i / per;
    let c = (i % per) / p.hw;
    let s = i % p.hw;
    if (FILL) {
        let inside = c >= p.dst_off && c < p.dst_off + p.count;
        let src_at = (n * p.src_c + p.src_off + min(c - p.dst_off, p.count - 1u)) * p.hw + s;
        dst[(n * p.dst_c + c) * p.hw + s] = select(0.0, src[min(src_at, arrayLength(&src) - 1u)], inside);
    } else {
        dst[(n * p.dst_c + p.dst_off + c) * p.hw + s] = src[(n * p.src_c + p.src_off + c) * p.hw + s];
    }
}
