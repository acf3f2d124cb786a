// f32 <-> f16 conversion at the edges of a graph whose activations are stored as f16. Written
// with the core pack2x16float / unpack2x16float on u32 words (two halves each), so it needs no
// shader-f16 itself. One invocation converts one pair; an odd last element pairs with a zero.

override WG: u32 = 256u;
override TO_HALF: bool = true;

struct Params { total: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;        // f32 bits, or f16 pairs
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;  // f16 pairs, or f32 bits

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (2u * i >= p.total) {
        return;
    }
    let second = 2u * i + 1u < p.total;
    if (TO_HALF) {
        let a = bitcast<f32>(src[2u * i]);
        let b = select(0.0, bitcast<f32>(src[min(2u * i + 1u, p.total - 1u)]), second);
        dst[i] = pack2x16float(vec2f(a, b));
    } else {
        let v = unpack2x16float(src[i]);
        dst[2u * i] = bitcast<u32>(v.x);
        if (second) {
            dst[2u * i + 1u] = bitcast<u32>(v.y);
        }
    }
}
