// AdamW, PyTorch's rule: p *= 1 - lr * wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
// p -= lr * (m / bc1) / (sqrt(v / bc2) + eps), with bc1 = 1 - b1^t, bc2 = 1 - b2^t from the host.
// A lane takes PACK consecutive elements (the elementwise_lanes prelude: 4 in vec4s where the
// tensor's size is a multiple of 4).

override WG: u32 = 256u;

struct Params { total: u32, group: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> hyper: array<f32>;  // lr, _, wd, b1, b2, eps, bc1, bc2
@group(0) @binding(2) var<storage, read> grad: array<FV>;
@group(0) @binding(3) var<storage, read_write> param: array<FV>;
@group(0) @binding(4) var<storage, read_write> m: array<FV>;
@group(0) @binding(5) var<storage, read_write> v: array<FV>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.total / PACK) {
        return;
    }
    let h = p.group * 8u;
    let lr = hyper[h];
    let wd = hyper[h + 2u];
    let b1 = hyper[h + 3u];
    let b2 = hyper[h + 4u];
    let eps = hyper[h + 5u];
    let bc1 = hyper[h + 6u];
    let bc2 = hyper[h + 7u];
    let g = grad[i];
    let mi = b1 * m[i] + (1.0 - b1) * g;
    let vi = b2 * v[i] + (1.0 - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    let pi = param[i] * (1.0 - lr * wd);
    param[i] = pi - lr * (mi / bc1) / (sqrt(vi / bc2) + eps);
}
