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
// The tensor's shape and the layout are pipeline constants: the index arithmetic divides by
// constants, which compile to multiplies and shifts, where a divisor from a uniform is one
// scalar divide per lane on lavapipe (a u32 division per lane was ~8% of this kernel's time)
// and a long sequence on GPUs.
alias T = f32;

override WG: u32 = 64u;
override N: u32 = 1u;
override CIN: u32 = 4u;
override H: u32 = 1u;
override W: u32 = 1u;
override GROUPS: u32 = 1u;
override C4G: u32 = 1u;
override WP: u32 = 1u;
override HP: u32 = 1u;
override PER_BAND: u32 = 1u;
override PH: u32 = 0u;
override PW: u32 = 0u;
// TRANSPOSED: x is a conv's weights w (Cout, Cin/g, KH, KW) and the packing is of their
// transposition, the forward weights of its input gradient (or of one stride phase of it):
// image n, channel c, tap (iy, ix) is element (n, c, iy, ix) of the weight_transpose prelude's
// map, read in place of a transposed copy
override TRANSPOSED: bool = false;
// SCALED: x is a conv's weights w and the packing is of w * s[n] per output channel n, with
// s = gamma / sqrt(running_var + eps) an inference batch norm's scale: the folded weights of a
// conv whose batch norm fusion folds in, packed straight from w (no folded copy in between)
override SCALED: bool = false;

// the texture rows this dispatch packs (a band of the staging buffer's rows), the texels from
// one staging row to the next, and (SCALED) the batch norm's eps
struct Params { width: u32, y0: u32, rows: u32, stride: u32, eps: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;   // (N, Cin, H, W)
@group(0) @binding(2) var<storage, read_write> packed: array<vec4f>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;      // (N), read with SCALED
@group(0) @binding(4) var<storage, read> run_var: array<f32>;    // (N), read with SCALED

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
    let row = wid.y;
    let ty = p.y0 + row;
    let cin_g = CIN / GROUPS;
    let band_rows = GROUPS * C4G * HP;
    let r = ty % band_rows;
    let block = r / HP;
    let g = block / C4G;
    let cb = block % C4G;
    // one unsigned compare per axis: a negative coordinate wraps past the bound
    let iy = (r % HP) - PH;
    let tx = gid.x;
    let slot = tx / WP;
    let n = (ty / band_rows) * PER_BAND + slot;
    let ix = tx - slot * WP - PW;
    let inside = tx < p.width && n < N && iy < H && ix < W;
    let base = ((n * CIN + g * cin_g + cb * 4u) * H + iy) * W + ix;
    var v = vec4f(0.0);
    for (var k = 0u; k < 4u; k++) {
        if (inside && cb * 4u + k < cin_g) {
            var at = base + k * H * W;
            if (TRANSPOSED) {
                at = transposed_weight_at(n, cb * 4u + k, iy, ix, H, W);
            }
            v[k] = f32(x[at]);
        }
    }
    if (SCALED && inside) {
        v *= gamma[n] / sqrt(run_var[n] + p.eps);
    }
    if (tx < p.width) {
        packed[row * p.stride + tx] = v;
    }
}
