// The accumulators of the gpu family's large-tile implicit GEMMs (conv2d_fwd_mm,
// conv2d_bwd_data_mm through conv2d_mm_core, and conv2d_bwd_weight_mm) and their step; prepended
// to them by `kernels::shaders` (WGSL has no include). The kernel declares BM (128 or 64 rows
// per workgroup). A lane holds 8 rows x 8 columns (4 x 8 for BM = 64): two quads of 4 rows, 32
// apart (lo, hi), by two quads of 4 consecutive columns, 16 apart (l, r), in 16 vec4s named
// c<row><l|r>, every one indexed by constants only (a private array indexed by a loop variable
// goes to local memory on NVIDIA).
var<private> c0l: vec4f; var<private> c0r: vec4f;
var<private> c1l: vec4f; var<private> c1r: vec4f;
var<private> c2l: vec4f; var<private> c2r: vec4f;
var<private> c3l: vec4f; var<private> c3r: vec4f;
var<private> c4l: vec4f; var<private> c4r: vec4f;
var<private> c5l: vec4f; var<private> c5r: vec4f;
var<private> c6l: vec4f; var<private> c6r: vec4f;
var<private> c7l: vec4f; var<private> c7r: vec4f;

// One step of the reduction: the lane's row quads (al: lo, ah: hi, unread for BM = 64) times
// its column quads (bl, br), 64 multiply-adds (32 for BM = 64).
fn acc_step(al: vec4f, ah: vec4f, bl: vec4f, br: vec4f) {
    c0l += al.x * bl;
    c0r += al.x * br;
    c1l += al.y * bl;
    c1r += al.y * br;
    c2l += al.z * bl;
    c2r += al.z * br;
    c3l += al.w * bl;
    c3r += al.w * br;
    if (BM == 128u) {
        c4l += ah.x * bl;
        c4r += ah.x * br;
        c5l += ah.y * bl;
        c5r += ah.y * br;
        c6l += ah.z * bl;
        c6r += ah.z * br;
        c7l += ah.w * bl;
        c7r += ah.w * br;
    }
}
