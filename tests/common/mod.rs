//! Shared test support: the GPU (failing loudly without one), tolerances, f64 references.
#![allow(dead_code)]

pub mod cpu_graph;
pub mod fixtures;
pub mod images;
pub mod json;
pub mod onnx_files;
pub mod reference;
pub mod splitmix;

use convoy::Gpu;
use std::sync::OnceLock;

/// A test GPU from `builder`, filling new outputs with NaN so unwritten elements fail the
/// comparisons. No adapter is a test failure, never a skip.
pub fn open_gpu(builder: convoy::GpuBuilder) -> Gpu {
    match builder.poison_outputs(true).build() {
        Ok(g) => g,
        Err(e) => panic!("tests need a GPU adapter (lavapipe is enough): {e}"),
    }
}

/// The test GPU, opened once per test binary (see `open_gpu`).
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| open_gpu(Gpu::builder()))
}

/// The test GPU with every lane of the texture kernels making the fetches the lanes share
/// (`KernelPolicy::subgroup_operands` off): the other form of `shaders::operand_variant`; and
/// with the texture forward's shape in override constants (`shape_in_params` off), the other
/// form of conv2d_fwd_tex, so that the tests running both devices run both forms.
pub fn per_lane_gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    let g = GPU.get_or_init(|| open_gpu(Gpu::builder().subgroup_operands(false).shape_in_params(false)));
    assert!(!g.policy().subgroup_operands && !g.policy().shape_in_params);
    let d = gpu();
    assert!(
        d.policy().subgroup_operands
            || !d.policy().texture_operands
            || !d.info().features.contains(wgpu::Features::SUBGROUP),
        "a texture-kernel adapter with subgroups (lavapipe: 8 wide) shares fetches across them"
    );
    g
}

/// Two GPUs that differ in how kernels reduce over their workgroup: through subgroup
/// operations (lavapipe has subgroups, 8 wide; the policy keeps CPU drivers on trees by
/// default, so this one asks) and through workgroup-memory trees; for the kernels whose
/// reductions have a subgroup variant.
pub fn reduction_gpus() -> [&'static Gpu; 2] {
    static GPUS: OnceLock<[Gpu; 2]> = OnceLock::new();
    let [sub, trees] = GPUS.get_or_init(|| {
        // without subgroups (wgpu's GL backend) asking for them is refused: trees twice
        let on = subgroups_else_refused();
        [on, false].map(|on| open_gpu(Gpu::builder().subgroup_reductions(on)))
    });
    assert!(!trees.policy().subgroup_reductions);
    assert!(
        sub.policy().subgroup_reductions || !sub.info().features.contains(wgpu::Features::SUBGROUP),
        "an adapter with subgroups should reduce through them when asked"
    );
    [sub, trees]
}

/// Whether the test adapter has subgroups. Where it has none, checks the other half of the
/// contract: asking for subgroup reductions by name is refused with an error naming the feature.
pub fn subgroups_else_refused() -> bool {
    if gpu().info().features.contains(wgpu::Features::SUBGROUP) {
        return true;
    }
    let Err(err) = Gpu::builder().subgroup_reductions(true).build() else {
        panic!("subgroup reductions on an adapter without subgroups must be refused");
    };
    assert!(err.to_string().contains("subgroups"), "{err}");
    false
}

/// Whether `g` stores f16. Where its adapter lacks shader-f16 (wgpu's GL backend on llvmpipe,
/// for one), an f16 test checks the other half of the contract instead: an f16 request is refused
/// with an error naming the feature. On Vulkan every adapter convoy is tested on (lavapipe,
/// NVIDIA) has it, so there a missing feature fails rather than skips the f16 tests.
pub fn has_f16_else_refused(g: &Gpu) -> bool {
    if g.info().has_f16() {
        return true;
    }
    assert_ne!(
        g.info().backend,
        wgpu::Backend::Vulkan,
        "the f16 tests need shader-f16 on Vulkan (lavapipe has it): {}",
        g.info().name
    );
    let Err(err) = convoy::Tensor::from_slice_f16(g, &[1.0, 2.0], [2]) else {
        panic!("an f16 tensor without shader-f16 must be refused");
    };
    assert!(err.to_string().contains("shader-f16"), "{err}");
    println!("{}: no shader-f16, and f16 storage is refused: {err}", g.info().name);
    false
}

/// fp32 tolerance for kernels that sum up to a few thousand products: their rounding error is
/// about sqrt(terms) * 6e-8 relative to the magnitude of the sum, far below 1e-4.
pub const RTOL: f64 = 1e-4;

/// Max over elements of |got - want| / max(|want|, rms(want)): relative error per element, with
/// values near zero (cancellation) measured against the typical magnitude of the output.
pub fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let rms = (want.iter().map(|w| w * w).sum::<f64>() / want.len().max(1) as f64)
        .sqrt()
        .max(1e-30);
    got.iter()
        .zip(want)
        .map(|(&g, &w)| {
            let g = g as f64;
            if g.is_nan() != w.is_nan() {
                return f64::INFINITY;
            }
            if g.is_nan() {
                return 0.0;
            }
            (g - w).abs() / w.abs().max(rms)
        })
        .fold(0.0, f64::max)
}

#[track_caller]
/// The Python with PyTorch the reference tests run: `PYTHON` if set (a GPU machine whose
/// PyTorch lives in a virtual environment), else Debian's /usr/bin/python3 (python3-torch).
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    let e = rel_err(got, want);
    assert!(e <= tol, "{what}: relative error {e:.3e} > {tol:.1e}");
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}
