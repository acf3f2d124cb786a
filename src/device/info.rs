//! `GpuInfo`: what the opened device is and offers. Its own file because the policy, the pipeline
//! cache and the texture code read it as well as the device itself, and none of them should need
//! gpu.rs for a plain description.

use std::fmt;

/// What the opened device is and what it offers; printed by `convoy info`.
#[derive(Clone, Debug)]
pub struct GpuInfo {
    pub name: String,
    pub backend: wgpu::Backend,
    pub device_type: wgpu::DeviceType,
    pub driver: String,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// The widest SIMD group (subgroup) the adapter may run invocations in: 8 on lavapipe
    /// (256-bit vectors), 32 on NVIDIA, up to 64 on AMD; wgpu's bound (128) where unknown.
    pub simd_width: u32,
    /// The narrowest subgroup the adapter may run invocations in (8 on lavapipe; 4 where unknown).
    pub simd_min_width: u32,
    /// The adapter's cooperative-matrix (tensor core) configurations, as "MxNxK A->C", whether
    /// or not wgpu can enable them (it asks for 8x8x8 f32): recorded so that a GPU run says what
    /// a cooperative-matrix kernel could use there.
    pub cooperative_matrix: Vec<String>,
    /// The device enabled wgpu's experimental cooperative matrices with a 16x16x16 f16 x f16 ->
    /// f32 configuration and 32-wide subgroups: the large-tile conv kernels of the gpu family
    /// have cooperative variants (`kernels::conv::cooperative`). CONVOY_COOP_MATRIX=0 leaves
    /// them off.
    pub cooperative_f16: bool,
    /// The cooperative variants run with emulated fragments instead (a device without matrix
    /// units, opened with CONVOY_COOP_MATRIX=emulate or `GpuBuilder::emulate_cooperative_matrix`:
    /// for tests).
    pub cooperative_emulated: bool,
}

impl GpuInfo {
    /// The description of `device`, opened on `adapter`; `cooperative_f16` where convoy asked
    /// for cooperative matrices.
    pub(super) fn of(adapter: &wgpu::Adapter, device: &wgpu::Device, cooperative_f16: bool, emulated: bool) -> GpuInfo {
        let ainfo = adapter.get_info();
        GpuInfo {
            name: ainfo.name.clone(),
            backend: ainfo.backend,
            device_type: ainfo.device_type,
            driver: format!("{} {}", ainfo.driver, ainfo.driver_info).trim().to_string(),
            limits: device.limits(),
            features: device.features(),
            simd_width: ainfo.subgroup_max_size,
            simd_min_width: ainfo.subgroup_min_size,
            cooperative_matrix: adapter
                .cooperative_matrix_properties()
                .iter()
                .map(|p| {
                    format!(
                        "{}x{}x{} {:?}->{:?}",
                        p.m_size, p.n_size, p.k_size, p.ab_type, p.cr_type
                    )
                })
                .collect(),
            cooperative_f16: cooperative_f16
                && device
                    .features()
                    .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX),
            cooperative_emulated: emulated && device.features().contains(wgpu::Features::SHADER_F16),
        }
    }

    /// Whether the cooperative-matrix kernels run here, on matrix units or emulated.
    pub fn cooperative_kernels(&self) -> bool {
        self.cooperative_f16 || self.cooperative_emulated
    }

    pub fn has_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }
}

impl fmt::Display for GpuInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.limits;
        writeln!(f, "adapter: {} ({:?}, {:?})", self.name, self.backend, self.device_type)?;
        writeln!(f, "driver: {}", self.driver)?;
        writeln!(
            f,
            "limits: storage binding {} MiB, buffer {} MiB, workgroup storage {} KiB, {} invocations/workgroup, {} workgroups/dim",
            l.max_storage_buffer_binding_size / (1 << 20),
            l.max_buffer_size / (1 << 20),
            l.max_compute_workgroup_storage_size / 1024,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroups_per_dimension
        )?;
        writeln!(
            f,
            "features: shader-f16 {}, subgroups {} (up to {} wide), timestamps {}",
            yes(self.has_f16()),
            yes(self.features.contains(wgpu::Features::SUBGROUP)),
            self.simd_width,
            yes(self.has_timestamps())
        )?;
        let coop = match self.cooperative_matrix.is_empty() {
            true => "none".to_string(),
            false => self.cooperative_matrix.join(", "),
        };
        write!(f, "cooperative matrix: {coop}")?;
        if !self.cooperative_matrix.is_empty() {
            let used = match self.cooperative_f16 {
                true => "on (16x16x16 f16 -> f32, the large conv tiles' first candidates)",
                false => "off (needs wgpu's cooperative-matrix feature, 16x16x16 f16 -> f32, 32-wide subgroups; CONVOY_COOP_MATRIX=0 turns it off)",
            };
            write!(f, "; convoy's mixed-precision conv kernels on them: {used}")?;
        }
        if self.cooperative_emulated {
            write!(f, "; emulated for tests (CONVOY_COOP_MATRIX=emulate)")?;
        }
        Ok(())
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
