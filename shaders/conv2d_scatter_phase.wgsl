// One stride phase of a strided conv's input gradient into its place in dx: the phase's values
// (N*C planes of ROWS x COLS, computed by the gpu family's forward as a dense map; the texture
// forward stores its phases in place itself) go to the input
// positions (first_y + sy*my, first_x + sx*mx); with ZERO, those positions get 0 (a phase that
// no tap reaches). Every dx element belongs to exactly one phase, so the phases' dispatches
// together write all of dx. One invocation per phase value, in the phase's order.

const WG: u32 = 64u;
override ZERO: bool = false;
// the phase's map: pipeline constants, so that the index arithmetic divides by constants
// (multiplies and shifts; a divisor from a uniform is one scalar divide per lane on lavapipe)
override ROWS: u32 = 1u;
override COLS: u32 = 1u;

struct Params {
    planes: u32, h: u32, w: u32, first_y: u32,
    first_x: u32, sy: u32, sx: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> phase: array<f32>;   // (N*C, ROWS, COLS); unread with ZERO
@group(0) @binding(2) var<storage, read_write> dx: array<f32>; // (N*C, H, W)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    let per_plane = ROWS * COLS;
    if (i >= p.planes * per_plane) {
        return;
    }
    let plane = i / per_plane;
    let my = (i % per_plane) / COLS;
    let mx = i % COLS;
    let at = (plane * p.h + p.first_y + my * p.sy) * p.w + p.first_x + mx * p.sx;
    if (ZERO) {
        dx[at] = 0.0;
    } else {
        dx[at] = phase[i];
    }
}
