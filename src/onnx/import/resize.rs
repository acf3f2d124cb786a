//! Resize and Upsample: an integer upsampling of H and W, nearest (PyTorch's floor) or bilinear
//! without align_corners.

use super::{Importer, Val};
use crate::error::Result;
use crate::onnx::graph::OnnxNode;
use crate::ops::upsample::UpsampleArgs;

impl Importer<'_> {
    pub(super) fn resize(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let d = self.dims(x);
        if d.len() != 4 {
            return self.fail(n, format!("resizing {d:?}: convoy resizes (N, C, H, W)"));
        }
        let (scales, sizes) = if n.op_type == "Upsample" {
            let s = match n.attributes.iter().find(|a| a.name == "scales") {
                Some(a) => Some(a.floats.clone()),
                None => self.floats_input(n, 1)?,
            };
            (s, None)
        } else if self.g.opset < 11 {
            (self.floats_input(n, 1)?, None)
        } else {
            (
                self.floats_input(n, 2)?.filter(|s| !s.is_empty()),
                self.ints_input(n, 3)?,
            )
        };
        let scale = match (scales, sizes) {
            (Some(s), _) if s.len() == 4 => s,
            (_, Some(z)) if z.len() == 4 => z.iter().zip(&d).map(|(&z, &d)| z as f32 / d as f32).collect(),
            _ => return self.fail(n, "neither scales nor sizes for the four dimensions"),
        };
        let s = scale[2];
        if scale[0] != 1.0 || scale[1] != 1.0 || scale[3] != s || s.fract() != 0.0 || s < 1.0 {
            return self.fail(
                n,
                format!("scales {scale:?}: convoy upsamples H and W by one integer factor"),
            );
        }
        let mode = n.string("mode", "nearest");
        let transform = n.string("coordinate_transformation_mode", "half_pixel");
        let bilinear = match mode.as_str() {
            "nearest" if n.op_type == "Upsample" || transform == "asymmetric" => {
                let rounding = n.string("nearest_mode", "round_prefer_floor");
                if n.op_type == "Resize" && rounding != "floor" {
                    return self.fail(n, format!("nearest_mode '{rounding}' (convoy: floor, PyTorch's)"));
                }
                false
            }
            "linear" | "bilinear" if matches!(transform.as_str(), "half_pixel" | "pytorch_half_pixel") || n.op_type == "Upsample" => {
                if n.op_type == "Upsample" {
                    return self.fail(n, "opset-9 bilinear Upsample (asymmetric coordinates)");
                }
                true
            }
            _ => {
                return self.fail(
                    n,
                    format!("mode '{mode}' with coordinate_transformation_mode '{transform}' (convoy: PyTorch's nearest, or bilinear without align_corners)"),
                )
            }
        };
        let args = UpsampleArgs {
            scale: s as usize,
            bilinear,
        };
        Ok(Val::Tensor(self.net.graph.upsample(x, args)?))
    }
}
