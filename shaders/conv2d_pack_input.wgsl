// Packs a conv's input x (N, Cin, H, W) into an rgba32float operand texture for the kernels that
// read it with textureLoad (the CPU-driver family: a texel fetch is vectorised there, a
// storage-buffer gather is a loop over the lanes). A texel holds 4 consecutive input channels of
// one group at one pixel (channels past the group's last are 0); each (image, channel block) is
// a plane of HP x WP texels that includes the conv's zero padding, so the readers need no bounds
// checks. Planes are laid out as
//   X = slot * WP + PW + ix                      slot = n % PER_BAND
//   Y = band * BLOCKS * HP + block * HP + PH + iy   band = n / PER_BAND, block = g * C4G + cb
// (a batch too wide for one row of planes folds into bands). One invocation per texel.

alias T = f32;

override WG: u32 = 64u;

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    groups: u32, c4g: u32, wp: u32, hp: u32,
    per_band: u32, ph: u32, pw: u32, width: u32,
    height: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;   // (N, Cin, H, W)
@group(0) @binding(2) var packed: texture_storage_2d<rgba32float, write>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
    let tx = gid.x;
    let ty = gid.y;
    if (tx >= p.width || ty >= p.height) {
        return;
    }
    let cin_g = p.cin / p.groups;
    let band_rows = p.groups * p.c4g * p.hp;
    let n = (ty / band_rows) * p.per_band + tx / p.wp;
    let r = ty % band_rows;
    let block = r / p.hp;
    let g = block / p.c4g;
    let cb = block % p.c4g;
    // one unsigned compare per axis: a negative coordinate wraps past the bound
    let iy = (r % p.hp) - p.ph;
    let ix = (tx % p.wp) - p.pw;
    let inside = n < p.n && iy < p.h && ix < p.w;
    var v = vec4f(0.0);
    for (var k = 0u; k < 4u; k++) {
        let ci = cb * 4u + k;
        if (inside && ci < cin_g) {
            v[k] = f32(x[((n * p.cin + g * cin_g + ci) * p.h + iy) * p.w + ix]);
        }
    }
    textureStore(packed, vec2u(tx, ty), v);
}
