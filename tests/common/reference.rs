//! Plain float64 CPU references, written from the PyTorch definitions, loop by loop.

/// conv2d. x (N, Cin, H, W), w (Cout, Cin/g, KH, KW), b (Cout) -> (N, Cout, OH, OW).
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    x: &[f64],
    [n, cin, h, w]: [usize; 4],
    wt: &[f64],
    [cout, cin_g, kh, kw]: [usize; 4],
    b: Option<&[f64]>,
    stride: usize,
    pad: usize,
    dil: usize,
    groups: usize,
) -> (Vec<f64>, [usize; 4]) {
    let oh = (h + 2 * pad - dil * (kh - 1) - 1) / stride + 1;
    let ow = (w + 2 * pad - dil * (kw - 1) - 1) / stride + 1;
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
                                let iy = (oy * stride + ky * dil) as isize - pad as isize;
                                let ix = (ox * stride + kx * dil) as isize - pad as isize;
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
    stride: usize,
    pad: usize,
    dil: usize,
    groups: usize,
) -> (Vec<f64>, Vec<f64>) {
    let oh = (h + 2 * pad - dil * (kh - 1) - 1) / stride + 1;
    let ow = (w + 2 * pad - dil * (kw - 1) - 1) / stride + 1;
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
                                let iy = (oy * stride + ky * dil) as isize - pad as isize;
                                let ix = (ox * stride + kx * dil) as isize - pad as isize;
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

#[allow(clippy::too_many_arguments)]
pub fn max_pool2d(x: &[f64], [n, c, h, w]: [usize; 4], k: usize, s: usize, p: usize, d: usize, ceil: bool) -> Vec<f64> {
    let (oh, ow) = (pool_out(h, k, s, p, d, ceil), pool_out(w, k, s, p, d, ceil));
    let mut y = Vec::with_capacity(n * c * oh * ow);
    for pl in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut m = f64::NEG_INFINITY;
                for ky in 0..k {
                    for kx in 0..k {
                        let iy = (oy * s + ky * d) as isize - p as isize;
                        let ix = (ox * s + kx * d) as isize - p as isize;
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
    k: usize,
    s: usize,
    p: usize,
    include_pad: bool,
    ceil: bool,
) -> Vec<f64> {
    let (oh, ow) = (pool_out(h, k, s, p, 1, ceil), pool_out(w, k, s, p, 1, ceil));
    let mut y = Vec::with_capacity(n * c * oh * ow);
    for pl in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut sum, mut cnt, mut cnt_pad) = (0.0, 0usize, 0usize);
                for ky in 0..k {
                    for kx in 0..k {
                        let iy = (oy * s + ky) as isize - p as isize;
                        let ix = (ox * s + kx) as isize - p as isize;
                        // positions inside the padded input count for the divisor
                        if iy < (h + p) as isize && ix < (w + p) as isize {
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
