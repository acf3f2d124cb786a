// SGD with momentum, weight decay and optional Nesterov, exactly PyTorch's rule (dampening 0):
// d = g + wd * p;  buf = momentum * buf + d;  d = nesterov ? d + momentum * buf : buf;
// p -= lr * d.  (PyTorch starts buf at d on the first step: the same as momentum * 0 + d.)
// Hyperparameters come from a buffer the host rewrites per step, so schedules never recompile.
// A lane takes PACK consecutive elements (the elementwise_lanes prelude: 4 in vec4s where the
// tensor's size is a multiple of 4).

override WG: u32 = 256u;
override NESTEROV: bool = false;

struct Params { total: u32, group: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> hyper: array<f32>;       // 8 per group: lr, momentum, wd, ...
@group(0) @binding(2) var<storage, read> grad: array<FV>;
@group(0) @binding(3) var<storage, read_write> param: array<FV>;
@group(0) @binding(4) var<storage, read_write> buf: array<FV>;   // momentum buffer

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.total / PACK) {
        return;
    }
    let h = p.group * 8u;
    let lr = hyper[h];
    let momentum = hyper[h + 1u];
    let wd = hyper[h + 2u];
    var d = grad[i] + wd * param[i];
    if (momentum != 0.0) {
        let b = momentum * buf[i] + d;
        buf[i] = b;
        if (NESTEROV) {
            d = d + momentum * b;
        } else {
            d = b;
        }
    }
    param[i] = param[i] - lr * d;
}
