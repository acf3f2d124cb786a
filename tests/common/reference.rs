//! Plain float64 CPU references, written from the PyTorch definitions, loop by loop.

/// A per-axis (height, width) size: one number for both axes, or a pair.
pub trait Axes {
    fn hw(self) -> [usize; 2];
}
impl Axes for usize {
    fn hw(self) -> [usize; 2] {
        [self, self]
    }
}
impl Axes for [usize; 2] {
    fn hw(self) -> [usize; 2] {
        self
    }
}

/// conv2d. x (N, Cin, H, W), w (Cout, Cin/g, KH, KW), b (Cout) -> (N, Cout, OH, OW).
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    x: &[f64],
    [n, cin, h, w]: [usize; 4],
    wt: &[f64],
    [cout, cin_g, kh, kw]: [usize; 4],
    b: Option<&[f64]>,
    stride: impl Axes,
    pad: impl Axes,
    dil: impl Axes,
    groups: usize,
) -> (Vec<f64>, [usize; 4]) {
    let ([sh, sw], [ph, pw], [dlh, dlw]) = (stride.hw(), pad.hw(), dil.hw());
    let oh = (h + 2 * ph - dlh * (kh - 1) - 1) / sh + 1;
    let ow = (w + 2 * pw - dlw * (kw - 1) - 1) / sw + 1;
    let cout_g = cout / groups;
    let mut y = vec![0.0; n * cout * oh * ow];
    for ni in 0..n {
        for oc in 0..cout {
            let g = oc / cout_g;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = b.map_or(0.0, |b| b[oc]);
                    for ic in 0..cin_g {
                        let c = g * cin_g + ic;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * sh + ky * dlh) as isize - ph as isize;
                                let ix = (ox * sw + kx * dlw) as isize - pw as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                s += x[((ni * cin + c) * h + iy as usize) * w + ix as usize]
                                    * wt[((oc * cin_g + ic) * kh + ky) * kw + kx];
                            }
                        }
                    }
                    y[((ni * cout + oc) * oh + oy) * ow + ox] = s;
                }
            }
        }
    }
    (y, [n, cout, oh, ow])
}

/// The gradients of conv2d (no bias) for an output gradient dy: (dx, dw), accumulated over the
/// same loop nest as the forward, so each term is the forward's product differentiated.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    x: &[f64],
    [n, cin, h, w]: [usize; 4],
    wt: &[f64],
    [cout, cin_g, kh, kw]: [usize; 4],
    dy: &[f64],
    stride: impl Axes,
    pad: impl Axes,
    dil: impl Axes,
    groups: usize,
) -> (Vec<f64>, Vec<f64>) {
    let ([sh, sw], [ph, pw], [dlh, dlw]) = (stride.hw(), pad.hw(), dil.hw());
    let oh = (h + 2 * ph - dlh * (kh - 1) - 1) / sh + 1;
    let ow = (w + 2 * pw - dlw * (kw - 1) - 1) / sw + 1;
    let cout_g = cout / groups;
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; wt.len()];
    for ni in 0..n {
        for oc in 0..cout {
            let g = oc / cout_g;
            for oy in 0..oh {
                for ox in 0..ow {
                    let d = dy[((ni * cout + oc) * oh + oy) * ow + ox];
                    for ic in 0..cin_g {
                        let c = g * cin_g + ic;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * sh + ky * dlh) as isize - ph as isize;
                                let ix = (ox * sw + kx * dlw) as isize - pw as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let xi = ((ni * cin + c) * h + iy as usize) * w + ix as usize;
                                let wi = ((oc * cin_g + ic) * kh + ky) * kw + kx;
                                dx[xi] += d * wt[wi];
                                dw[wi] += d * x[xi];
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, dw)
}

/// Per-channel mean and biased variance over (N, H, W).
pub fn channel_stats(x: &[f64], [n, c, h, w]: [usize; 4]) -> (Vec<f64>, Vec<f64>) {
    let hw = h * w;
    let cnt = (n * hw) as f64;
    let mut mean = vec![0.0; c];
    let mut var = vec![0.0; c];
    for ci in 0..c {
        let vals = (0..n).flat_map(|ni| (0..hw).map(move |j| (ni * c + ci) * hw + j));
        mean[ci] = vals.clone().map(|i| x[i]).sum::<f64>() / cnt;
        var[ci] = vals.map(|i| (x[i] - mean[ci]).powi(2)).sum::<f64>() / cnt;
    }
    (mean, var)
}

/// Normalise x with the given per-channel statistics, then scale and shift.
pub fn batch_norm_apply(
    x: &[f64],
    [n, c, h, w]: [usize; 4],
    mean: &[f64],
    var: &[f64],
    gamma: &[f64],
    beta: &[f64],
    eps: f64,
) -> Vec<f64> {
    let hw = h * w;
    (0..n * c * hw)
        .map(|i| {
            let ci = (i / hw) % c;
            (x[i] - mean[ci]) / (var[ci] + eps).sqrt() * gamma[ci] + beta[ci]
        })
        .collect()
}

/// Pooling window output size, as PyTorch computes it (ceil mode adds a last partial window
/// when it starts inside the input or its left padding).
pub fn pool_out(h: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> usize {
    let span = d * (k - 1) + 1;
    let mut o = if ceil {
        (h + 2 * p - span).div_ceil(s) + 1
    } else {
        (h + 2 * p - span) / s + 1
    };
    if ceil && (o - 1) * s >= h + p {
        o -= 1;
    }
    o
}

/// max_pool2d with a (kh, kw) window, (sh, sw) stride, (ph, pw) padding, (dh, dw) dilation.
#[allow(clippy::too_many_arguments)]
pub fn max_pool2d(
    x: &[f64],
    [n, c, h, w]: [usize; 4],
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    d: [usize; 2],
    ceil: bool,
) -> Vec<f64> {
    let (oh, ow) = (
        pool_out(h, k[0], s[0], p[0], d[0], ceil),
        pool_out(w, k[1], s[1], p[1], d[1], ceil),
    );
    let mut y = Vec::with_capacity(n * c * oh * ow);
    for pl in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut m = f64::NEG_INFINITY;
                for ky in 0..k[0] {
                    for kx in 0..k[1] {
                        let iy = (oy * s[0] + ky * d[0]) as isize - p[0] as isize;
                        let ix = (ox * s[1] + kx * d[1]) as isize - p[1] as isize;
                        if iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize {
                            m = m.max(x[(pl * h + iy as usize) * w + ix as usize]);
                        }
                    }
                }
                y.push(m);
            }
        }
    }
    y
}

#[allow(clippy::too_many_arguments)]
pub fn avg_pool2d(
    x: &[f64],
    [n, c, h, w]: [usize; 4],
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    include_pad: bool,
    ceil: bool,
) -> Vec<f64> {
    let (oh, ow) = (
        pool_out(h, k[0], s[0], p[0], 1, ceil),
        pool_out(w, k[1], s[1], p[1], 1, ceil),
    );
    let mut y = Vec::with_capacity(n * c * oh * ow);
    for pl in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut sum, mut cnt, mut cnt_pad) = (0.0, 0usize, 0usize);
                for ky in 0..k[0] {
                    for kx in 0..k[1] {
                        let iy = (oy * s[0] + ky) as isize - p[0] as isize;
                        let ix = (ox * s[1] + kx) as isize - p[1] as isize;
                        // positions inside the padded input count for the divisor
                        if iy < (h + p[0]) as isize && ix < (w + p[1]) as isize {
                            cnt_pad += 1;
                        }
                        if iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize {
                            sum += x[(pl * h + iy as usize) * w + ix as usize];
                            cnt += 1;
                        }
                    }
                }
                y.push(sum / if include_pad { cnt_pad } else { cnt } as f64);
            }
        }
    }
    y
}

pub fn adaptive_avg_pool2d(x: &[f64], [n, c, h, w]: [usize; 4], oh: usize, ow: usize) -> Vec<f64> {
    let mut y = Vec::with_capacity(n * c * oh * ow);
    for pl in 0..n * c {
        for oy in 0..oh {
            let (ys, ye) = (oy * h / oh, ((oy + 1) * h).div_ceil(oh));
            for ox in 0..ow {
                let (xs, xe) = (ox * w / ow, ((ox + 1) * w).div_ceil(ow));
                let mut sum = 0.0;
                for iy in ys..ye {
                    for ix in xs..xe {
                        sum += x[(pl * h + iy) * w + ix];
                    }
                }
                y.push(sum / ((ye - ys) * (xe - xs)) as f64);
            }
        }
    }
    y
}

/// x (N, in) W^T (out, in) + b.
pub fn linear(x: &[f64], n: usize, fin: usize, wt: &[f64], fout: usize, b: Option<&[f64]>) -> Vec<f64> {
    let mut y = vec![0.0; n * fout];
    for i in 0..n {
        for o in 0..fout {
            y[i * fout + o] = b.map_or(0.0, |b| b[o]) + (0..fin).map(|k| x[i * fin + k] * wt[o * fin + k]).sum::<f64>();
        }
    }
    y
}

/// Mean cross-entropy with label smoothing, as torch.nn.functional.cross_entropy.
pub fn cross_entropy(logits: &[f64], n: usize, k: usize, labels: &[i32], eps: f64) -> f64 {
    let mut total = 0.0;
    for i in 0..n {
        let row = &logits[i * k..(i + 1) * k];
        let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = mx + row.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
        let nll = lse - row[labels[i] as usize];
        let smooth = row.iter().map(|v| lse - v).sum::<f64>() / k as f64;
        total += (1.0 - eps) * nll + eps * smooth;
    }
    total / n as f64
}

/// Fraction of rows whose label scores among the top k (ties in the label's favour).
pub fn topk_accuracy(logits: &[f64], n: usize, k: usize, labels: &[i32], topk: usize) -> f64 {
    let right = (0..n)
        .filter(|&i| {
            let row = &logits[i * k..(i + 1) * k];
            let t = row[labels[i] as usize];
            row.iter().filter(|&&v| v > t).count() < topk
        })
        .count();
    right as f64 / n as f64
}

/// erfc(x) in float64, from its series (|x| < 2.5) or its continued fraction (beyond), each
/// accurate to ~1e-15 there: the reference GELU's independent of the kernel's fit.
pub fn erfc(x: f64) -> f64 {
    if x.abs() < 2.5 {
        // erf(x) = 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            let t = term / (2 * n + 1) as f64;
            sum += t;
            if t.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum
    } else if x > 0.0 {
        // erfc(x) = e^-x^2 / sqrt(pi) * 1 / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...))))
        let mut f = x;
        for k in (1..120).rev() {
            f = x + (k as f64 / 2.0) / f;
        }
        (-x * x).exp() / std::f64::consts::PI.sqrt() / f
    } else {
        2.0 - erfc(-x)
    }
}

/// PyTorch's activations, `convoy::ops::Act` by name, in float64.
pub fn activation(act: convoy::ops::Act, x: f64) -> f64 {
    use convoy::ops::Act;
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    match act {
        Act::None => x,
        Act::Relu => x.max(0.0),
        Act::Relu6 => x.clamp(0.0, 6.0),
        Act::LeakyRelu(s) => {
            if x > 0.0 {
                x
            } else {
                s as f64 * x
            }
        }
        Act::Sigmoid => sigmoid(x),
        Act::HardSigmoid => (x + 3.0).clamp(0.0, 6.0) / 6.0,
        Act::Silu => x * sigmoid(x),
        Act::HardSwish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
        Act::Gelu => x * 0.5 * erfc(-x / 2f64.sqrt()),
        // 1 + tanh(u) = 2 sigmoid(2u): the same function, without 1 + tanh's cancellation
        Act::GeluTanh => x * sigmoid(2.0 * (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)),
    }
}

/// d activation / dx at x, with PyTorch's choices at the kinks (relu 0 at 0, relu6 and
/// hardsigmoid 0 at theirs, hardswish x/3 + 1/2 on the closed [-3, 3]).
pub fn activation_grad(act: convoy::ops::Act, x: f64) -> f64 {
    use convoy::ops::Act;
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let step = |c: bool| if c { 1.0 } else { 0.0 };
    match act {
        Act::None => 1.0,
        Act::Relu => step(x > 0.0),
        Act::Relu6 => step(x > 0.0 && x < 6.0),
        Act::LeakyRelu(s) => {
            if x > 0.0 {
                1.0
            } else {
                s as f64
            }
        }
        Act::Sigmoid => sigmoid(x) * (1.0 - sigmoid(x)),
        Act::HardSigmoid => step(x > -3.0 && x < 3.0) / 6.0,
        Act::Silu => sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x))),
        Act::HardSwish => {
            if x < -3.0 {
                0.0
            } else if x <= 3.0 {
                x / 3.0 + 0.5
            } else {
                1.0
            }
        }
        Act::Gelu => 0.5 * erfc(-x / 2f64.sqrt()) + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt(),
        Act::GeluTanh => {
            // with s = sigmoid(2u): (1 + tanh u) / 2 = s and 1 - tanh(u)^2 = 4 s (1 - s)
            let k = (2.0 / std::f64::consts::PI).sqrt();
            let s = sigmoid(2.0 * k * (x + 0.044715 * x * x * x));
            let sm = sigmoid(-2.0 * k * (x + 0.044715 * x * x * x));
            s + 2.0 * x * s * sm * k * (1.0 + 3.0 * 0.044715 * x * x)
        }
    }
}

/// The source pixels of output index `o` along an axis of `n` inputs under nn.Upsample with
/// integer `scale` and align_corners=False, and the second one's weight: nearest is o / scale;
/// bilinear reads (o + 1/2) / scale - 1/2, clamped at 0, between its two neighbours.
pub fn upsample_taps(o: usize, n: usize, scale: usize, bilinear: bool) -> (usize, usize, f64) {
    if !bilinear {
        return (o / scale, o / scale, 0.0);
    }
    let src = ((o as f64 + 0.5) / scale as f64 - 0.5).max(0.0);
    let i0 = (src.floor() as usize).min(n - 1);
    (i0, (i0 + 1).min(n - 1), src - i0 as f64)
}

/// nn.Upsample(scale_factor=scale, align_corners=False) of x (N, C, H, W), plane by plane.
pub fn upsample(x: &[f64], [b, c, h, w]: [usize; 4], scale: usize, bilinear: bool) -> Vec<f64> {
    let mut y = Vec::with_capacity(x.len() * scale * scale);
    for p in 0..b * c {
        let at = |yy: usize, xx: usize| x[p * h * w + yy * w + xx];
        for oy in 0..h * scale {
            for ox in 0..w * scale {
                let (y0, y1, ly) = upsample_taps(oy, h, scale, bilinear);
                let (x0, x1, lx) = upsample_taps(ox, w, scale, bilinear);
                let top = (1.0 - lx) * at(y0, x0) + lx * at(y0, x1);
                let bottom = (1.0 - lx) * at(y1, x0) + lx * at(y1, x1);
                y.push((1.0 - ly) * top + ly * bottom);
            }
        }
    }
    y
}

/// Softmax over each row of `k` values, the row's max taken out first.
pub fn softmax(x: &[f64], k: usize) -> Vec<f64> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(k) {
        let m = row.iter().cloned().fold(f64::MIN, f64::max);
        let s: f64 = row.iter().map(|a| (a - m).exp()).sum();
        y.extend(row.iter().map(|a| (a - m).exp() / s));
    }
    y
}

/// F.pad(x, (left, right, top, bottom), value) of x (N, C, H, W); `pads` = (top, left, bottom,
/// right).
pub fn pad2d(x: &[f64], [b, c, h, w]: [usize; 4], pads: [usize; 4], value: f64) -> Vec<f64> {
    let (oh, ow) = (h + pads[0] + pads[2], w + pads[1] + pads[3]);
    let mut y = vec![value; b * c * oh * ow];
    for p in 0..b * c {
        for i in 0..h {
            for j in 0..w {
                y[(p * oh + i + pads[0]) * ow + j + pads[1]] = x[(p * h + i) * w + j];
            }
        }
    }
    y
}
