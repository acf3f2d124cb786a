// copy_vec4: dst = src, one vec4 (16 bytes) per invocation: the bandwidth yardstick of `convoy
// bench` (a memory-bound kernel's bytes per second against what a plain copy kernel moves on
// the same device, timed on the same clock).

struct Params { count: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4f>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i < p.count) {
        dst[i] = src[i];
    }
}
