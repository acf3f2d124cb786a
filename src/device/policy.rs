//! `KernelPolicy`: the one place that decides, from what the adapter reports, which family of
//! kernels every launcher uses. A CPU driver (lavapipe, SwiftShader, WARP) runs a workgroup as
//! SIMD lanes of a CPU core: a storage-buffer load whose address differs per lane becomes a loop
//! over the lanes, while a texel fetch is vectorised, so its family reads the large conv operands
//! through textures, packed by a small kernel first. A GPU coalesces storage loads across a warp;
//! its family keeps them in storage buffers.

use super::info::GpuInfo;
use crate::error::{Error, Result};
use std::fmt;

/// Which kernels run: the ones shaped for CPU drivers or for GPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelFamily {
    Cpu,
    Gpu,
}

impl KernelFamily {
    /// `CONVOY_KERNELS`: `cpu` or `gpu` forces a family; unset or `auto` lets the policy choose.
    pub fn from_env() -> Result<Option<KernelFamily>> {
        match std::env::var("CONVOY_KERNELS") {
            Err(_) => Ok(None),
            Ok(v) => KernelFamily::parse(&v),
        }
    }

    pub fn parse(v: &str) -> Result<Option<KernelFamily>> {
        match v.to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(None),
            "cpu" => Ok(Some(KernelFamily::Cpu)),
            "gpu" => Ok(Some(KernelFamily::Gpu)),
            other => Err(Error::arg(
                "Gpu",
                "CONVOY_KERNELS",
                format!("'{other}' is not one of cpu, gpu, auto"),
            )),
        }
    }
}

/// Whether the adapter can run the subgroup reductions: it has subgroups, natively.
pub fn can_reduce_in_subgroups(info: &GpuInfo) -> bool {
    has_subgroups(&info.features)
}

/// Whether `features` include subgroups convoy can use (natively: the browser's are not
/// enabled by wgpu's WebGPU backend).
pub(crate) fn has_subgroups(features: &wgpu::Features) -> bool {
    features.contains(wgpu::Features::SUBGROUP) && !cfg!(target_arch = "wasm32")
}

/// Rows a texture kernel shares across a subgroup (conv2d_fwd_tex's OCB, gemm_tex's TM at most):
/// the narrowest subgroup that can serve them.
const SHARED_ROWS: u32 = 8;

/// Whether the texture kernels can share their common fetches across subgroups: textures, and
/// native subgroups of at least `SHARED_ROWS` lanes.
pub fn can_share_operands(info: &GpuInfo, texture_operands: bool) -> bool {
    texture_operands && can_reduce_in_subgroups(info) && info.simd_min_width >= SHARED_ROWS
}

/// `CONVOY_SUBGROUPS`: 0 turns subgroup operations off (reductions on workgroup-memory trees,
/// every lane fetching its texels: a driver's subgroup bug, or a comparison), 1 asks for
/// subgroup reductions where the adapter can (a CPU driver included); unset lets the policy
/// choose.
pub fn subgroups_from_env() -> Result<Option<bool>> {
    match std::env::var("CONVOY_SUBGROUPS").as_deref() {
        Err(_) | Ok("") => Ok(None),
        Ok("1") => Ok(Some(true)),
        Ok("0") => Ok(Some(false)),
        Ok(other) => Err(Error::arg(
            "Gpu",
            "CONVOY_SUBGROUPS",
            format!("'{other}' is not 0 or 1"),
        )),
    }
}

/// `CONVOY_TRUSTED`: 1 builds the audited kernels without naga's runtime checks, 0 keeps
/// every module checked; unset lets the policy choose (unchecked on GPUs, checked on CPU
/// drivers).
pub fn trusted_from_env() -> Result<Option<bool>> {
    match std::env::var("CONVOY_TRUSTED").as_deref() {
        Err(_) | Ok("") => Ok(None),
        Ok("1") => Ok(Some(true)),
        Ok("0") => Ok(Some(false)),
        Ok(other) => Err(Error::arg("Gpu", "CONVOY_TRUSTED", format!("'{other}' is not 0 or 1"))),
    }
}

/// Software drivers by the names they report; a browser's WebGPU adapter has no device type,
/// but SwiftShader (its fallback adapter) names itself.
const CPU_DRIVER_NAMES: &[&str] = &[
    "llvmpipe",
    "lavapipe",
    "swiftshader",
    "softpipe",
    "basic render driver",
    "warp",
];

/// Output pixels a CPU driver's tuner times each conv candidate on (`tune_sample_pixels`): 4
/// workgroups of 64 lanes x 4 pixels, two per thread of a 2-core driver, so each candidate's
/// workgroup shape is still timed as it runs at full size. 4,096 cost a ResNet-18 training
/// step (batch 8, 224x224) 42 s of tuning against a 21 s step; 1,024 cost 22 s (BENCHMARKS.md,
/// "The tuner's first-use cost after the texture input gradient").
const TUNE_SAMPLE_PIXELS: usize = 1024;

/// The kernel choices of one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelPolicy {
    pub family: KernelFamily,
    /// Why this family: the device type, the driver's name, or forced (CONVOY_KERNELS or
    /// `GpuBuilder::kernels`).
    pub reason: String,
    /// Conv operands read through rgba32float textures (the CPU family).
    pub texture_operands: bool,
    /// The largest 2D texture side the operand textures may use (the device's limit; tests
    /// lower it to exercise the layouts that fold a batch into several bands).
    pub max_texture_side: u32,
    /// The most bytes an operand texture's staging buffer holds (the device's storage-binding
    /// limit; tests lower it so that packing runs in bands of rows).
    pub max_staging_bytes: u64,
    /// The adapter is a CPU driver, whichever family is forced: what the tuner's defaults
    /// follow (`tune_by_default`, `tune_sample_pixels`, `Clock::for_timing`).
    pub cpu_driver: bool,
    /// Workgroup reductions (batch-norm statistics and backward sums, the loss, softmax, bias
    /// gradients) through subgroup operations: by default on a GPU (not a CPU driver, whichever
    /// family is forced) whose adapter has subgroups, natively (the browser's subgroup builtins
    /// are not yet relied on); CONVOY_SUBGROUPS=0|1 or `GpuBuilder::subgroup_reductions` decide
    /// otherwise where the adapter can. Else trees through workgroup memory. A CPU driver keeps
    /// the trees by default: lavapipe's training steps measured no faster with subgroups, and the
    /// trees keep its summation order (a MobileNetV2 fusion test sits at a bifurcation that the
    /// order of one reduction flips).
    pub subgroup_reductions: bool,
    /// The texture kernels' fetches that every lane makes at the same texel (conv2d_fwd_tex's
    /// weights, the weight gradient's dy, gemm_tex's A) made once per subgroup lane and shared
    /// by shuffles: by default wherever textures are and native subgroups of 8+ lanes (why:
    /// BENCHMARKS.md, "What a load costs on lavapipe, and the texture kernels rebuilt on it").
    pub subgroup_operands: bool,
    /// Kernels audited as bounded by construction (`Shader::trusted`: every index within its
    /// array once the launcher has validated the shapes) are built without naga's runtime checks
    /// (index clamps on workgroup and private arrays, bounded loops): by default on a GPU in a
    /// native build, where those checks cost 10-15% of a conv kernel's instructions
    /// (BENCHMARKS.md); never in the browser; CONVOY_TRUSTED=0|1 or `GpuBuilder::trusted_modules`
    /// decide otherwise (a CPU driver keeps the checked modules unless asked).
    pub trusted_modules: bool,
    /// Lanes of a workgroup that walks one run of memory on its own: a per-channel reduction
    /// (batch-norm statistics and backward sums, bias gradients: one workgroup per channel, or
    /// per split of one) or a chunk of the optimizer's update. 256 in the gpu family; one SIMD
    /// vector in the cpu family (8 on lavapipe), where a workgroup's barriers and loops switch
    /// between its vectors' coroutines and cost more than the work: lavapipe ran ResNet-50's
    /// batch-norm backward sums 10x faster at 8 lanes than at 256, and its optimizer update
    /// 2-3x faster (BENCHMARKS.md).
    pub run_lanes: u32,
    /// The texture forward (conv2d_fwd_tex) reads its geometry and maps' sizes from its Params
    /// (one pipeline for every conv with the same tile, epilogue and statistics) where they
    /// would otherwise be override constants (a pipeline per shape): by default wherever the
    /// texture kernels run, since lavapipe builds each distinct pipeline of that kernel for
    /// 60-90 ms and a ResNet-18 training step's 29 of them were most of its compile; placing a
    /// pixel then costs a reciprocal multiply and one correction where a constant divisor cost
    /// a multiply and shifts (BENCHMARKS.md). `GpuBuilder::shape_in_params` decides otherwise.
    pub shape_in_params: bool,
}

/// What the user or the environment asks of the policy over what the adapter suggests: the
/// `GpuBuilder` settings and CONVOY_KERNELS / CONVOY_SUBGROUPS, read once by the builder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// The kernel family (CONVOY_KERNELS, `GpuBuilder::kernels`).
    pub family: Option<KernelFamily>,
    /// Subgroup operations (CONVOY_SUBGROUPS, `GpuBuilder::subgroup_reductions`): true asks for
    /// subgroup reductions where the adapter can; false turns every subgroup operation off, the
    /// texture kernels' shared fetches included (a driver's subgroup bug, or a comparison).
    pub subgroups: Option<bool>,
    /// The texture kernels' shared fetches (`GpuBuilder::subgroup_operands`), where they can be.
    pub subgroup_operands: Option<bool>,
    /// A smaller largest operand-texture side than the device's (tests of the banded layouts).
    pub max_texture_side: Option<u32>,
    /// A smaller operand staging buffer than the device's binding limit (tests of banded
    /// packing).
    pub max_staging_bytes: Option<u64>,
    /// Audited kernels without naga's runtime checks (CONVOY_TRUSTED,
    /// `GpuBuilder::trusted_modules`); never in the browser.
    pub trusted_modules: Option<bool>,
    /// The texture forward's shape in its Params (`GpuBuilder::shape_in_params`).
    pub shape_in_params: Option<bool>,
}

impl Overrides {
    /// Only the kernel family forced.
    pub fn family(family: KernelFamily) -> Overrides {
        Overrides {
            family: Some(family),
            ..Overrides::default()
        }
    }
}

impl KernelPolicy {
    /// The policy for the adapter `info` describes, with what `overrides` asks applied where the
    /// adapter can do it: the one place a device's kernel policy is decided.
    pub fn choose(info: &GpuInfo, overrides: &Overrides) -> KernelPolicy {
        let mut p = KernelPolicy::suggested(info, overrides.family);
        if let Some(side) = overrides.max_texture_side {
            p.max_texture_side = p.max_texture_side.min(side);
        }
        if let Some(bytes) = overrides.max_staging_bytes {
            p.max_staging_bytes = p.max_staging_bytes.min(bytes);
        }
        if let Some(on) = overrides.subgroups {
            p.subgroup_reductions = on && can_reduce_in_subgroups(info);
            // off turns every subgroup operation off; on leaves the operand sharing as it is
            p.subgroup_operands &= on;
        }
        if let Some(on) = overrides.subgroup_operands {
            p.subgroup_operands = on && can_share_operands(info, p.texture_operands);
        }
        if let Some(on) = overrides.trusted_modules {
            p.trusted_modules = on && !cfg!(target_arch = "wasm32");
        }
        if let Some(on) = overrides.shape_in_params {
            p.shape_in_params = on;
        }
        p
    }

    /// What the adapter suggests, with the family `forced` names if any.
    fn suggested(info: &GpuInfo, forced: Option<KernelFamily>) -> KernelPolicy {
        let name = format!("{} {}", info.name, info.driver).to_ascii_lowercase();
        let (device, reason) = if info.device_type == wgpu::DeviceType::Cpu {
            (KernelFamily::Cpu, "device type Cpu".to_string())
        } else if let Some(n) = CPU_DRIVER_NAMES.iter().find(|n| name.contains(*n)) {
            (KernelFamily::Cpu, format!("a CPU driver ({n})"))
        } else {
            (KernelFamily::Gpu, format!("device type {:?}", info.device_type))
        };
        let (family, reason) = match forced {
            Some(f) => (f, "forced by CONVOY_KERNELS or GpuBuilder::kernels".to_string()),
            None => (device, reason),
        };
        let texture_operands = family == KernelFamily::Cpu;
        KernelPolicy {
            family,
            reason,
            texture_operands,
            subgroup_operands: can_share_operands(info, texture_operands),
            max_texture_side: info.limits.max_texture_dimension_2d,
            max_staging_bytes: info.limits.max_storage_buffer_binding_size,
            cpu_driver: device == KernelFamily::Cpu,
            subgroup_reductions: device == KernelFamily::Gpu && can_reduce_in_subgroups(info),
            trusted_modules: device == KernelFamily::Gpu && !cfg!(target_arch = "wasm32"),
            run_lanes: match family {
                KernelFamily::Cpu => info.simd_width.clamp(4, 64).next_power_of_two(),
                KernelFamily::Gpu => 256,
            },
            shape_in_params: texture_operands,
        }
    }

    /// Whether the kernel tuner runs unless told otherwise (`CONVOY_TUNE`, `GpuBuilder::tune`):
    /// on a GPU, where tile choice moves a kernel by integer factors and timing a candidate
    /// costs microseconds; not on a CPU driver (whichever family is forced), where timing
    /// every candidate of every new shape costs seconds, nor in the browser, which has no
    /// synchronous clock to time with.
    pub fn tune_by_default(&self) -> bool {
        !self.cpu_driver && !cfg!(target_arch = "wasm32")
    }

    /// The tuner times a conv's candidates on the first images of the batch, enough for this
    /// many output pixels, where time follows the work (a CPU driver: timing at batch 8 would
    /// cost 8x for the same ranking); on a GPU, the whole batch (a slice would not fill it, and
    /// occupancy is what the tiles trade).
    pub fn tune_sample_pixels(&self) -> Option<usize> {
        self.cpu_driver.then_some(TUNE_SAMPLE_PIXELS)
    }
}

impl fmt::Display for KernelPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = match self.family {
            KernelFamily::Cpu => "cpu",
            KernelFamily::Gpu => "gpu",
        };
        write!(f, "kernels: {family} family ({})", self.reason)?;
        if self.texture_operands {
            write!(
                f,
                "; conv operands through rgba32float textures (sides up to {})",
                self.max_texture_side
            )?;
        } else {
            write!(f, "; conv operands from storage buffers")?;
        }
        let tuning = if self.tune_by_default() {
            "on unless CONVOY_TUNE=0"
        } else {
            "off unless CONVOY_TUNE=1"
        };
        let reductions = match self.subgroup_reductions {
            true => "subgroup operations",
            false => "workgroup-memory trees",
        };
        if self.subgroup_operands {
            write!(f, "; common texel fetches shared across subgroups")?;
        }
        write!(
            f,
            "; tuner {tuning}; reductions through {reductions}; {} lanes per channel or chunk",
            self.run_lanes
        )?;
        if self.trusted_modules {
            write!(f, "; audited kernels without runtime checks")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> Overrides {
        Overrides::default()
    }

    fn info(name: &str, device_type: wgpu::DeviceType) -> GpuInfo {
        GpuInfo {
            name: name.into(),
            backend: wgpu::Backend::Vulkan,
            device_type,
            driver: String::new(),
            limits: wgpu::Limits::default(),
            features: wgpu::Features::empty(),
            simd_width: 32,
            simd_min_width: 32,
            cooperative_matrix: Vec::new(),
            cooperative_f16: false,
            cooperative_emulated: false,
        }
    }

    #[test]
    fn subgroup_reductions_on_gpus_with_subgroups_and_not_on_cpu_drivers() {
        let mut h100 = info("NVIDIA H100 80GB HBM3", wgpu::DeviceType::DiscreteGpu);
        assert!(!KernelPolicy::choose(&h100, &none()).subgroup_reductions);
        h100.features = wgpu::Features::SUBGROUP;
        assert!(KernelPolicy::choose(&h100, &none()).subgroup_reductions);
        let mut lavapipe = info("llvmpipe (LLVM 15.0.6, 256 bits)", wgpu::DeviceType::Cpu);
        lavapipe.features = wgpu::Features::SUBGROUP;
        assert!(!KernelPolicy::choose(&lavapipe, &none()).subgroup_reductions);
        // forcing the gpu family on a CPU driver keeps its trees
        assert!(!KernelPolicy::choose(&lavapipe, &Overrides::family(KernelFamily::Gpu)).subgroup_reductions);
    }

    #[test]
    fn texture_kernels_share_fetches_across_subgroups_of_eight_or_more() {
        let mut lavapipe = info("llvmpipe (LLVM 15.0.6, 256 bits)", wgpu::DeviceType::Cpu);
        lavapipe.simd_min_width = 8;
        assert!(
            !KernelPolicy::choose(&lavapipe, &none()).subgroup_operands,
            "no subgroups"
        );
        lavapipe.features = wgpu::Features::SUBGROUP;
        assert!(KernelPolicy::choose(&lavapipe, &none()).subgroup_operands);
        // the gpu family has no texture kernels; 4-wide subgroups cannot serve 8 rows
        assert!(!KernelPolicy::choose(&lavapipe, &Overrides::family(KernelFamily::Gpu)).subgroup_operands);
        lavapipe.simd_min_width = 4;
        assert!(!KernelPolicy::choose(&lavapipe, &none()).subgroup_operands);
    }

    #[test]
    fn a_discrete_gpu_gets_the_gpu_family_and_lavapipe_the_cpu_family() {
        let h100 = KernelPolicy::choose(&info("NVIDIA H100 80GB HBM3", wgpu::DeviceType::DiscreteGpu), &none());
        assert_eq!(h100.family, KernelFamily::Gpu);
        assert!(!h100.texture_operands);
        assert!(h100.tune_by_default());
        assert_eq!(h100.tune_sample_pixels(), None);
        let lavapipe = KernelPolicy::choose(
            &info("llvmpipe (LLVM 15.0.6, 256 bits)", wgpu::DeviceType::Cpu),
            &none(),
        );
        assert_eq!(lavapipe.family, KernelFamily::Cpu);
        assert!(lavapipe.texture_operands);
        assert!(!lavapipe.tune_by_default());
        assert!(lavapipe.tune_sample_pixels().is_some());
        // a browser adapter has no device type; SwiftShader names itself
        let swiftshader = KernelPolicy::choose(&info("google swiftshader", wgpu::DeviceType::Other), &none());
        assert_eq!(swiftshader.family, KernelFamily::Cpu);
        let browser_gpu = KernelPolicy::choose(&info("nvidia ampere", wgpu::DeviceType::Other), &none());
        assert_eq!(browser_gpu.family, KernelFamily::Gpu);
    }

    #[test]
    fn convoy_kernels_forces_a_family() {
        let forced = KernelPolicy::choose(
            &info("llvmpipe", wgpu::DeviceType::Cpu),
            &Overrides::family(KernelFamily::Gpu),
        );
        assert_eq!(forced.family, KernelFamily::Gpu);
        // forcing the gpu family onto a CPU driver does not make timing candidates cheap there
        assert!(!forced.tune_by_default());
        let forced_cpu = KernelPolicy::choose(
            &info("NVIDIA H100", wgpu::DeviceType::DiscreteGpu),
            &Overrides::family(KernelFamily::Cpu),
        );
        assert!(forced_cpu.tune_by_default());
        assert_eq!(KernelFamily::parse("CPU").unwrap(), Some(KernelFamily::Cpu));
        assert_eq!(KernelFamily::parse("auto").unwrap(), None);
        assert!(KernelFamily::parse("tpu").is_err());
    }

    #[test]
    fn overrides_apply_where_the_adapter_can() {
        let mut lavapipe = info("llvmpipe (LLVM 15.0.6, 256 bits)", wgpu::DeviceType::Cpu);
        lavapipe.simd_min_width = 8;
        lavapipe.features = wgpu::Features::SUBGROUP;
        let base = KernelPolicy::choose(&lavapipe, &none());
        assert!(base.subgroup_operands && !base.subgroup_reductions);
        // subgroups asked for: reductions on, the operand sharing left as it was
        let on = Overrides {
            subgroups: Some(true),
            ..none()
        };
        let p = KernelPolicy::choose(&lavapipe, &on);
        assert!(p.subgroup_reductions && p.subgroup_operands);
        // subgroups off: every subgroup operation off
        let off = Overrides {
            subgroups: Some(false),
            ..none()
        };
        let p = KernelPolicy::choose(&lavapipe, &off);
        assert!(!p.subgroup_reductions && !p.subgroup_operands);
        // operand sharing alone off, and asked for where the adapter cannot (no subgroups)
        let per_lane = Overrides {
            subgroup_operands: Some(false),
            ..none()
        };
        assert!(!KernelPolicy::choose(&lavapipe, &per_lane).subgroup_operands);
        let mut plain = lavapipe.clone();
        plain.features = wgpu::Features::empty();
        let shared = Overrides {
            subgroup_operands: Some(true),
            subgroups: Some(true),
            ..none()
        };
        let p = KernelPolicy::choose(&plain, &shared);
        assert!(!p.subgroup_operands && !p.subgroup_reductions);
        // limits only ever lowered
        let small = Overrides {
            max_texture_side: Some(40),
            max_staging_bytes: Some(1 << 40),
            ..none()
        };
        let p = KernelPolicy::choose(&lavapipe, &small);
        assert_eq!(p.max_texture_side, 40);
        assert_eq!(p.max_staging_bytes, lavapipe.limits.max_storage_buffer_binding_size);
    }
}
