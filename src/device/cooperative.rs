//! Whether convoy's cooperative-matrix (tensor core) kernels run on a device: on its matrix
//! units, with emulated fragments (tests), or not at all (CONVOY_COOP_MATRIX).

use crate::error::{Error, Result};

/// CONVOY_COOP_MATRIX: the cooperative-matrix kernels on the device's matrix units where it has
/// them (unset or 1), never (0), or with emulated fragments where it has none (emulate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CoopMode {
    Off,
    On,
    Emulate,
}

pub(super) fn coop_mode_from_env() -> Result<CoopMode> {
    match std::env::var("CONVOY_COOP_MATRIX").as_deref() {
        Err(_) | Ok("") | Ok("1") => Ok(CoopMode::On),
        Ok("0") => Ok(CoopMode::Off),
        Ok("emulate") => Ok(CoopMode::Emulate),
        Ok(other) => Err(Error::arg(
            "Gpu",
            "CONVOY_COOP_MATRIX",
            format!("'{other}' is not 0, 1 or emulate"),
        )),
    }
}

/// Whether the cooperative-matrix kernels can run on the adapter's matrix units: wgpu offers
/// its experimental feature, with shader-f16 and subgroups, a 16x16x16 f16 x f16 -> f32
/// configuration (the kernels' fragments) and subgroups of exactly 32 (the kernels take each
/// 32 consecutive invocations for one subgroup); unless `mode` is off.
pub(super) fn cooperative_f16_fits(adapter: &wgpu::Adapter, mode: CoopMode) -> Result<bool> {
    let wanted = mode != CoopMode::Off;
    let needed =
        wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP;
    let info = adapter.get_info();
    let f16 = wgpu::CooperativeScalarType::F16;
    let fragment = adapter.cooperative_matrix_properties().iter().any(|p| {
        (p.m_size, p.n_size, p.k_size) == (16, 16, 16)
            && p.ab_type == f16
            && p.cr_type == wgpu::CooperativeScalarType::F32
    });
    Ok(wanted
        && adapter.features().contains(needed)
        && fragment
        && info.subgroup_min_size == 32
        && info.subgroup_max_size == 32)
}
