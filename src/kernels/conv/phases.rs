//! A conv's input gradient as forward convs of dy: the stride phases (each a stride-1 conv of
//! dy over the taps that land on it), the transposed geometry of a stride-1 conv, and the taps
//! each reads. Pure geometry: which kernel runs them is the variant table's (`variants`).

use crate::shape::Conv2dGeom;

/// Whether the input gradient of `g` is a forward conv of dy: stride 1 (larger strides leave
/// holes between dy's taps) and each axis's padding at most the dilated kernel's reach, so
/// that the transposed conv's padding, d*(K-1) - P per axis, is not negative.
pub fn transposes_to_forward(g: &Conv2dGeom) -> bool {
    let a = &g.args;
    a.stride == [1, 1] && a.padding[0] <= a.dilation[0] * (g.kh - 1) && a.padding[1] <= a.dilation[1] * (g.kw - 1)
}

/// One axis of a conv's input gradient split by stride phase. The input positions i with
/// (i + P) % S == r take the taps k with k*D % S == r: k0, k0 + step, ... (`taps` of them), whose
/// dy positions are `dil` apart; as a stride-1 forward over dy the phase is a map of `count`
/// outputs, output m at input position `first` + S*m, with padding `pad` in front of dy (None
/// when it would be negative: a padding larger than the kernel's reach).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseAxis {
    pub k0: usize,
    pub step: usize,
    pub taps: usize,
    pub dil: usize,
    pub first: usize,
    pub count: usize,
    pub pad: Option<usize>,
}

/// Phase `r` of one axis: input size `size`, kernel `k`, stride `s`, padding `p`, dilation `d`.
pub(super) fn phase_axis(size: usize, k: usize, s: usize, p: usize, d: usize, r: usize) -> PhaseAxis {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let step = s / gcd(d, s);
    let k0 = (0..k.min(step)).find(|&k| k * d % s == r);
    let taps = k0.map_or(0, |k0| (k - k0).div_ceil(step));
    // the first phase output: the smallest m with r + s*m - p >= 0
    let m0 = if p > r { (p - r).div_ceil(s) } else { 0 };
    let first = r + s * m0 - p;
    let count = if first < size { (size - first).div_ceil(s) } else { 0 };
    let dil = step * d / s;
    // tap j reads dy at m - e_j, e_j = (k_j*d - r) / s = e_0 + j*dil; flipped, the forward's
    // padding is e_max - m0
    let pad = k0.and_then(|k0| ((k0 * d - r) / s + (taps - 1) * dil).checked_sub(m0));
    PhaseAxis {
        k0: k0.unwrap_or(0),
        step,
        taps,
        dil,
        first,
        count,
        pad,
    }
}

/// One stride phase of an input gradient: its rows and columns, and its forward geometry (dy
/// as the input, the phase's taps as the kernel, the phase's map as the output; None for a
/// phase no tap reaches, which gets zeros).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phase {
    pub rows: PhaseAxis,
    pub cols: PhaseAxis,
    pub geom: Option<Conv2dGeom>,
}

impl Phase {
    /// The weights' taps per axis ((k0, step, count): k0, k0 + step, ...) this phase reads.
    pub fn taps(&self) -> [(usize, usize, usize); 2] {
        let (py, px) = (&self.rows, &self.cols);
        [(py.k0, py.step, py.taps), (px.k0, px.step, px.taps)]
    }
}

/// Every stride phase of `g`'s input gradient with input pixels (S*S of them at most), or None
/// where a phase would need a negative padding (a padding beyond the kernel's reach: only the
/// register kernels run those).
pub fn stride_phases(g: &Conv2dGeom) -> Option<Vec<Phase>> {
    let a = &g.args;
    let axes = |axis: usize, size: usize, k: usize| -> Vec<PhaseAxis> {
        (0..a.stride[axis])
            .map(|r| phase_axis(size, k, a.stride[axis], a.padding[axis], a.dilation[axis], r))
            .collect()
    };
    let (rows, cols) = (axes(0, g.h, g.kh), axes(1, g.w, g.kw));
    let mut phases = Vec::new();
    for &py in &rows {
        for &px in &cols {
            if py.count == 0 || px.count == 0 {
                continue;
            }
            let geom = match py.taps > 0 && px.taps > 0 {
                true => Some(phase_geometry(g, &py, &px)?),
                false => None,
            };
            phases.push(Phase {
                rows: py,
                cols: px,
                geom,
            });
        }
    }
    Some(phases)
}

/// The forward geometry of one stride phase: dy as the input, the phase's taps as the kernel
/// (flipped, channel axes swapped), the phase's map as the output; None for a negative padding.
fn phase_geometry(g: &Conv2dGeom, py: &PhaseAxis, px: &PhaseAxis) -> Option<Conv2dGeom> {
    Some(Conv2dGeom {
        n: g.n,
        cin: g.cout,
        h: g.oh,
        w: g.ow,
        cout: g.cin,
        kh: py.taps,
        kw: px.taps,
        oh: py.count,
        ow: px.count,
        args: crate::shape::Conv2dArgs::new(1, 0, 1, g.args.groups).hw([1, 1], [py.pad?, px.pad?], [py.dil, px.dil]),
    })
}

/// The forward geometry whose output is the input gradient of a stride-1 conv `g`: dy as the
/// input, the flipped kernel with its channel axes swapped, padding d*(K-1) - P per axis
/// (callers check `transposes_to_forward`, which keeps it non-negative).
pub(super) fn transposed_geometry(g: &Conv2dGeom) -> Conv2dGeom {
    let a = &g.args;
    Conv2dGeom {
        n: g.n,
        cin: g.cout,
        h: g.oh,
        w: g.ow,
        cout: g.cin,
        kh: g.kh,
        kw: g.kw,
        oh: g.h,
        ow: g.w,
        args: crate::shape::Conv2dArgs::new(1, 0, 1, a.groups).hw(
            [1, 1],
            [
                (a.dilation[0] * (g.kh - 1)).saturating_sub(a.padding[0]),
                (a.dilation[1] * (g.kw - 1)).saturating_sub(a.padding[1]),
            ],
            a.dilation,
        ),
    }
}

/// Every tap of each axis, for a stride-1 conv's transposed weights.
pub(super) fn all_taps(g: &Conv2dGeom) -> [(usize, usize, usize); 2] {
    [(0, 1, g.kh), (0, 1, g.kw)]
}

#[cfg(test)]
mod tests {
    use super::{phase_axis, PhaseAxis};

    #[test]
    fn stride_phases_take_the_taps_that_land_on_them() {
        // 3 taps, stride 2, padding 1 (ResNet's downsampling 3x3) on 56 rows: the odd rows
        // (phase 0: (i + 1) % 2 == 0) take taps 0 and 2, the even rows tap 1
        let even = phase_axis(56, 3, 2, 1, 1, 0);
        assert_eq!(
            even,
            PhaseAxis {
                k0: 0,
                step: 2,
                taps: 2,
                dil: 1,
                first: 1,
                count: 28,
                pad: Some(0)
            }
        );
        let odd = phase_axis(56, 3, 2, 1, 1, 1);
        assert_eq!(
            (odd.k0, odd.taps, odd.first, odd.count, odd.pad),
            (1, 1, 0, 28, Some(0))
        );
        // stride 1 is one phase: every tap, padding d*(K-1) - P
        let one = phase_axis(9, 5, 1, 1, 2, 0);
        assert_eq!(
            (one.k0, one.step, one.taps, one.dil, one.first, one.count, one.pad),
            (0, 1, 5, 2, 0, 9, Some(7))
        );
        // dilation 2 at stride 2: the odd phase has no tap (its rows get zeros)
        assert_eq!(phase_axis(10, 3, 2, 0, 2, 1).taps, 0);
        // a 1x1 with padding 1 at stride 2: the padding lies beyond the kernel's reach
        let beyond = phase_axis(8, 1, 2, 1, 1, 0);
        assert_eq!((beyond.taps, beyond.pad), (1, None));
    }
}
