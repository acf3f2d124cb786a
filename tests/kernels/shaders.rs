//! Each kernel parses and validates with naga, the compiler wgpu itself uses.

use convoy::internals::kernels::shaders::{
    cooperative_variant, f16_variant, has_cooperative_variant, has_f16_variant, has_subgroup_variant, has_vec4_variant,
    subgroup_variant, vec4_variant, ALL, COOPERATIVE, PRELUDES, VARIANT_PRELUDES,
};

#[test]
fn every_shader_validates_with_naga() {
    let mut failures = Vec::new();
    // each kernel, the vec4 variant of the per-channel elementwise kernels, the f16-storage
    // variant of those that have one, and the subgroup variant of those that reduce over their
    // workgroup (of the other variants too, where both apply)
    let vec4s: Vec<_> = ALL
        .iter()
        .filter(|s| has_vec4_variant(s))
        .map(|s| vec4_variant(s).unwrap())
        .collect();
    // batch-norm apply, backward data and backward sums, and add (the optimizer's update
    // kernels generate their vec4 forms: kernels::optim)
    assert!(vec4s.len() >= 4, "vec4 variants: {}", vec4s.len());
    let halves: Vec<_> = ALL
        .iter()
        .copied()
        .chain(vec4s.iter().copied())
        .filter(|s| has_f16_variant(s))
        .map(|s| f16_variant(s).unwrap())
        .collect();
    assert!(halves.len() >= 9, "f16 variants: {}", halves.len());
    let subgroups: Vec<_> = ALL
        .iter()
        .copied()
        .chain(halves.iter().copied())
        .chain(vec4s.iter().copied())
        .filter(|s| has_subgroup_variant(s))
        .map(|s| subgroup_variant(s).unwrap())
        .collect();
    assert!(subgroups.len() >= 8, "subgroup variants: {}", subgroups.len());
    // the cooperative-matrix variants of the large-tile kernels, on matrix units and emulated
    let coops: Vec<_> = COOPERATIVE
        .iter()
        .flat_map(|s| [false, true].map(|emulated| cooperative_variant(s, emulated).unwrap()))
        .collect();
    assert_eq!(
        ALL.iter().filter(|s| has_cooperative_variant(s)).count(),
        COOPERATIVE.len()
    );
    for s in ALL
        .iter()
        .copied()
        .chain(coops)
        .chain(vec4s)
        .chain(halves)
        .chain(subgroups)
    {
        let module = match naga::front::wgsl::parse_str(s.source) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{}: {}", s.name, e.emit_to_string(s.source)));
                continue;
            }
        };
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
        if let Err(e) = v.validate(&module) {
            failures.push(format!("{}: {}", s.name, e.emit_to_string(s.source)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shader_file_is_registered() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    for entry in std::fs::read_dir(dir).expect("shaders/ exists") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .to_string_lossy()
            .replace(".wgsl", "");
        assert!(
            ALL.iter().any(|s| s.name == name)
                || PRELUDES.contains(&name.as_str())
                || VARIANT_PRELUDES.contains(&name.as_str()),
            "shaders/{name}.wgsl is neither in kernels::shaders::ALL nor a prelude of one"
        );
    }
}

/// The kernels no test machine runs as they are (cooperative matrices: lavapipe has none; the
/// tests run their emulated form) still compile to SPIR-V, overrides resolved (both tile sizes,
/// the statistics on), as wgpu's Vulkan backend does before the driver sees them, and their
/// products are the matrix units' (OpCooperativeMatrixMulAddKHR) while the emulated form has
/// none; their results are checked on a GPU that has them (tests/kernels/coop.rs).
#[test]
fn cooperative_kernels_compile_to_spirv() {
    let muladds = |words: &[u32]| {
        // OpCooperativeMatrixMulAddKHR (4459), instruction by instruction past the header
        let (mut at, mut n) = (5, 0);
        while at < words.len() {
            n += usize::from(words[at] & 0xffff == 4459);
            at += (words[at] >> 16).max(1) as usize;
        }
        n
    };
    for kernel in COOPERATIVE {
        for emulated in [false, true] {
            let s = cooperative_variant(kernel, emulated).unwrap();
            let module = naga::front::wgsl::parse_str(s.source).unwrap();
            let info =
                naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
                    .validate(&module)
                    .unwrap();
            for bm in [64.0, 128.0] {
                let mut constants = naga::back::PipelineConstants::default();
                constants.insert("BM".into(), bm);
                if s.source.contains("override STATS") {
                    constants.insert("STATS".into(), 1.0);
                }
                let (module, info) =
                    naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
                        .unwrap_or_else(|e| panic!("{}: overrides: {e}", s.name));
                let options = naga::back::spv::Options {
                    lang_version: (1, 3),
                    ..Default::default()
                };
                let pipeline = naga::back::spv::PipelineOptions {
                    shader_stage: naga::ShaderStage::Compute,
                    entry_point: "main".into(),
                };
                let words = naga::back::spv::write_vec(&module, &info, &options, Some(&pipeline))
                    .unwrap_or_else(|e| panic!("{}: SPIR-V: {e}", s.name));
                let n = muladds(&words);
                match emulated {
                    false => assert!(n >= 1, "{} BM {bm}: no cooperative multiply-add in the SPIR-V", s.name),
                    true => assert_eq!(n, 0, "{} BM {bm}: the emulated form on matrix units", s.name),
                }
            }
        }
    }
}

/// Pipelines build on worker threads (natively, off GL) while a plan lowers; a build that fails
/// is still an error, never a panic nor a silent skip: from the pipeline itself and from
/// `finish_pipelines` (where a plan's compile stops), and for a dispatch already made with it,
/// from the next sync (the device's fault) instead of a result.
#[test]
fn a_failed_pipeline_build_is_an_error() {
    use convoy::internals::device::{grid_1d, Dispatch};
    use convoy::internals::kernels::shaders::SPLIT_K_REDUCE;
    use convoy::{Gpu, Tensor};
    // a fresh device: the fault below stays with it
    let g = crate::common::open_gpu(Gpu::builder());
    // a workgroup of 0 invocations: the driver-facing pipeline is invalid, naga's module is not
    let bad = [("WG", 0.0)];
    let Ok(p) = g.pipeline(&SPLIT_K_REDUCE, &bad) else {
        // built in place (the GL backend): the error came at once
        assert!(g.pipeline(&SPLIT_K_REDUCE, &bad).is_err());
        return;
    };
    let e = g.finish_pipelines().unwrap_err().to_string();
    assert!(e.contains("split_k_reduce"), "{e}");
    assert!(p.compute().is_err());
    let part = Tensor::from_slice(&g, &[1.0f32, 2.0], [2]).unwrap();
    let y = Tensor::zeros(&g, [1]).unwrap();
    let d = Dispatch::new(&g, p, &[1, 2], &[part.buffer(), y.buffer()], grid_1d(1)).unwrap();
    g.run(&[d]);
    let e = g.sync().unwrap_err().to_string();
    assert!(e.contains("split_k_reduce"), "{e}");
    assert!(y.to_vec().is_err(), "a readback after the fault");
}

/// CONVOY_BUILD_THREADS: a positive number of threads, else refused by name with the value.
#[test]
fn convoy_build_threads_is_read_and_checked() {
    let info = |v: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
            .arg("info")
            .env("CONVOY_BUILD_THREADS", v)
            .output()
            .unwrap()
    };
    for bad in ["0", "two", "-1"] {
        let o = info(bad);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("CONVOY_BUILD_THREADS") && err.contains(&format!("'{bad}'")),
            "{bad}: {err}"
        );
    }
    for good in ["1", "3"] {
        assert!(info(good).status.success(), "{good}");
    }
}

/// The driver's pipeline cache goes to the file asked for, in convoy's format, after a compile;
/// a damaged file is ignored with a warning naming it, and rewritten whole.
#[test]
fn the_pipeline_cache_file_is_written_and_a_damaged_one_ignored() {
    use convoy::PipelineCacheFile;
    let dir = std::env::temp_dir().join(format!("convoy-pipeline-cache-{}", std::process::id()));
    let path = dir.join("nested/pipelines.bin");
    let open = || {
        convoy::GpuBuilder::default()
            .pipeline_cache(PipelineCacheFile::At(path.clone()))
            .build()
    };
    let gpu = open().unwrap();
    if gpu.pipeline_cache_file().is_none() {
        // only Vulkan keeps a pipeline cache (e.g. CONVOY_BACKEND=gl runs this test too)
        assert_ne!(gpu.info().backend, wgpu::Backend::Vulkan);
        return;
    }
    assert_eq!(gpu.pipeline_cache_file(), Some(path.as_path()));
    let run = |gpu: &convoy::Gpu| {
        let a = convoy::Tensor::from_slice(gpu, &[1.0, -2.0, 3.0, 0.5], [4]).unwrap();
        let y = convoy::ops::relu(gpu, &a).unwrap();
        gpu.finish_pipelines().unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![1.0, 0.0, 3.0, 0.5]);
    };
    run(&gpu);
    let bytes = std::fs::read(&path).expect("the cache file is written when pipelines were built");
    assert!(
        bytes.starts_with(b"convoy-pipelines"),
        "{:?}",
        &bytes[..bytes.len().min(16)]
    );
    drop(gpu);
    // a damaged file: the device still opens and computes, and the file is rewritten good
    let mut damaged = bytes.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    std::fs::write(&path, &damaged).unwrap();
    let gpu = open().unwrap();
    run(&gpu);
    let rewritten = std::fs::read(&path).unwrap();
    assert!(rewritten.starts_with(b"convoy-pipelines") && rewritten != damaged);
    let _ = std::fs::remove_dir_all(&dir);
}
