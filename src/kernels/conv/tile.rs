//! Tile configurations of the conv kernels and the policy that picks them per shape and
//! kernel family: register tiles (output channels x pixels per invocation), texture tiles (the
//! CPU family) and the gpu family's 64 x 64 block tiles staged through workgroup memory, and
//! its large 128 x 128 (or 64 x 128) tiles (conv2d_fwd_mm and the large-tile backward kernels),
//! in f32 or on cooperative matrices.

use super::constants::{FWD_PIXELS, STATS_BLOCK, WG};
use super::device::ConvDevice;
use crate::device::KernelFamily;
use crate::error::{Error, Result};

/// The narrowest default workgroup: one 256-bit SIMD register of lanes on a CPU driver.
pub(super) const MIN_WG: usize = 8;

/// Invocations per workgroup of a conv kernel tiling `pixels` pixels, `px` per invocation, on a
/// device that runs `simd` invocations side by side: for a small map the fewest (a power of
/// two, at least 8) that cover it, else the width from one SIMD group to `widest` that leaves the
/// fewest lanes idle (the wider on ties). Idle lanes run every loop masked, so the 18 output
/// pixels of a ResNet-50's last stage at batch 2 and 96x80 pay for 256 in a 64-lane workgroup
/// and for 32 in an 8-lane one, and ResNet-18's 392 last-stage pixels at batch 8 for 512 in
/// 64-lane workgroups and 416 in 8-lane ones on lavapipe (on a 32-wide GPU, for 512 either way).
pub(super) fn pixel_workgroup(pixels: usize, px: usize, simd: usize, widest: usize) -> usize {
    let lanes = pixels.div_ceil(px);
    if lanes <= widest {
        return lanes.next_power_of_two().clamp(MIN_WG, widest);
    }
    let idle = |wg: usize| lanes.div_ceil(wg) * wg - lanes;
    let mut best = widest;
    let mut wg = widest / 2;
    while wg >= simd.clamp(MIN_WG, widest) {
        if idle(wg) < idle(best) {
            best = wg;
        }
        wg /= 2;
    }
    best
}

/// Tile configuration of the implicit-GEMM kernels. Register tiles (conv2d_fwd and the
/// backward kernels): output channels per invocation (rows, uniform over a workgroup, 1..=8)
/// and invocations per workgroup; each invocation also covers `FWD_PIXELS` output pixels.
/// Block tiles (the gpu family's forward, conv2d_fwd_block): 64 output channels x 64 pixels
/// per workgroup of 256, staged through workgroup memory (`ConvTile::BLOCK`). Large tiles
/// (conv2d_fwd_mm, conv2d_bwd_data_mm, conv2d_bwd_weight_mm): 128 or 64 output channels (`ocb`)
/// x 128 pixels per workgroup of 256 (`ConvTile::MM_128`, `MM_64`), and the same on
/// cooperative matrices (`ConvTile::COOP_128`, `COOP_64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvTile {
    pub ocb: usize,
    pub wg: usize,
    pub kind: TileKind,
}

/// Which forward kernel a tile is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// conv2d_fwd and the backward kernels: operands from storage buffers, `FWD_PIXELS` pixels
    /// per invocation.
    Register,
    /// conv2d_fwd_block (the gpu family): 64 x 64 block tiles staged through workgroup memory.
    Block,
    /// conv2d_fwd_tex (the CPU family): the input through an operand texture, `px` (4 or 8)
    /// pixels per invocation.
    Texture { px: usize },
    /// conv2d_fwd_mm and the large-tile backward kernels (the gpu family): `ocb` (128 or 64)
    /// output channels x `MM_PIXELS` pixels per workgroup of 256, 8 x 8 (or 4 x 8) outputs per
    /// invocation.
    Mm,
    /// conv2d_fwd_mm's tiles with K split into `slices` slices (the forward only, in f32): a
    /// workgroup per slice and block, each slice's raw sums into scratch, and a second dispatch
    /// (conv2d_split_k_epilogue) that adds them, applies the epilogue and writes the statistics;
    /// for grids too small to fill a GPU (`mm::mm_split_tile`).
    MmSplit { slices: usize },
    /// The same tiles in the kernels' cooperative variants (the gpu family's mixed precision
    /// where the device has cooperative matrices): f16 operands, the products on 16x16x16
    /// fragments accumulated in f32.
    CoopMm,
}

impl ConvTile {
    /// The block tile of conv2d_fwd_block.
    pub const BLOCK: ConvTile = ConvTile {
        ocb: BLOCK_CHANNELS,
        wg: 256,
        kind: TileKind::Block,
    };

    /// The large tiles of conv2d_fwd_mm: 128 or 64 output channels x 128 pixels.
    pub const MM_128: ConvTile = ConvTile {
        ocb: 128,
        wg: 256,
        kind: TileKind::Mm,
    };
    pub const MM_64: ConvTile = ConvTile {
        ocb: 64,
        wg: 256,
        kind: TileKind::Mm,
    };

    /// The large tiles on cooperative matrices.
    pub const COOP_128: ConvTile = ConvTile {
        kind: TileKind::CoopMm,
        ..ConvTile::MM_128
    };
    pub const COOP_64: ConvTile = ConvTile {
        kind: TileKind::CoopMm,
        ..ConvTile::MM_64
    };

    /// The large tile of this one's size on cooperative matrices.
    pub(super) fn cooperative(self) -> ConvTile {
        ConvTile {
            kind: TileKind::CoopMm,
            ..self
        }
    }

    /// Whether this is a large tile, in f32 (split over K or not) or on cooperative matrices.
    pub(super) fn is_large(&self) -> bool {
        matches!(self.kind, TileKind::Mm | TileKind::MmSplit { .. } | TileKind::CoopMm)
    }

    /// This large tile with K split into `slices` slices.
    pub(super) fn split(self, slices: usize) -> ConvTile {
        ConvTile {
            kind: TileKind::MmSplit { slices },
            ..self
        }
    }

    /// The K slices of a split tile; 1 for any other.
    pub(super) fn slices(&self) -> usize {
        match self.kind {
            TileKind::MmSplit { slices } => slices,
            _ => 1,
        }
    }

    /// The default on `gpu` for a tile whose rows are channels of a group with `rows` channels
    /// and whose columns tile `pixels` pixels: as many rows as there are, up to 8 (a depthwise
    /// conv gets one row: a direct kernel with uniform weights), and the workgroup width that
    /// leaves the fewest lanes idle (`pixel_workgroup`).
    pub fn default_for<'a>(dev: impl Into<ConvDevice<'a>>, rows: usize, pixels: usize) -> ConvTile {
        ConvTile::register(rows, pixel_workgroup(pixels, FWD_PIXELS, dev.into().simd_width(), WG))
    }

    /// The register tile of `wg` invocations with as many rows as a group of `rows` channels
    /// has, up to 8.
    pub(super) fn register(rows: usize, wg: usize) -> ConvTile {
        ConvTile {
            ocb: rows.clamp(1, 8),
            wg,
            kind: TileKind::Register,
        }
    }

    /// Every configuration the tuner may pick for `rows` channels per group over `pixels`
    /// pixels (the default first): 4 or 8 rows (fewer when the group has fewer) and 32, 64 or
    /// 128 invocations. Fewer rows than 4 only lose reuse, so they are not timed.
    pub fn candidates<'a>(dev: impl Into<ConvDevice<'a>>, rows: usize, pixels: usize) -> Vec<ConvTile> {
        ConvTile::candidates_after(ConvTile::default_for(dev, rows, pixels), rows)
    }

    /// `default`, then the other register tiles of `candidates`.
    pub(super) fn candidates_after(default: ConvTile, rows: usize) -> Vec<ConvTile> {
        let mut out = vec![default];
        for ocb in [rows.clamp(1, 4), rows.clamp(1, 8)] {
            for wg in [32, 64, 128] {
                let t = ConvTile {
                    ocb,
                    wg,
                    kind: TileKind::Register,
                };
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        out
    }

    /// The forward's storage-buffer candidates on `gpu` (the default first): on the gpu family
    /// the block tile first for groups of at least `BLOCK_MIN_ROWS` channels (a narrower group
    /// leaves most of its 64 rows idle), then the register tiles; on the cpu family the
    /// register tiles, then the block tile for groups of 16 or more, for the tuner.
    pub fn forward_candidates<'a>(dev: impl Into<ConvDevice<'a>>, rows: usize, pixels: usize) -> Vec<ConvTile> {
        let dev = dev.into();
        let register = ConvTile::candidates(dev, rows, pixels);
        if ConvTile::block_first(dev, rows) {
            return std::iter::once(ConvTile::BLOCK).chain(register).collect();
        }
        let mut out = register;
        if rows >= 16 {
            out.push(ConvTile::BLOCK);
        }
        out
    }

    /// Whether the block tile is the forward's default on `gpu` for groups of `rows` channels.
    pub fn block_first<'a>(dev: impl Into<ConvDevice<'a>>, rows: usize) -> bool {
        dev.into().policy.family == KernelFamily::Gpu && rows >= BLOCK_MIN_ROWS
    }

    /// Whether the forward with this tile can write the block statistics of `pixels` output
    /// pixels: the block and large tiles (their 64- and 128-pixel blocks condensed by a second
    /// dispatch), a register
    /// or texture tile whose workgroups cover `STATS_BLOCK` pixels each, or a narrower one whose
    /// single workgroup covers them all (then the only block).
    pub fn writes_stats_blocks(&self, pixels: usize) -> bool {
        let covers = self.wg * self.pixels();
        let staged = matches!(self.kind, TileKind::Block) || self.is_large();
        staged || covers == STATS_BLOCK || (covers < STATS_BLOCK && pixels <= covers)
    }

    /// Output pixels per invocation of a register or texture tile.
    pub(super) fn pixels(&self) -> usize {
        match self.kind {
            TileKind::Texture { px } => px,
            _ => FWD_PIXELS,
        }
    }

    /// The texture tile of `rows` channels per group over `pixels` pixels: up to 8 rows, `px`
    /// pixels per invocation, and the workgroup width of `pixel_workgroup` (at most
    /// STATS_BLOCK / px, so that a full workgroup covers one statistics block).
    pub fn texture(rows: usize, pixels: usize, px: usize, simd: usize) -> ConvTile {
        ConvTile {
            ocb: rows.clamp(1, 8),
            wg: pixel_workgroup(pixels, px, simd, STATS_BLOCK / px),
            kind: TileKind::Texture { px },
        }
    }

    /// The texture tiles the tuner may pick (the default first): `TEXTURE_PIXELS` or the other
    /// of 4 and 8 pixels per invocation, up to 8 or up to 4 rows.
    pub fn texture_candidates<'a>(dev: impl Into<ConvDevice<'a>>, rows: usize, pixels: usize) -> Vec<ConvTile> {
        let simd = dev.into().simd_width();
        let mut out = Vec::new();
        for px in [TEXTURE_PIXELS, 12 - TEXTURE_PIXELS] {
            for ocb in [rows.clamp(1, 8), rows.clamp(1, 4)] {
                let t = ConvTile {
                    ocb,
                    ..ConvTile::texture(rows, pixels, px, simd)
                };
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        out
    }

    /// The tuner's record of the tile: [ocb, wg] for a register tile, [ocb, wg, 1] a block tile,
    /// [ocb, wg, 2, px] through a texture, [ocb, wg, 4] a large tile, [ocb, wg, 5] a large tile
    /// on cooperative matrices (3 was the old cooperative block tile: no longer read), [ocb, wg,
    /// 6, slices] a large tile split over K.
    pub(super) fn record(&self) -> Vec<usize> {
        match self.kind {
            TileKind::Register => vec![self.ocb, self.wg],
            TileKind::Block => vec![self.ocb, self.wg, 1],
            TileKind::Texture { px } => vec![self.ocb, self.wg, 2, px],
            TileKind::Mm => vec![self.ocb, self.wg, 4],
            TileKind::CoopMm => vec![self.ocb, self.wg, 5],
            TileKind::MmSplit { slices } => vec![self.ocb, self.wg, 6, slices],
        }
    }

    pub(super) fn from_record(v: &[usize]) -> Option<ConvTile> {
        let (ocb, wg, kind) = match *v {
            [ocb, wg] => (ocb, wg, TileKind::Register),
            [ocb, wg, 1] => (ocb, wg, TileKind::Block),
            [ocb, wg, 2, px] => (ocb, wg, TileKind::Texture { px }),
            [ocb, wg, 4] => (ocb, wg, TileKind::Mm),
            [ocb, wg, 5] => (ocb, wg, TileKind::CoopMm),
            [ocb, wg, 6, slices] => (ocb, wg, TileKind::MmSplit { slices }),
            _ => return None,
        };
        Some(ConvTile { ocb, wg, kind })
    }

    /// A refusal of this tile, saying why.
    pub(super) fn refuse(&self, why: &str) -> Error {
        Error::Arg {
            op: "conv2d".into(),
            arg: "tile".into(),
            reason: format!("{self:?}: {why}"),
        }
    }

    pub(super) fn check(&self) -> Result<()> {
        match self.kind {
            TileKind::Block => {
                if *self != ConvTile::BLOCK {
                    return Err(self.refuse("the block tile is 64 channels x 64 pixels, 256 invocations"));
                }
                return Ok(());
            }
            TileKind::Mm | TileKind::CoopMm | TileKind::MmSplit { .. } => {
                if self.ocb != 128 && self.ocb != 64 || self.wg != 256 {
                    return Err(self.refuse("the large tiles are 128 or 64 channels x 128 pixels, 256 invocations"));
                }
                if matches!(self.kind, TileKind::MmSplit { slices } if !(2..=MM_SPLIT_MAX).contains(&slices)) {
                    return Err(self.refuse(&format!("a split tile takes 2 to {MM_SPLIT_MAX} K slices")));
                }
                return Ok(());
            }
            TileKind::Texture { px } if px != 4 && px != 8 => {
                return Err(self.refuse("a texture tile takes 4 or 8 pixels per invocation"));
            }
            _ => {}
        }
        if !(1..=8).contains(&self.ocb) || !(1..=256).contains(&self.wg) {
            return Err(self.refuse("ocb must be 1..=8 and wg 1..=256"));
        }
        Ok(())
    }

    /// `check` for the register and texture backward kernels (the launchers route block tiles
    /// to the block kernels before they get here).
    pub(super) fn check_backward(&self) -> Result<()> {
        if matches!(self.kind, TileKind::Block) || self.is_large() {
            return Err(self.refuse("this backward kernel takes register or texture tiles, not a forward's block tile"));
        }
        self.check()
    }
}

/// Output pixels per invocation of the texture forward's default tile (4 or 8).
pub(super) const TEXTURE_PIXELS: usize = 8;

/// Output pixels per workgroup of conv2d_fwd_block (its BN).
pub(super) const BLOCK_PIXELS: usize = 64;

/// Output channels per workgroup of conv2d_fwd_block (its BM).
pub(super) const BLOCK_CHANNELS: usize = 64;

/// The most K slices a split large tile takes.
pub(super) const MM_SPLIT_MAX: usize = 32;

/// The fewest channels per group for which the gpu family's forward defaults to the block tile.
pub(super) const BLOCK_MIN_ROWS: usize = 32;

#[cfg(test)]
mod tests {
    use super::pixel_workgroup;

    #[test]
    fn pixel_workgroups_leave_the_fewest_lanes_idle() {
        // (pixels, SIMD width) -> invocations per workgroup, each invocation taking 4 pixels
        assert_eq!(pixel_workgroup(18, 4, 8, 64), 8); // a small map: the fewest that cover it
        assert_eq!(pixel_workgroup(60, 4, 8, 64), 16);
        assert_eq!(pixel_workgroup(256, 4, 8, 64), 64);
        assert_eq!(pixel_workgroup(18, 4, 32, 64), 8); // small maps cover alike on any device
        assert_eq!(pixel_workgroup(392, 4, 8, 64), 8); // 98 lanes: 6 idle at 8 wide, 30 at 64
        assert_eq!(pixel_workgroup(392, 4, 32, 64), 64); // 30 idle at 32 and 64 wide: the wider
        assert_eq!(pixel_workgroup(1568, 4, 8, 64), 8);
        assert_eq!(pixel_workgroup(1568, 4, 16, 64), 16);
        assert_eq!(pixel_workgroup(25088, 4, 8, 64), 64); // whole workgroups at every width
        assert_eq!(pixel_workgroup(1000, 4, 128, 64), 64); // SIMD width unknown: never above 64
    }
}
