// Packs a conv's input x (N, Cin, H, W) into the texels of an rgba32float operand texture for the
// kernels that read it with textureLoad (the CPU-driver family: a texel fetch is vectorised there, a
// storage-buffer gather is a loop over the lanes). A texel holds 4 consecutive input channels of
// one group at one pixel (channels past the group's last are 0); each (image, channel block) is
// a plane of HP x WP texels that includes the conv's zero padding, so the readers need no bounds
// checks. Planes are laid out as
//   X = slot * WP + PW + ix                      slot = n % PER_BAND
//   Y = band * BLOCKS * HP + block * HP + PH + iy   band = n / PER_BAND, block = g * C4G + cb
// (a batch too wide for one row of planes folds into bands). The texels go to the texture's
// staging buffer, rows y0 .. y0 + rows of the texture at `stride` texels apart, which a copy then
// moves into the texture (cheaper on lavapipe than textureStore). One invocation per texel.
alias T = f32;

override WG: u32 = 64u;

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    groups: u32, c4g: u32, wp: u32, hp: u32,
    per_band: u32, ph: u32, pw: u32, width: u32,
    y0: u32, rows: u32, stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;   // (N, Cin, H, W)
@group(0) @binding(2) var<storage, read_write> packed: array<vec4f>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
    // a workgroup packs part of one texture row (grid y), so everything that follows from the
    // row is the same in every lane: lavapipe divides once per workgroup, not once per lane
    let row = wid.y;
    let ty = p.y0 + row;
    let cin_g = p.cin / p.groups;
    let band_rows = p.groups * p.c4g * p.hp;
    let r = ty % band_rows;
    let block = r / p.hp;
    let g = block / p.c4g;
    let cb = block % p.c4g;
    // one unsigned compare per axis: a negative coordinate wraps past the bound
    let iy = (r % p.hp) - p.ph;
    let tx = gid.x;
    // the image slot as an f32 division: lavapipe has no vector integer divide (one scalar
    // divide per lane), and this one was ~8% of the packing time. Exact while the texture is
    // under 2^23 texels wide: the quotient q = tx / wp rounds by at most q * 2^-24, less than
    // the 0.5 / wp that separates (tx + 0.5) / wp from the nearest integer when q * wp < 2^23
    let slot = u32((f32(tx) + 0.5) / f32(p.wp));
    let n = (ty / band_rows) * p.per_band + slot;
    let ix = tx - slot * p.wp - p.pw;
    let inside = tx < p.width && n < p.n && iy < p.h && ix < p.w;
    let base = ((n * p.cin + g * cin_g + cb * 4u) * p.h + iy) * p.w + ix;
    var v = vec4f(0.0);
    for (var k = 0u; k < 4u; k++) {
        if (inside && cb * 4u + k < cin_g) {
            v[k] = f32(x[base + k * p.h * p.w]);
        }
    }
    if (tx < p.width) {
        packed[row * p.stride + tx] = v;
    }
}
