// Rounds f32 values to the nearest f16 value, kept in f32 storage: the f16 copy of a weight a
// mixed-precision conv reads, and the f16 rounding of a gradient where autocast would hold it
// in f16 (`passes::precision`). Written with integer operations, not a conversion, so every
// driver rounds alike: to nearest, ties to even, f16 subnormals kept, magnitudes from 65520 on
// to infinity (as f16's own rounding overflows), NaN kept.

override WG: u32 = 256u;

struct Params { total: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;        // f32 bits
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;  // f32 bits, f16 values

fn round_half(u: u32) -> u32 {
    let mag = u & 0x7fffffffu;
    let sign = u & 0x80000000u;
    if (mag > 0x7f800000u) {
        return u; // NaN
    }
    if (mag >= 0x477ff000u) {
        return sign | 0x7f800000u; // >= 65520: infinity
    }
    if (mag >= 0x38800000u) {
        // f16's normal range (>= 2^-14): keep 10 of the 23 mantissa bits, ties to even
        let lsb = (mag >> 13u) & 1u;
        return sign | ((mag + 0xfffu + lsb) & 0xffffe000u);
    }
    // f16's subnormals: multiples of 2^-24 (the scaling is exact; round() ties to even)
    let v = bitcast<f32>(mag);
    return sign | bitcast<u32>(round(v * 16777216.0) * (1.0 / 16777216.0));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.total) {
        return;
    }
    dst[i] = round_half(src[i]);
}
