//! conv2d forward against the f64 reference.

use crate::common::{assert_close, gpu, open_gpu, per_lane_gpu, reference, rel_err, to_f64, RTOL};
use crate::sweep::Sweep;
use convoy::ops::{conv2d, Conv2dArgs};
use convoy::Rng;
use convoy::{DType, Tensor};

struct Case {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    groups: usize,
    bias: bool,
}

fn check(c: &Case, rng: &mut Rng) {
    let g = gpu();
    let xs = [c.n, c.cin, c.h, c.w];
    let ws = [c.cout, c.cin / c.groups, c.k, c.k];
    let x = rng.vec(xs.iter().product(), -1.0, 1.0);
    let w = rng.vec(ws.iter().product(), -0.5, 0.5);
    let b = rng.vec(c.cout, -1.0, 1.0);
    let xt = Tensor::from_slice(g, &x, xs).unwrap();
    let wt = Tensor::from_slice(g, &w, ws).unwrap();
    let bt = Tensor::from_slice(g, &b, [c.cout]).unwrap();
    let args = Conv2dArgs::new(c.stride, c.pad, c.dil, c.groups);
    let y = conv2d(g, &xt, &wt, c.bias.then_some(&bt), args).unwrap();
    let bf = to_f64(&b);
    let (want, shape) = reference::conv2d(
        &to_f64(&x),
        xs,
        &to_f64(&w),
        ws,
        c.bias.then_some(&bf[..]),
        c.stride,
        c.pad,
        c.dil,
        c.groups,
    );
    assert_eq!(y.dims(), shape);
    let what = format!(
        "conv2d x{xs:?} w{ws:?} s{} p{} d{} g{} bias {}",
        c.stride, c.pad, c.dil, c.groups, c.bias
    );
    assert_close(&what, &y.to_vec().unwrap(), &want, RTOL);
}

#[test]
fn conv2d_named_cases() {
    let mut rng = Rng::new(1);
    let cases = [
        // 1x1 pointwise, channels not multiples of 4
        Case {
            n: 2,
            cin: 7,
            h: 5,
            w: 6,
            cout: 9,
            k: 1,
            stride: 1,
            pad: 0,
            dil: 1,
            groups: 1,
            bias: true,
        },
        // 3x3 same padding, batch 1
        Case {
            n: 1,
            cin: 3,
            h: 9,
            w: 7,
            cout: 5,
            k: 3,
            stride: 1,
            pad: 1,
            dil: 1,
            groups: 1,
            bias: false,
        },
        // 5x5 stride 2
        Case {
            n: 3,
            cin: 4,
            h: 13,
            w: 11,
            cout: 6,
            k: 5,
            stride: 2,
            pad: 2,
            dil: 1,
            groups: 1,
            bias: true,
        },
        // the 7x7 stride-2 ResNet stem on RGB
        Case {
            n: 2,
            cin: 3,
            h: 23,
            w: 19,
            cout: 8,
            k: 7,
            stride: 2,
            pad: 3,
            dil: 1,
            groups: 1,
            bias: false,
        },
        // depthwise (MobileNet), stride 1 and 2
        Case {
            n: 2,
            cin: 6,
            h: 10,
            w: 9,
            cout: 6,
            k: 3,
            stride: 1,
            pad: 1,
            dil: 1,
            groups: 6,
            bias: true,
        },
        Case {
            n: 1,
            cin: 5,
            h: 11,
            w: 11,
            cout: 5,
            k: 3,
            stride: 2,
            pad: 1,
            dil: 1,
            groups: 5,
            bias: false,
        },
        // depthwise with channel multiplier 2
        Case {
            n: 2,
            cin: 3,
            h: 7,
            w: 8,
            cout: 6,
            k: 3,
            stride: 1,
            pad: 0,
            dil: 1,
            groups: 3,
            bias: true,
        },
        // grouped (ResNeXt-like), cout per group 3
        Case {
            n: 2,
            cin: 8,
            h: 9,
            w: 9,
            cout: 12,
            k: 3,
            stride: 1,
            pad: 1,
            dil: 1,
            groups: 4,
            bias: true,
        },
        // dilation 2
        Case {
            n: 2,
            cin: 3,
            h: 12,
            w: 10,
            cout: 4,
            k: 3,
            stride: 1,
            pad: 2,
            dil: 2,
            groups: 1,
            bias: false,
        },
        // dilation 2, stride 2, no padding
        Case {
            n: 1,
            cin: 2,
            h: 15,
            w: 14,
            cout: 3,
            k: 3,
            stride: 2,
            pad: 0,
            dil: 2,
            groups: 1,
            bias: true,
        },
        // kernel as large as the input: output 1x1
        Case {
            n: 3,
            cin: 4,
            h: 5,
            w: 5,
            cout: 10,
            k: 5,
            stride: 1,
            pad: 0,
            dil: 1,
            groups: 1,
            bias: true,
        },
    ];
    for c in &cases {
        check(c, &mut rng);
    }
}

#[test]
fn conv2d_random_shapes() {
    let mut rng = Rng::new(2);
    for _ in 0..24 {
        let groups = [1, 1, 2, 3][rng.int(0, 3)];
        let k = [1, 2, 3, 5][rng.int(0, 3)];
        let dil = rng.int(1, 2);
        let pad = rng.int(0, k / 2 * dil);
        let span = dil * (k - 1) + 1;
        let c = Case {
            n: rng.int(1, 3),
            cin: groups * rng.int(1, 5),
            h: rng.int(span, span + 9),
            w: rng.int(span, span + 9),
            cout: groups * rng.int(1, 6),
            k,
            stride: rng.int(1, 3),
            pad,
            dil,
            groups,
            bias: rng.int(0, 1) == 1,
        };
        check(&c, &mut rng);
    }
}

#[test]
fn conv2d_hand_set_top_edge_kernel() {
    // The top-edge detector of the MNIST chapter on an image whose top half is dark and bottom
    // half bright: the response is 3 on the rows straddling the edge and 0 elsewhere.
    let g = gpu();
    let mut img = vec![0.0f32; 6 * 6];
    img[18..].iter_mut().for_each(|v| *v = 1.0);
    let x = Tensor::from_slice(g, &img, [1, 1, 6, 6]).unwrap();
    let k = Tensor::from_slice(g, &[-1., -1., -1., 0., 0., 0., 1., 1., 1.], [1, 1, 3, 3]).unwrap();
    let y = conv2d(g, &x, &k, None, Conv2dArgs::default())
        .unwrap()
        .to_vec()
        .unwrap();
    let want = [0., 0., 0., 0., 3., 3., 3., 3., 3., 3., 3., 3., 0., 0., 0., 0.];
    assert_eq!(y, want);
}

#[test]
fn conv2d_rejects_bad_shapes() {
    let g = gpu();
    let x = Tensor::zeros(g, [1, 4, 8, 8]).unwrap();
    let w_bad_cin = Tensor::zeros(g, [2, 3, 3, 3]).unwrap();
    let err = conv2d(g, &x, &w_bad_cin, None, Conv2dArgs::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("conv2d") && err.contains("[2, 3, 3, 3]"), "{err}");
    let w = Tensor::zeros(g, [6, 2, 3, 3]).unwrap();
    let bad_groups = Conv2dArgs::default().groups(3);
    let err = conv2d(g, &x, &w, None, bad_groups).unwrap_err().to_string();
    assert!(err.contains("groups"), "{err}");
    let big = Tensor::zeros(g, [1, 4, 9, 9]).unwrap();
    let err = conv2d(g, &x, &big, None, Conv2dArgs::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("conv2d"), "{err}");
    let x3 = Tensor::zeros(g, [4, 8, 8]).unwrap();
    assert!(conv2d(g, &x3, &w_bad_cin, None, Conv2dArgs::default()).is_err());
    let zero_stride = Conv2dArgs::default().stride(0);
    assert!(conv2d(g, &x, &Tensor::zeros(g, [2, 4, 3, 3]).unwrap(), None, zero_stride).is_err());
    let bias = Tensor::zeros(g, [3]).unwrap();
    let err = conv2d(
        g,
        &x,
        &Tensor::zeros(g, [2, 4, 3, 3]).unwrap(),
        Some(&bias),
        Conv2dArgs::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("bias"), "{err}");
}

/// Every register tile the tuner may pick, for the forward, input-gradient and weight-gradient
/// kernels (the last also with small forced split-K chunks), against the f64 references. The
/// default run takes a rotating sample of the tiles on each shape (tests/kernels/sweep.rs); the
/// extended run takes them all.
#[test]
fn conv2d_tile_configurations_sampled() {
    every_tile_configuration(Sweep::Sample);
}

#[test]
#[ignore = "extended: every tile on every shape (cargo test --release -- --include-ignored)"]
fn conv2d_every_tile_configuration() {
    every_tile_configuration(Sweep::Every);
}

fn every_tile_configuration(sweep: Sweep) {
    use convoy::internals::kernels::conv::texture as conv_texture;
    use convoy::internals::kernels::conv::{self, ConvTile, TileKind};
    use convoy::ops::Conv2dGeom;
    let g = gpu();
    let mut rng = Rng::new(3);
    // (n, cin, hw, cout, k, stride, pad, dil, groups): dense, strided, grouped, depthwise, 1x1
    let shapes = [
        (2, 5, 9, 11, 3, 1, 1, 1, 1),
        (1, 12, 10, 9, 3, 2, 1, 1, 1),
        (2, 6, 8, 6, 3, 1, 2, 2, 3),
        (1, 7, 11, 7, 3, 2, 1, 1, 7),
        (3, 10, 7, 17, 1, 1, 0, 1, 1),
        (1, 3, 13, 8, 5, 3, 2, 1, 1),
        (2, 9, 16, 12, 1, 1, 0, 1, 1), // 1x1 on a map that fills gemm_rows: its path in conv::forward
        // stride phases that no tap reaches (1x1 stride 2), with no pixels (1x1 input), dilated
        (2, 4, 7, 5, 1, 2, 0, 1, 1),
        (1, 4, 1, 6, 1, 2, 0, 1, 1),
        (1, 6, 9, 4, 3, 2, 2, 2, 1),
        // more pixels than one workgroup covers
        (4, 6, 16, 10, 3, 1, 1, 1, 1),
        // small maps, where taps read only padding: 1x1 (the centre tap alone), stride 2 onto
        // 1x1 (4 taps), a 5x5 on 2x2 (taps 1..4), and a conv whose every tap reads padding
        (8, 16, 1, 12, 3, 1, 1, 1, 1),
        (5, 9, 2, 7, 3, 2, 1, 1, 1),
        (3, 5, 2, 6, 5, 1, 2, 1, 1),
        (2, 3, 1, 4, 1, 2, 1, 1, 1),
        // a 1x1 conv on maps too small for gemm_rows (the implicit-GEMM kernel instead)
        (16, 8, 2, 12, 1, 1, 0, 1, 1),
        // few weight columns per group (the narrow weight gradient): depthwise with stride 2 and
        // more pixels than a workgroup's lanes, a depth multiplier of 2, 5x5 depthwise (25
        // columns), 3 input channels per group (27), 32 columns exactly, a dilated depthwise
        (3, 6, 13, 6, 3, 2, 1, 1, 6),
        (2, 4, 9, 8, 3, 1, 1, 1, 4),
        (2, 3, 12, 3, 5, 1, 2, 1, 3),
        (1, 6, 10, 4, 3, 1, 1, 1, 2),
        (2, 8, 5, 4, 4, 1, 2, 1, 4),
        (2, 5, 11, 5, 3, 1, 2, 2, 5),
        // rows that hold whole invocations (output width, or a stride phase's width, a multiple
        // of 4) with few channels per group: the row-segment paths of the forward and the
        // input gradient. Depthwise 3x3 stride 1 and 2, 5x5 dilated with a multiplier of 2, a
        // 7x7 stride-2 stem, a 4x4 map whose taps reach into padding, stride 3, a 2x2 stride 2
        // (one tap per phase), a 1x1 stride 2 (phases no tap reaches), several workgroups
        (2, 5, 12, 5, 3, 1, 1, 1, 5),
        (2, 4, 16, 4, 3, 2, 1, 1, 4),
        (1, 3, 8, 6, 5, 1, 4, 2, 3),
        (2, 3, 16, 8, 7, 2, 3, 1, 1),
        (3, 2, 4, 2, 5, 1, 2, 1, 2),
        (1, 2, 12, 2, 3, 3, 1, 1, 2),
        (1, 4, 8, 4, 2, 2, 0, 1, 4),
        (2, 4, 8, 4, 1, 2, 0, 1, 4),
        (3, 2, 24, 2, 3, 1, 1, 1, 2),
        // the input gradient's cell kernel: a dilation too large for one dy segment (tap by
        // tap), stride 3 with a multiplier of 3, stride 4 (cells with phases no tap reaches),
        // a 1x1 map
        (1, 2, 32, 2, 3, 1, 15, 15, 2),
        (2, 2, 11, 6, 3, 3, 1, 1, 2),
        (1, 3, 10, 3, 3, 4, 2, 1, 3),
        (4, 3, 1, 3, 3, 1, 1, 1, 3),
    ];
    for (case, (n, cin, hw, cout, k, stride, pad, dil, groups)) in shapes.into_iter().enumerate() {
        let xs = [n, cin, hw, hw];
        let ws = [cout, cin / groups, k, k];
        let args = Conv2dArgs::new(stride, pad, dil, groups);
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        let ys = geom.out_shape();
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let dy = rng.vec(ys.numel(), -1.0, 1.0);
        let (want_y, _) = reference::conv2d(&to_f64(&x), xs, &to_f64(&w), ws, None, stride, pad, dil, groups);
        let (want_dx, want_dw) =
            reference::conv2d_backward(&to_f64(&x), xs, &to_f64(&w), ws, &to_f64(&dy), stride, pad, dil, groups);
        let xt = Tensor::from_slice(g, &x, xs).unwrap();
        let wt = Tensor::from_slice(g, &w, ws).unwrap();
        let dyt = Tensor::from_slice(g, &dy, ys.clone()).unwrap();
        let what = format!("x{xs:?} w{ws:?} s{stride} p{pad} d{dil} g{groups}");
        // the input pixels of the largest stride phase: the input gradient's columns
        let in_pixels = n * hw.div_ceil(stride) * hw.div_ceil(stride);
        let y = Tensor::zeros(g, ys.clone()).unwrap();
        let d = conv::forward(
            g,
            &geom,
            Default::default(),
            DType::F32,
            &conv::ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer()),
        )
        .unwrap();
        g.run(&d);
        assert_close(&format!("forward {what} default"), &y.to_vec().unwrap(), &want_y, RTOL);
        let out_pixels = ys.numel() / cout;
        for tile in sweep.pick(ConvTile::candidates(g, cout / groups, out_pixels), case) {
            let y = Tensor::zeros(g, ys.clone()).unwrap();
            let d = conv::forward_tiled(
                g,
                &geom,
                tile,
                Default::default(),
                DType::F32,
                &conv::ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer()),
            )
            .unwrap();
            g.run(&d);
            assert_close(&format!("forward {what} {tile:?}"), &y.to_vec().unwrap(), &want_y, RTOL);
            for chunk in [None, Some(1), Some(7)] {
                let dw = Tensor::empty(g, ws).unwrap(); // NaN: every tap written, dead ones as 0
                let bufs = conv::WeightGradientBuffers {
                    dy: dyt.buffer(),
                    x: xt.buffer(),
                    dw: dw.buffer(),
                };
                let ds = conv::backward_weight_tiled(g, &geom, tile, chunk, &bufs).unwrap();
                g.run(&ds);
                let got = dw.to_vec().unwrap();
                assert_close(
                    &format!("weight grad {what} {tile:?} chunk {chunk:?}"),
                    &got,
                    &want_dw,
                    RTOL,
                );
            }
        }
        // the gpu family's block tiles, whatever the policy would pick: the weight gradient
        // with its default split and forced chunks of 1 and 7 pixels (partial steps of 8)
        for chunk in [None, Some(1), Some(7)] {
            let dw = Tensor::empty(g, ws).unwrap(); // NaN: every weight written
            let bufs = conv::WeightGradientBuffers {
                dy: dyt.buffer(),
                x: xt.buffer(),
                dw: dw.buffer(),
            };
            let ds = conv::backward_weight_tiled(g, &geom, ConvTile::BLOCK, chunk, &bufs).unwrap();
            g.run(&ds);
            assert_close(
                &format!("block weight grad {what} chunk {chunk:?}"),
                &dw.to_vec().unwrap(),
                &want_dw,
                RTOL,
            );
        }
        let y = Tensor::empty(g, ys.clone()).unwrap(); // NaN: every output written
        let d = conv::forward_tiled(
            g,
            &geom,
            ConvTile::BLOCK,
            Default::default(),
            DType::F32,
            &conv::ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer()),
        )
        .unwrap();
        g.run(&d);
        assert_close(&format!("block forward {what}"), &y.to_vec().unwrap(), &want_y, RTOL);
        // the CPU family's texture kernels, whatever the policy would pick: every texture tile
        // the tuner may pick and a few odd ones (rows and widths off the defaults), and the
        // weight gradient through the texture with forced split-K chunks; with the fetches all
        // lanes share made once per subgroup lane (the default here) and by every lane
        for (turn, (dev, sharing)) in [(g, "shared"), (per_lane_gpu(), "per lane")].into_iter().enumerate() {
            let turn = case * 2 + turn;
            let xt = Tensor::from_slice(dev, &x, xs).unwrap();
            let wt = Tensor::from_slice(dev, &w, ws).unwrap();
            let dyt = Tensor::from_slice(dev, &dy, ys.clone()).unwrap();
            let what = format!("{what}, {sharing}");
            let g = dev;
            let mut tiles = ConvTile::texture_candidates(g, cout / groups, out_pixels);
            for (px, ocb, wg) in [(4, 3, 8), (8, 1, 64), (8, 5, 16), (4, 8, 128)] {
                tiles.push(ConvTile {
                    ocb,
                    wg,
                    kind: TileKind::Texture { px },
                });
            }
            for tile in sweep.pick(tiles, turn) {
                let y = Tensor::empty(g, ys.clone()).unwrap(); // NaN: every output written
                let ds = conv::forward_tiled(
                    g,
                    &geom,
                    tile,
                    Default::default(),
                    DType::F32,
                    &conv::ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer()),
                )
                .unwrap();
                g.run(&ds);
                assert_close(
                    &format!("texture forward {what} {tile:?}"),
                    &y.to_vec().unwrap(),
                    &want_y,
                    RTOL,
                );
            }
            for tile in sweep.pick(ConvTile::candidates(g, cout / groups, out_pixels), turn) {
                // one or two texel columns per lane, whichever the policy would pick
                for (chunk, columns) in [(None, 1), (None, 2), (Some(1), 2), (Some(7), 1)] {
                    let dw = Tensor::empty(g, ws).unwrap();
                    let bufs = conv::WeightGradientBuffers {
                        dy: dyt.buffer(),
                        x: xt.buffer(),
                        dw: dw.buffer(),
                    };
                    let ds = conv_texture::backward_weight(g, &geom, tile, columns, chunk, &bufs, None).unwrap();
                    g.run(&ds);
                    assert_close(
                        &format!("texture weight grad {what} {tile:?} chunk {chunk:?} columns {columns}"),
                        &dw.to_vec().unwrap(),
                        &want_dw,
                        RTOL,
                    );
                }
            }
        }
        // NaN-filled: every pixel of every stride phase must be written
        let dx = Tensor::empty(g, xs).unwrap();
        let ds = conv::backward_data(g, &geom, dyt.buffer(), wt.buffer(), dx.buffer(), DType::F32, None).unwrap();
        g.run(&ds);
        assert_close(
            &format!("input grad {what} default"),
            &dx.to_vec().unwrap(),
            &want_dx,
            RTOL,
        );
        if cout / groups < 4 {
            // few output channels per group: the cell kernel alone, the tiled one refuses
            let dx = Tensor::empty(g, xs).unwrap();
            let d = conv::backward_data_narrow(g, &geom, dyt.buffer(), wt.buffer(), dx.buffer()).unwrap();
            g.run(&[d]);
            assert_close(
                &format!("narrow input grad {what}"),
                &dx.to_vec().unwrap(),
                &want_dx,
                RTOL,
            );
            let tile = ConvTile::default_for(g, cin / groups, in_pixels);
            let err = conv::backward_data_tiled(g, &geom, tile, dyt.buffer(), wt.buffer(), dx.buffer())
                .err()
                .expect("the tiled input gradient refuses narrow groups")
                .to_string();
            assert!(err.contains("backward_data_narrow"), "{err}");
        } else {
            for tile in sweep.pick(ConvTile::candidates(g, cin / groups, in_pixels), case) {
                let dx = Tensor::empty(g, xs).unwrap();
                let ds = conv::backward_data_tiled(g, &geom, tile, dyt.buffer(), wt.buffer(), dx.buffer()).unwrap();
                g.run(&ds);
                assert_close(
                    &format!("input grad {what} {tile:?}"),
                    &dx.to_vec().unwrap(),
                    &want_dx,
                    RTOL,
                );
            }
        }
        if (cin / groups) * k * k > 32 {
            let dw = Tensor::empty(g, ws).unwrap();
            let bufs = conv::WeightGradientBuffers {
                dy: dyt.buffer(),
                x: xt.buffer(),
                dw: dw.buffer(),
            };
            let narrow = conv::backward_weight_narrow(g, &geom, None, &bufs);
            let err = narrow
                .err()
                .expect("the narrow weight gradient refuses wide groups")
                .to_string();
            assert!(err.contains("weight columns per group"), "{err}");
            continue;
        }
        for chunk in [None, Some(1), Some(7), Some(100)] {
            let dw = Tensor::empty(g, ws).unwrap(); // NaN: every weight written
            let bufs = conv::WeightGradientBuffers {
                dy: dyt.buffer(),
                x: xt.buffer(),
                dw: dw.buffer(),
            };
            let ds = conv::backward_weight_narrow(g, &geom, chunk, &bufs).unwrap();
            g.run(&ds);
            assert_close(
                &format!("narrow weight grad {what} chunk {chunk:?}"),
                &dw.to_vec().unwrap(),
                &want_dw,
                RTOL,
            );
        }
    }
}

/// The gpu family's block kernel (64 x 64 tiles staged through workgroup memory, K in chunks of
/// 8) and the texture kernel with every tile, epilogue on, against the f64 reference: K and the
/// pixels not multiples of the chunk and tile, several channel and pixel blocks, groups,
/// strides, padding, dilation, fewer channels than a tile, a 1x1 map whose taps are mostly
/// padding, batch 1. The texture tiles: a rotating sample by default (tests/kernels/sweep.rs),
/// all of them in the extended run.
#[test]
fn conv2d_block_and_texture_tiles_match_reference() {
    block_and_texture_tiles_match_reference(Sweep::Sample);
}

#[test]
#[ignore = "extended: every tile on every shape (cargo test --release -- --include-ignored)"]
fn conv2d_block_and_texture_tiles_match_reference_every_tile() {
    block_and_texture_tiles_match_reference(Sweep::Every);
}

fn block_and_texture_tiles_match_reference(sweep: Sweep) {
    use convoy::graph::{Act, Epilogue};
    use convoy::internals::kernels::conv::{self, ConvTile, TileKind};
    use convoy::ops::Conv2dGeom;
    let g = gpu();
    let mut rng = Rng::new(17);
    // (n, cin, h, w, cout, k, stride, pad, dil, groups)
    let shapes = [
        (2, 5, 9, 11, 20, 3, 1, 1, 1, 1),
        (1, 24, 10, 7, 40, 3, 2, 1, 1, 1),
        (3, 16, 6, 6, 70, 1, 1, 0, 1, 1),
        (2, 12, 8, 9, 36, 3, 1, 2, 2, 2),
        (1, 3, 17, 15, 33, 5, 2, 2, 1, 1),
        (5, 32, 1, 1, 17, 3, 1, 1, 1, 1),
        (2, 37, 13, 11, 130, 3, 1, 1, 1, 1),
        (1, 64, 9, 9, 96, 1, 2, 0, 1, 2),
        (3, 10, 12, 12, 66, 3, 1, 2, 2, 1),
        (4, 96, 5, 5, 576, 1, 1, 0, 1, 1),
        (4, 960, 3, 3, 320, 1, 1, 0, 1, 1),
        (4, 320, 3, 3, 1280, 1, 1, 0, 1, 1),
        (4, 16, 34, 34, 96, 1, 1, 0, 1, 1),
        // transposed paddings 3 and 2 (input gradient through the block forward)
        (2, 7, 10, 9, 40, 5, 1, 1, 1, 1),
        (1, 33, 8, 8, 24, 3, 1, 0, 1, 1),
    ];
    for (case, (n, cin, h, w, cout, k, stride, pad, dil, groups)) in shapes.into_iter().enumerate() {
        // each case fuses another activation into the epilogue
        let act = Act::ALL[case % Act::ALL.len()];
        let xs = [n, cin, h, w];
        let ws = [cout, cin / groups, k, k];
        let args = Conv2dArgs::new(stride, pad, dil, groups);
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        let ys = geom.out_shape();
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let wv = rng.vec(ws.iter().product(), -0.5, 0.5);
        let b = rng.vec(cout, -1.0, 1.0);
        let r = rng.vec(ys.numel(), -1.0, 1.0);
        let (conv, _) = reference::conv2d(
            &to_f64(&x),
            xs,
            &to_f64(&wv),
            ws,
            Some(&to_f64(&b)),
            stride,
            pad,
            dil,
            groups,
        );
        let want: Vec<f64> = conv
            .iter()
            .zip(&r)
            .map(|(c, &r)| reference::activation(act, c + r as f64))
            .collect();
        // the block weight gradient (default split, and chunks that end mid-step)
        let dy = rng.vec(ys.numel(), -1.0, 1.0);
        let (want_dx, want_dw) = reference::conv2d_backward(
            &to_f64(&x),
            xs,
            &to_f64(&wv),
            ws,
            &to_f64(&dy),
            stride,
            pad,
            dil,
            groups,
        );
        let xt = Tensor::from_slice(g, &x, xs).unwrap();
        let dyt = Tensor::from_slice(g, &dy, ys.clone()).unwrap();
        for chunk in [None, Some(13)] {
            let dw = Tensor::empty(g, ws).unwrap();
            let bufs = conv::WeightGradientBuffers {
                dy: dyt.buffer(),
                x: xt.buffer(),
                dw: dw.buffer(),
            };
            let ds = conv::backward_weight_tiled(g, &geom, ConvTile::BLOCK, chunk, &bufs).unwrap();
            g.run(&ds);
            let what = format!("block weight grad x{xs:?} w{ws:?} s{stride} p{pad} d{dil} g{groups} chunk {chunk:?}");
            assert_close(&what, &dw.to_vec().unwrap(), &want_dw, RTOL);
        }
        let wt = Tensor::from_slice(g, &wv, ws).unwrap();
        // the block input gradient: the block forward of dy with transposed weights (stride 1),
        // or the forward of each stride phase
        let dx = Tensor::empty(g, xs).unwrap();
        let ds = conv::backward_data_tiled(g, &geom, ConvTile::BLOCK, dyt.buffer(), wt.buffer(), dx.buffer()).unwrap();
        g.run(&ds);
        let what = format!("block input grad x{xs:?} w{ws:?} s{stride} p{pad} d{dil} g{groups}");
        assert_close(&what, &dx.to_vec().unwrap(), &want_dx, RTOL);
        // the cpu family's texture input gradient: the texture forward of dy with transposed
        // weights, one stride phase at a time (3+ output channels per group, under the texture
        // policy; every shape here pads within the kernel's reach)
        let dx = Tensor::empty(g, xs).unwrap();
        let texture_dx = conv::backward_data_texture(g, &geom, dyt.buffer(), wt.buffer(), dx.buffer());
        let what = format!("texture input grad x{xs:?} w{ws:?} s{stride} p{pad} d{dil} g{groups}");
        let expect = g.policy().texture_operands && cout / groups >= 3;
        assert_eq!(texture_dx.is_ok(), expect, "{what}: offered");
        if let Ok(ds) = texture_dx {
            g.run(&ds);
            assert_close(&what, &dx.to_vec().unwrap(), &want_dx, RTOL);
        }
        let epi = Epilogue { residual: true, act };
        // the block tile, and the texture tiles (CPU family) with the same epilogue, their
        // weight fetches shared across subgroups and made by every lane
        let pixels = ys.numel() / cout;
        for (turn, (dev, sharing)) in [(g, "shared"), (per_lane_gpu(), "per lane")].into_iter().enumerate() {
            let xt = Tensor::from_slice(dev, &x, xs).unwrap();
            let wt = Tensor::from_slice(dev, &wv, ws).unwrap();
            let bt = Tensor::from_slice(dev, &b, [cout]).unwrap();
            let rt = Tensor::from_slice(dev, &r, ys.clone()).unwrap();
            let tiles = sweep.pick(
                ConvTile::texture_candidates(dev, cout / groups, pixels),
                case * 2 + turn,
            );
            for tile in std::iter::once(ConvTile::BLOCK).chain(tiles) {
                let y = Tensor::empty(dev, ys.clone()).unwrap(); // NaN: every output written
                let d = conv::forward_tiled(
                    dev,
                    &geom,
                    tile,
                    epi,
                    DType::F32,
                    &conv::ForwardBuffers {
                        x: xt.buffer(),
                        w: wt.buffer(),
                        bias: Some(bt.buffer()),
                        residual: Some(rt.buffer()),
                        y: y.buffer(),
                        stats: None,
                        kept: None,
                        placement: None,
                        x_packed: None,
                        w_transposed: None,
                    },
                )
                .unwrap();
                dev.run(&d);
                let what = format!(
                    "fused-epilogue ({}) forward x{xs:?} w{ws:?} s{stride} p{pad} d{dil} g{groups} {tile:?}, {sharing}",
                    act.name()
                );
                assert_close(&what, &y.to_vec().unwrap(), &want, RTOL);
            }
        }
    }
    // the forward's candidates offer the block tile for wide groups only: first on the gpu
    // family from 32 channels, to the tuner after the register tiles on the cpu family
    let gpu_family = convoy::Gpu::builder()
        .kernels(convoy::KernelFamily::Gpu)
        .build()
        .unwrap();
    let cpu_family = convoy::Gpu::builder()
        .kernels(convoy::KernelFamily::Cpu)
        .build()
        .unwrap();
    assert_eq!(ConvTile::forward_candidates(&gpu_family, 64, 4096)[0], ConvTile::BLOCK);
    assert_eq!(ConvTile::forward_candidates(&gpu_family, 32, 4096)[0], ConvTile::BLOCK);
    assert_eq!(
        ConvTile::forward_candidates(&gpu_family, 16, 4096)[0].kind,
        TileKind::Register
    );
    let cpu = ConvTile::forward_candidates(&cpu_family, 64, 4096);
    assert!(cpu[0].kind == TileKind::Register && cpu.iter().filter(|t| **t == ConvTile::BLOCK).count() == 1);
    for gpu in [&gpu_family, &cpu_family] {
        assert!(ConvTile::forward_candidates(gpu, 8, 4096)
            .iter()
            .all(|t| t.kind != TileKind::Block));
    }
}

/// `kernel` with its `i`-th `workgroupBarrier();` cut out, under a name of its own (pipelines
/// are cached by name).
pub fn without_barrier(
    kernel: &convoy::internals::device::Shader,
    i: usize,
) -> &'static convoy::internals::device::Shader {
    let barrier = "workgroupBarrier();";
    let at = kernel
        .source
        .match_indices(barrier)
        .nth(i)
        .expect("the kernel has that barrier")
        .0;
    let cut = format!("{}{}", &kernel.source[..at], &kernel.source[at + barrier.len()..]);
    Box::leak(Box::new(convoy::internals::device::Shader {
        name: Box::leak(format!("{}_without_barrier_{i}", kernel.name).into_boxed_str()),
        source: Box::leak(cut.into_boxed_str()),
        bindings: kernel.bindings,
        trusted: false,
    }))
}

/// Workgroup-memory races must not hide behind a CPU driver's lock-step lanes: the block kernel
/// with any one of its barriers deleted gives a wrong result (lavapipe runs a workgroup's lanes
/// 8 or 16 at a time up to each barrier, so a lane reading a stage before the others stored it
/// reads stale values), while the kernel as written matches the f64 reference. Shows that the
/// reference tests above would catch a missing barrier in the main loop or in the statistics.
#[test]
fn conv2d_block_kernel_fails_without_any_one_of_its_barriers() {
    use convoy::internals::device::Shader;
    use convoy::internals::kernels::{conv, shaders};
    use convoy::ops::Conv2dGeom;
    let g = gpu();
    let mut rng = Rng::new(23);
    let (xs, ws) = ([2, 21, 9, 10], [70, 21, 3, 3]);
    let args = Conv2dArgs::default().padding(1);
    let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
    let ys = geom.out_shape();
    let yd = ys.dims().to_vec();
    let pixels = yd[0] * yd[2] * yd[3];
    let x = rng.vec(xs.iter().product(), -1.0, 1.0);
    let w = rng.vec(ws.iter().product(), -0.5, 0.5);
    let (want, _) = reference::conv2d(&to_f64(&x), xs, &to_f64(&w), ws, None, 1, 1, 1, 1);
    let (want_mean, want_var) = reference::channel_stats(&want, [yd[0], yd[1], yd[2], yd[3]]);
    let xt = Tensor::from_slice(g, &x, xs).unwrap();
    let wt = Tensor::from_slice(g, &w, ws).unwrap();
    // y, and the per-channel mean and variance merged from the kernel's block statistics
    let run = |kernel: &'static Shader| -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let y = Tensor::empty(g, ys.clone()).unwrap();
        let blocks = pixels.div_ceil(conv::STATS_BLOCK);
        let partials = Tensor::empty(g, [blocks, yd[1], 2]).unwrap();
        let (mean, var) = (Tensor::empty(g, [yd[1]]).unwrap(), Tensor::empty(g, [yd[1]]).unwrap());
        let running = Tensor::zeros(g, [yd[1]]).unwrap();
        let mut ds = conv::forward_block(
            g,
            kernel,
            &geom,
            Default::default(),
            DType::F32,
            &conv::ForwardBuffers {
                stats: Some(partials.buffer()),
                ..conv::ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer())
            },
        )
        .unwrap();
        ds.push(
            convoy::internals::kernels::norm::merge_stats(
                g,
                [yd[0], yd[1], yd[2] * yd[3]],
                0.1,
                false,
                &convoy::internals::kernels::norm::StatsBuffers {
                    input: partials.buffer(),
                    mean: mean.buffer(),
                    var: var.buffer(),
                    running_mean: running.buffer(),
                    running_var: running.buffer(),
                },
            )
            .unwrap(),
        );
        g.run(&ds);
        (y.to_vec().unwrap(), mean.to_vec().unwrap(), var.to_vec().unwrap())
    };
    let close = |got: &[f32], want: &[f64]| {
        got.iter()
            .zip(want)
            .all(|(&a, &b)| (a as f64 - b).abs() <= RTOL * (1.0 + b.abs()))
    };
    let (y, mean, var) = run(&shaders::CONV2D_FWD_BLOCK);
    assert_close("block forward", &y, &want, RTOL);
    assert_close("block statistics: mean", &mean, &want_mean, RTOL);
    assert_close("block statistics: variance", &var, &want_var, RTOL);
    let source = shaders::CONV2D_FWD_BLOCK.source;
    let barrier = "workgroupBarrier();";
    let count = source.matches(barrier).count();
    assert_eq!(
        count, 4,
        "the block kernel's barriers: 2 in the main loop, 2 in the statistics"
    );
    for i in 0..count {
        let (y, mean, var) = run(without_barrier(&shaders::CONV2D_FWD_BLOCK, i));
        assert!(
            !(close(&y, &want) && close(&mean, &want_mean) && close(&var, &want_var)),
            "barrier {i} deleted and the block kernel still matches the reference: a test could not catch a race"
        );
    }
}

/// The block weight gradient's two barriers, each shown necessary the same way.
#[test]
fn conv2d_block_weight_gradient_fails_without_either_barrier() {
    use convoy::internals::device::Shader;
    use convoy::internals::kernels::{conv, shaders};
    use convoy::ops::Conv2dGeom;
    let g = gpu();
    let mut rng = Rng::new(29);
    let (xs, ws) = ([3, 19, 8, 9], [70, 19, 3, 3]);
    let args = Conv2dArgs::default().padding(1);
    let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
    let ys = geom.out_shape();
    let x = rng.vec(xs.iter().product(), -1.0, 1.0);
    let w = rng.vec(ws.iter().product(), -0.5, 0.5);
    let dy = rng.vec(ys.numel(), -1.0, 1.0);
    let (_, want) = reference::conv2d_backward(&to_f64(&x), xs, &to_f64(&w), ws, &to_f64(&dy), 1, 1, 1, 1);
    let xt = Tensor::from_slice(g, &x, xs).unwrap();
    let dyt = Tensor::from_slice(g, &dy, ys).unwrap();
    let run = |kernel: &'static Shader| {
        let dw = Tensor::empty(g, ws).unwrap();
        let bufs = conv::WeightGradientBuffers {
            dy: dyt.buffer(),
            x: xt.buffer(),
            dw: dw.buffer(),
        };
        let ds = conv::backward_weight_block(g, kernel, &geom, Some(100), &bufs).unwrap();
        g.run(&ds);
        dw.to_vec().unwrap()
    };
    let block = [conv::ConvTile::BLOCK];
    assert_barriers_needed(&shaders::CONV2D_BWD_WEIGHT_BLOCK, 2, &block, &want, |k, _| run(k));
}

/// The buffers of a forward of x, w (and the optional bias and residual) into y.
pub fn forward_buffers<'a>(
    x: &'a Tensor,
    w: &'a Tensor,
    bias: Option<&'a Tensor>,
    residual: Option<&'a Tensor>,
    y: &'a Tensor,
) -> convoy::internals::kernels::conv::ForwardBuffers<'a> {
    convoy::internals::kernels::conv::ForwardBuffers {
        bias: bias.map(Tensor::buffer),
        residual: residual.map(Tensor::buffer),
        ..convoy::internals::kernels::conv::ForwardBuffers::new(x.buffer(), w.buffer(), y.buffer())
    }
}

/// The large tiles of conv2d_fwd_mm, unsplit and split over K: 3 slices of 128 x 128 (fewer
/// where K has fewer chunks of 16), 5 of 64 x 128.
fn mm_forward_tiles() -> [convoy::internals::kernels::conv::ConvTile; 4] {
    use convoy::internals::kernels::conv::{ConvTile, TileKind};
    let split = |t: ConvTile, slices| ConvTile {
        kind: TileKind::MmSplit { slices },
        ..t
    };
    [
        ConvTile::MM_128,
        ConvTile::MM_64,
        split(ConvTile::MM_128, 3),
        split(ConvTile::MM_64, 5),
    ]
}

/// The gpu family's large-tile forward (conv2d_fwd_mm: 128 or 64 output channels x 128 pixels
/// per workgroup, K in double-buffered chunks of 16) in its tiles, unsplit and split over K
/// (`mm_forward_tiles`), against the f64 reference: output channels and pixels below, at and above one tile and off its multiples,
/// K off the chunk (and exactly 4 chunks), batch 1, 1x1 maps whose taps are mostly padding,
/// 1x1 convs, strides 2 and 3, dilation 2, 2 groups of 64 input and 70 output channels, per-axis
/// (asymmetric) kernels, strides, padding and dilation, whole tiles in every dimension with and
/// without padding (the aligned variants), and each epilogue: with and without bias and
/// residual, every activation in turn.
#[test]
fn conv2d_mm_tiles_match_reference() {
    use convoy::graph::{Act, Epilogue};
    use convoy::internals::kernels::conv;
    use convoy::ops::Conv2dGeom;
    let g = gpu();
    let mut rng = Rng::new(38);
    // (x, cout, kernel, stride, padding, dilation, groups)
    let cases = [
        ([2, 37, 13, 11], 130, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        ([1, 16, 9, 7], 70, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        ([5, 32, 1, 1], 100, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        ([3, 64, 12, 12], 200, [1, 1], [1, 1], [0, 0], [1, 1], 1),
        ([2, 24, 17, 15], 96, [3, 3], [2, 2], [1, 1], [1, 1], 1),
        ([1, 20, 20, 19], 72, [5, 5], [3, 3], [2, 2], [1, 1], 1),
        ([2, 18, 12, 12], 66, [3, 3], [1, 1], [2, 2], [2, 2], 1),
        ([2, 128, 8, 9], 140, [3, 3], [1, 1], [1, 1], [1, 1], 2),
        ([2, 9, 11, 16], 129, [3, 2], [1, 2], [2, 0], [1, 2], 1),
        ([1, 12, 7, 40], 64, [1, 7], [2, 1], [0, 3], [1, 1], 1),
        ([3, 5, 23, 21], 256, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        // whole tiles in every dimension (the aligned variant), padded and not
        ([2, 16, 8, 8], 128, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        ([2, 64, 16, 8], 128, [1, 1], [1, 1], [0, 0], [1, 1], 1),
        ([2, 32, 17, 17], 64, [3, 3], [2, 2], [0, 0], [1, 1], 1),
    ];
    for (case, (xs, cout, [kh, kw], stride, padding, dilation, groups)) in cases.into_iter().enumerate() {
        let args = Conv2dArgs::new(1, 0, 1, groups).hw(stride, padding, dilation);
        let ws = [cout, xs[1] / groups, kh, kw];
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        let ys = geom.out_shape();
        let act = Act::ALL[case % Act::ALL.len()];
        let (bias, residual) = (case % 2 == 0, case % 3 != 1);
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let b = rng.vec(cout, -1.0, 1.0);
        let r = rng.vec(ys.numel(), -1.0, 1.0);
        let b64 = to_f64(&b);
        let (conv, _) = reference::conv2d(
            &to_f64(&x),
            xs,
            &to_f64(&w),
            ws,
            bias.then_some(&b64[..]),
            stride,
            padding,
            dilation,
            groups,
        );
        let want: Vec<f64> = conv
            .iter()
            .zip(&r)
            .map(|(&c, &r)| reference::activation(act, c + if residual { r as f64 } else { 0.0 }))
            .collect();
        let t = |v: &[f32], s: Vec<usize>| Tensor::from_slice(g, v, s).unwrap();
        let (xt, wt, bt, rt) = (
            t(&x, xs.to_vec()),
            t(&w, ws.to_vec()),
            t(&b, vec![cout]),
            t(&r, ys.dims().to_vec()),
        );
        let epi = Epilogue { residual, act };
        for tile in mm_forward_tiles() {
            let y = Tensor::empty(g, ys.clone()).unwrap(); // NaN: every output written
            let bufs = forward_buffers(&xt, &wt, bias.then_some(&bt), residual.then_some(&rt), &y);
            g.run(&conv::forward_tiled(g, &geom, tile, epi, DType::F32, &bufs).unwrap());
            let what = format!(
                "mm forward x{xs:?} w{ws:?} {args:?} {tile:?} bias {bias} residual {residual} {}",
                act.name()
            );
            assert_close(&what, &y.to_vec().unwrap(), &want, RTOL);
        }
    }
}

/// The large tiles on f16 activations (the kernel's `alias T = f16` variant): loads widen to
/// f32, the sums stay f32, one rounding on the store (tests/kernels/half.rs).
#[test]
fn conv2d_mm_tiles_on_f16_match_reference() {
    use crate::half::{round_f16, HALF_RTOL};
    use convoy::graph::{Act, Epilogue};
    use convoy::internals::kernels::conv;
    use convoy::ops::Conv2dGeom;
    let g = gpu();
    if !crate::common::has_f16_else_refused(g) {
        return;
    }
    let mut rng = Rng::new(39);
    for (xs, cout, k, stride, pad) in [([2, 40, 11, 13], 150, 3, 1, 1), ([3, 64, 6, 7], 64, 1, 2, 0)] {
        let args = Conv2dArgs::new(stride, pad, 1, 1);
        let ws = [cout, xs[1], k, k];
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        let ys = geom.out_shape();
        let x = rng.vec(xs.iter().product(), -2.0, 2.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let r = rng.vec(ys.numel(), -1.0, 1.0);
        let (conv, _) = reference::conv2d(&to_f64(&round_f16(&x)), xs, &to_f64(&w), ws, None, stride, pad, 1, 1);
        let r64 = to_f64(&round_f16(&r));
        let want: Vec<f64> = conv.iter().zip(&r64).map(|(c, r)| (c + r).max(0.0)).collect();
        let xt = Tensor::from_slice_f16(g, &x, xs.to_vec()).unwrap();
        let rt = Tensor::from_slice_f16(g, &r, ys.dims().to_vec()).unwrap();
        let wt = Tensor::from_slice(g, &w, ws).unwrap();
        let epi = Epilogue {
            residual: true,
            act: Act::Relu,
        };
        for tile in mm_forward_tiles() {
            let y = Tensor::empty_of(g, ys.clone(), DType::F16).unwrap();
            let bufs = forward_buffers(&xt, &wt, None, Some(&rt), &y);
            g.run(&conv::forward_tiled(g, &geom, tile, epi, DType::F16, &bufs).unwrap());
            let what = format!("mm forward on f16 x{xs:?} w{ws:?} s{stride} p{pad} {tile:?}");
            assert_close(&what, &y.to_vec().unwrap(), &want, HALF_RTOL);
        }
    }
}

/// The (blocks, C, 2) statistics of y (N, C, HW) that a forward writes: each `STATS_BLOCK`
/// pixels' (mean, M2) per channel, the pixels in (image, position) order.
pub fn block_stats(y: &[f64], [n, c, hw]: [usize; 3]) -> Vec<f64> {
    let block = convoy::internals::kernels::conv::STATS_BLOCK;
    let pixels = n * hw;
    let mut out = Vec::new();
    for b in 0..pixels.div_ceil(block) {
        for ch in 0..c {
            let v: Vec<f64> = (b * block..pixels.min((b + 1) * block))
                .map(|q| y[((q / hw) * c + ch) * hw + q % hw])
                .collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            out.push(mean);
            out.push(v.iter().map(|x| (x - mean) * (x - mean)).sum());
        }
    }
    out
}

/// conv2d_fwd_mm's barriers after the first chunk's stores, at the end of each chunk and
/// between the statistics' exchange and their merge, each shown necessary as the block kernel's
/// are: with any one deleted, both tiles give a wrong output or wrong statistics on lavapipe,
/// whose lanes run a workgroup 8 or 16 at a time up to each barrier. The fourth (with 128
/// channels, between the lo channels' merge and the hi channels' exchange) guards a race
/// lavapipe cannot show: the lanes that merge a channel read only the exchange slots of their
/// own run of 8 and of runs after it, which have not yet written the hi half.
#[test]
fn conv2d_mm_kernel_fails_without_any_one_of_its_barriers() {
    use convoy::internals::device::Shader;
    use convoy::internals::kernels::conv::{self, ConvTile};
    use convoy::internals::kernels::shaders::CONV2D_FWD_MM;
    use convoy::ops::Conv2dGeom;
    let g = gpu();
    let mut rng = Rng::new(41);
    let (xs, ws) = ([2, 21, 9, 10], [130, 21, 3, 3]);
    let args = Conv2dArgs::default().padding(1);
    let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
    let ys = geom.out_shape();
    let x = rng.vec(xs.iter().product(), -1.0, 1.0);
    let w = rng.vec(ws.iter().product(), -0.5, 0.5);
    let (want, _) = reference::conv2d(&to_f64(&x), xs, &to_f64(&w), ws, None, 1, 1, 1, 1);
    let want_stats = block_stats(&want, [2, 130, 90]);
    let (xt, wt) = (
        Tensor::from_slice(g, &x, xs).unwrap(),
        Tensor::from_slice(g, &w, ws).unwrap(),
    );
    // y and the statistics blocks
    let run = |kernel: &'static Shader, tile: ConvTile| {
        let y = Tensor::empty(g, ys.clone()).unwrap();
        let stats = Tensor::empty(g, [want_stats.len()]).unwrap();
        let bufs = conv::ForwardBuffers {
            stats: Some(stats.buffer()),
            ..forward_buffers(&xt, &wt, None, None, &y)
        };
        g.run(&conv::forward_mm(g, kernel, &geom, tile, Default::default(), DType::F32, &bufs).unwrap());
        (y.to_vec().unwrap(), stats.to_vec().unwrap())
    };
    let barriers = CONV2D_FWD_MM.source.matches("workgroupBarrier();").count();
    assert_eq!(
        barriers, 4,
        "conv2d_fwd_mm's barriers: the prologue's, the chunk loop's, the statistics' two"
    );
    // the third in the source separates the two halves of the statistics
    let halves = 2;
    for tile in [ConvTile::MM_128, ConvTile::MM_64] {
        let (y, stats) = run(&CONV2D_FWD_MM, tile);
        assert_close(&format!("mm forward {tile:?}"), &y, &want, RTOL);
        assert_close(&format!("mm statistics {tile:?}"), &stats, &want_stats, RTOL);
        for i in (0..barriers).filter(|&i| i != halves) {
            let (y, stats) = run(without_barrier(&CONV2D_FWD_MM, i), tile);
            let e = rel_err(&y, &want).max(rel_err(&stats, &want_stats));
            assert!(
                e > RTOL,
                "barrier {i} deleted and the mm forward {tile:?} still matches ({e:.2e})"
            );
        }
    }
}

/// The split-K forward's second pass (conv2d_split_k_epilogue) with its barrier deleted (between
/// the lanes' statistics and their merge): the statistics go wrong on lavapipe, whose lanes run
/// 8 or 16 at a time up to a barrier, while the pass as written matches the f64 reference, on
/// planes in vec4s and not.
#[test]
fn conv2d_split_k_epilogue_fails_without_its_barrier() {
    use convoy::internals::kernels::conv::{self, ConvTile, TileKind};
    use convoy::internals::kernels::shaders::{CONV2D_FWD_MM, CONV2D_SPLIT_K_EPILOGUE};
    use convoy::ops::Conv2dGeom;
    let g = gpu();
    let mut rng = Rng::new(45);
    assert_eq!(CONV2D_SPLIT_K_EPILOGUE.source.matches("workgroupBarrier();").count(), 1);
    let tile = ConvTile {
        kind: TileKind::MmSplit { slices: 4 },
        ..ConvTile::MM_64
    };
    for xs in [[3, 40, 10, 12], [2, 40, 9, 11]] {
        let ws = [70, 40, 3, 3];
        let args = Conv2dArgs::default().padding(1);
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        let ys = geom.out_shape();
        let yd = ys.dims().to_vec();
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let (want, _) = reference::conv2d(&to_f64(&x), xs, &to_f64(&w), ws, None, 1, 1, 1, 1);
        let want_stats = block_stats(&want, [yd[0], yd[1], yd[2] * yd[3]]);
        let (xt, wt) = (
            Tensor::from_slice(g, &x, xs).unwrap(),
            Tensor::from_slice(g, &w, ws).unwrap(),
        );
        let run = |epilogue: &'static convoy::internals::device::Shader| {
            let y = Tensor::empty(g, ys.clone()).unwrap();
            let stats = Tensor::empty(g, [want_stats.len()]).unwrap();
            let bufs = conv::ForwardBuffers {
                stats: Some(stats.buffer()),
                ..forward_buffers(&xt, &wt, None, None, &y)
            };
            let kernels = [&CONV2D_FWD_MM, epilogue];
            g.run(&conv::forward_mm_split(g, kernels, &geom, tile, Default::default(), DType::F32, &bufs).unwrap());
            (y.to_vec().unwrap(), stats.to_vec().unwrap())
        };
        let (y, stats) = run(&CONV2D_SPLIT_K_EPILOGUE);
        assert_close(&format!("split forward x{xs:?}"), &y, &want, RTOL);
        assert_close(&format!("split statistics x{xs:?}"), &stats, &want_stats, RTOL);
        let (y, stats) = run(without_barrier(&CONV2D_SPLIT_K_EPILOGUE, 0));
        assert_close(&format!("split forward x{xs:?}, barrier deleted"), &y, &want, RTOL);
        let e = rel_err(&stats, &want_stats);
        assert!(
            e > RTOL,
            "barrier deleted and the split statistics x{xs:?} still match ({e:.2e})"
        );
    }
}

/// The large tiles' batch statistics against the f64 reference: blocks cut by the end of the
/// pixels (a last 128-pixel sub-block partly or wholly empty), several channel blocks, groups,
/// and statistics of the values stored (after bias and activation).
#[test]
fn conv2d_mm_statistics_match_reference() {
    use convoy::graph::{Act, Epilogue};
    use convoy::internals::kernels::conv;
    use convoy::ops::Conv2dGeom;
    let g = gpu();
    let mut rng = Rng::new(42);
    // (x, cout, kernel, stride, padding, groups)
    let cases = [
        ([3, 19, 13, 11], 130, 3, 1, 1, 1),
        ([1, 64, 7, 9], 64, 1, 1, 0, 1),
        ([2, 128, 17, 16], 140, 3, 2, 1, 2),
        ([5, 8, 1, 1], 72, 3, 1, 1, 1),
    ];
    for (xs, cout, k, stride, pad, groups) in cases {
        let args = Conv2dArgs::new(stride, pad, 1, groups);
        let ws = [cout, xs[1] / groups, k, k];
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        let ys = geom.out_shape();
        let yd = ys.dims().to_vec();
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let b = rng.vec(cout, -0.5, 0.5);
        let (conv, _) = reference::conv2d(
            &to_f64(&x),
            xs,
            &to_f64(&w),
            ws,
            Some(&to_f64(&b)),
            stride,
            pad,
            1,
            groups,
        );
        let want: Vec<f64> = conv.iter().map(|&v| reference::activation(Act::Silu, v)).collect();
        let want_stats = block_stats(&want, [yd[0], yd[1], yd[2] * yd[3]]);
        let (xt, wt, bt) = (
            Tensor::from_slice(g, &x, xs).unwrap(),
            Tensor::from_slice(g, &w, ws).unwrap(),
            Tensor::from_slice(g, &b, [cout]).unwrap(),
        );
        let epi = Epilogue {
            residual: false,
            act: Act::Silu,
        };
        for tile in mm_forward_tiles() {
            let y = Tensor::empty(g, ys.clone()).unwrap();
            let stats = Tensor::empty(g, [want_stats.len()]).unwrap();
            let bufs = conv::ForwardBuffers {
                stats: Some(stats.buffer()),
                ..forward_buffers(&xt, &wt, Some(&bt), None, &y)
            };
            g.run(&conv::forward_tiled(g, &geom, tile, epi, DType::F32, &bufs).unwrap());
            let what = format!("mm forward with statistics x{xs:?} w{ws:?} {args:?} {tile:?}");
            assert_close(&what, &y.to_vec().unwrap(), &want, RTOL);
            assert_close(
                &format!("{what}: statistics"),
                &stats.to_vec().unwrap(),
                &want_stats,
                RTOL,
            );
        }
    }
}

/// The large tiles' gradients against the f64 reference, in both tiles: the weight gradient
/// (conv2d_bwd_weight_mm, split-K) with its default split, one chunk, chunks that end inside a
/// 16-pixel step and chunks of whole steps; the input gradient (conv2d_bwd_data_mm, every
/// stride phase in one dispatch). Output channels and weight columns below, at and above one
/// tile and off its multiples (K = 37 x 9 = 333 columns, 64 + 1), batch 1, 1x1 maps whose taps
/// are mostly padding (pixel counters stepping across images every step), maps narrower than a
/// step (7 and 5 columns: a carry into the rows every step), 1x1 convs, strides 2 and 3 (phases
/// of 2 and 1 taps, and a 1x1 at stride 2 whose phases without taps get zeros), dilation 2 at
/// stride 2 (phases no tap reaches), padding past the kernel's reach, 2 groups, asymmetric
/// kernels, strides and padding.
#[test]
fn conv2d_mm_gradients_match_reference() {
    use convoy::internals::kernels::conv::ConvTile;
    let mut rng = Rng::new(44);
    // (x, cout, kernel, stride, padding, dilation, groups)
    let cases = [
        ([2, 37, 13, 11], 130, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        ([1, 16, 9, 7], 70, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        ([5, 32, 1, 1], 100, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        ([3, 130, 6, 5], 64, [1, 1], [1, 1], [0, 0], [1, 1], 1),
        ([2, 24, 17, 15], 96, [3, 3], [2, 2], [1, 1], [1, 1], 1),
        ([1, 20, 20, 19], 72, [5, 5], [3, 3], [2, 2], [1, 1], 1),
        ([2, 18, 12, 12], 66, [3, 3], [1, 1], [2, 2], [2, 2], 1),
        ([2, 128, 8, 9], 140, [3, 3], [1, 1], [1, 1], [1, 1], 2),
        ([2, 9, 11, 16], 129, [3, 2], [1, 1], [2, 0], [1, 2], 1),
        ([4, 65, 7, 7], 128, [1, 1], [1, 1], [0, 0], [1, 1], 1),
        ([2, 70, 9, 10], 40, [1, 1], [2, 2], [0, 0], [1, 1], 1),
        ([2, 64, 11, 9], 24, [3, 3], [2, 2], [2, 2], [2, 2], 1),
        ([1, 66, 8, 8], 16, [1, 1], [2, 2], [1, 1], [1, 1], 1),
        ([2, 128, 10, 13], 36, [3, 3], [2, 3], [1, 2], [1, 1], 2),
        ([1, 64, 12, 12], 20, [4, 4], [4, 4], [1, 1], [1, 1], 1),
    ];
    let tiles = [ConvTile::MM_128, ConvTile::MM_64];
    large_tile_gradients_match(gpu(), &mut rng, &cases, &tiles, &[13, 32], <[f32]>::to_vec, "_mm");
}

/// The stride-1 input gradient as the large-tile forward of dy split over K (the weights flipped
/// and transposed first) against the f64 reference, in both tiles split: input channels (the
/// forward's rows) below, at and above a tile, K = Cout/g x taps off the chunk, dilation 2 with
/// padding 2, 2 groups, an asymmetric kernel and padding, a 1x1 conv and 1x1 maps.
#[test]
fn conv2d_split_input_gradient_matches_reference() {
    use convoy::internals::kernels::conv::{self, ConvTile, TileKind};
    use convoy::ops::Conv2dGeom;
    let g = gpu();
    let mut rng = Rng::new(47);
    // (x, cout, kernel, padding, dilation, groups)
    let cases = [
        ([2, 130, 9, 7], 37, [3, 3], [1, 1], [1, 1], 1),
        ([1, 64, 7, 7], 100, [3, 3], [1, 1], [1, 1], 1),
        ([2, 66, 12, 12], 18, [3, 3], [2, 2], [2, 2], 1),
        ([2, 140, 8, 9], 128, [3, 3], [1, 1], [1, 1], 2),
        ([2, 129, 11, 16], 9, [3, 2], [2, 0], [1, 1], 1),
        ([3, 64, 6, 5], 130, [1, 1], [0, 0], [1, 1], 1),
        ([5, 100, 1, 1], 32, [3, 3], [1, 1], [1, 1], 1),
    ];
    for (xs, cout, [kh, kw], padding, dilation, groups) in cases {
        let args = Conv2dArgs::new(1, 0, 1, groups).hw([1, 1], padding, dilation);
        let ws = [cout, xs[1] / groups, kh, kw];
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let dy = rng.vec(geom.out_shape().numel(), -1.0, 1.0);
        let (want, _) = reference::conv2d_backward(
            &to_f64(&x),
            xs,
            &to_f64(&w),
            ws,
            &to_f64(&dy),
            [1, 1],
            padding,
            dilation,
            groups,
        );
        let wt = Tensor::from_slice(g, &w, ws).unwrap();
        let dyt = Tensor::from_slice(g, &dy, geom.out_shape()).unwrap();
        for (base, slices) in [(ConvTile::MM_128, 3), (ConvTile::MM_64, 2)] {
            let tile = ConvTile {
                kind: TileKind::MmSplit { slices },
                ..base
            };
            let dx = Tensor::empty(g, xs).unwrap();
            g.run(&conv::backward_data_tiled(g, &geom, tile, dyt.buffer(), wt.buffer(), dx.buffer()).unwrap());
            let what = format!("split input grad x{xs:?} w{ws:?} {args:?} {tile:?}");
            assert_close(&what, &dx.to_vec().unwrap(), &want, RTOL);
        }
    }
}

/// A large-tile gradient case: (x, cout, kernel, stride, padding, dilation, groups).
pub type GradientCase = ([usize; 4], usize, [usize; 2], [usize; 2], [usize; 2], [usize; 2], usize);

/// The large tiles' gradients of `cases` against the f64 reference, in each of `tiles`: the
/// weight gradient (split-K) with its default split, one chunk and chunks of each of `chunks`
/// pixels; the input gradient, every stride phase in one dispatch. The operands are drawn from
/// `rng` and passed through `operands` (as they are; or rounded to f16, as the cooperative tiles
/// stage them), each pass's kernel named with `kernel` in it.
pub fn large_tile_gradients_match(
    g: &convoy::Gpu,
    rng: &mut Rng,
    cases: &[GradientCase],
    tiles: &[convoy::internals::kernels::conv::ConvTile],
    chunks: &[usize],
    operands: fn(&[f32]) -> Vec<f32>,
    kernel: &str,
) {
    use convoy::internals::kernels::conv;
    use convoy::ops::Conv2dGeom;
    for &(xs, cout, [kh, kw], stride, padding, dilation, groups) in cases {
        let args = Conv2dArgs::new(1, 0, 1, groups).hw(stride, padding, dilation);
        let ws = [cout, xs[1] / groups, kh, kw];
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        let ys = geom.out_shape();
        let x = operands(&rng.vec(xs.iter().product(), -1.0, 1.0));
        let w = operands(&rng.vec(ws.iter().product(), -0.5, 0.5));
        let dy = operands(&rng.vec(ys.numel(), -1.0, 1.0));
        let (want_dx, want_dw) = reference::conv2d_backward(
            &to_f64(&x),
            xs,
            &to_f64(&w),
            ws,
            &to_f64(&dy),
            stride,
            padding,
            dilation,
            groups,
        );
        let (xt, wt, dyt) = (
            Tensor::from_slice(g, &x, xs).unwrap(),
            Tensor::from_slice(g, &w, ws).unwrap(),
            Tensor::from_slice(g, &dy, ys.clone()).unwrap(),
        );
        let pixels = ys.numel() / cout;
        for &tile in tiles {
            for chunk in [None, Some(pixels)].into_iter().chain(chunks.iter().map(|&c| Some(c))) {
                let dw = Tensor::empty(g, ws).unwrap(); // NaN: every weight written
                let bufs = conv::WeightGradientBuffers {
                    dy: dyt.buffer(),
                    x: xt.buffer(),
                    dw: dw.buffer(),
                };
                let ds = conv::backward_weight_tiled(g, &geom, tile, chunk, &bufs).unwrap();
                let what = format!("large-tile weight grad x{xs:?} w{ws:?} {args:?} {tile:?} chunk {chunk:?}");
                let name = ds[0].pipeline.shader.name;
                assert!(name.contains(kernel), "{what}: {name}");
                g.run(&ds);
                assert_close(&what, &dw.to_vec().unwrap(), &want_dw, RTOL);
            }
            let dx = Tensor::empty(g, xs).unwrap(); // NaN: every input position written
            let ds = conv::backward_data_tiled(g, &geom, tile, dyt.buffer(), wt.buffer(), dx.buffer()).unwrap();
            let what = format!("large-tile input grad x{xs:?} w{ws:?} {args:?} {tile:?}");
            assert_eq!(ds.len(), 1, "{what}: one dispatch for every stride phase");
            let name = ds[0].pipeline.shader.name;
            assert!(name.contains(kernel), "{what}: {name}");
            g.run(&ds);
            assert_close(&what, &dx.to_vec().unwrap(), &want_dx, RTOL);
        }
    }
}

/// conv2d_bwd_weight_mm's two barriers (after the first chunk's stores, at the end of each
/// chunk), each shown necessary: with either deleted, both tiles give a wrong dw on lavapipe.
#[test]
fn conv2d_mm_weight_gradient_fails_without_either_barrier() {
    use convoy::internals::device::Shader;
    use convoy::internals::kernels::conv::{self, ConvTile};
    use convoy::internals::kernels::shaders::CONV2D_BWD_WEIGHT_MM;
    use convoy::ops::Conv2dGeom;
    let g = gpu();
    let mut rng = Rng::new(45);
    let (xs, ws) = ([3, 19, 8, 9], [130, 19, 3, 3]);
    let args = Conv2dArgs::default().padding(1);
    let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
    let ys = geom.out_shape();
    let x = rng.vec(xs.iter().product(), -1.0, 1.0);
    let w = rng.vec(ws.iter().product(), -0.5, 0.5);
    let dy = rng.vec(ys.numel(), -1.0, 1.0);
    let (_, want) = reference::conv2d_backward(&to_f64(&x), xs, &to_f64(&w), ws, &to_f64(&dy), 1, 1, 1, 1);
    let xt = Tensor::from_slice(g, &x, xs).unwrap();
    let dyt = Tensor::from_slice(g, &dy, ys).unwrap();
    let run = |kernel: &'static Shader, tile: ConvTile| {
        let dw = Tensor::empty(g, ws).unwrap();
        let bufs = conv::WeightGradientBuffers {
            dy: dyt.buffer(),
            x: xt.buffer(),
            dw: dw.buffer(),
        };
        g.run(&conv::backward_weight_mm(g, kernel, &geom, tile, Some(100), &bufs).unwrap());
        dw.to_vec().unwrap()
    };
    assert_barriers_needed(
        &CONV2D_BWD_WEIGHT_MM,
        2,
        &[ConvTile::MM_128, ConvTile::MM_64],
        &want,
        run,
    );
}

/// Each of `kernel`'s `barriers` barriers is needed: `run(kernel, tile)` matches `want` in every
/// tile of `tiles`, and with any one barrier deleted (`without_barrier`) it does not.
fn assert_barriers_needed(
    kernel: &'static convoy::internals::device::Shader,
    barriers: usize,
    tiles: &[convoy::internals::kernels::conv::ConvTile],
    want: &[f64],
    run: impl Fn(&'static convoy::internals::device::Shader, convoy::internals::kernels::conv::ConvTile) -> Vec<f32>,
) {
    let name = kernel.name;
    assert_eq!(
        kernel.source.matches("workgroupBarrier();").count(),
        barriers,
        "{name}'s barriers"
    );
    for &tile in tiles {
        assert_close(&format!("{name} {tile:?}"), &run(kernel, tile), want, RTOL);
        for i in 0..barriers {
            let e = rel_err(&run(without_barrier(kernel, i), tile), want);
            assert!(
                e > RTOL,
                "barrier {i} deleted and {name} {tile:?} still matches ({e:.2e})"
            );
        }
    }
}

/// conv2d_bwd_data_mm's two barriers (the core's: after the first chunk's stores, at the end of
/// each chunk), each shown necessary: with either deleted, both tiles give a wrong dx on
/// lavapipe, on a strided conv (4 phases in the one dispatch).
#[test]
fn conv2d_mm_input_gradient_fails_without_either_barrier() {
    use convoy::internals::device::Shader;
    use convoy::internals::kernels::conv::{self, ConvTile};
    use convoy::internals::kernels::shaders::CONV2D_BWD_DATA_MM;
    use convoy::ops::Conv2dGeom;
    let g = gpu();
    let mut rng = Rng::new(46);
    let (xs, ws) = ([2, 130, 9, 8], [40, 130, 3, 3]);
    let args = Conv2dArgs::new(2, 1, 1, 1);
    let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
    let ys = geom.out_shape();
    let x = rng.vec(xs.iter().product(), -1.0, 1.0);
    let w = rng.vec(ws.iter().product(), -0.5, 0.5);
    let dy = rng.vec(ys.numel(), -1.0, 1.0);
    let (want, _) = reference::conv2d_backward(&to_f64(&x), xs, &to_f64(&w), ws, &to_f64(&dy), 2, 1, 1, 1);
    let wt = Tensor::from_slice(g, &w, ws).unwrap();
    let dyt = Tensor::from_slice(g, &dy, ys).unwrap();
    let run = |kernel: &'static Shader, tile: ConvTile| {
        let dx = Tensor::empty(g, xs).unwrap();
        g.run(&[conv::backward_data_mm(g, kernel, &geom, tile, dyt.buffer(), wt.buffer(), dx.buffer()).unwrap()]);
        dx.to_vec().unwrap()
    };
    assert_barriers_needed(&CONV2D_BWD_DATA_MM, 2, &[ConvTile::MM_128, ConvTile::MM_64], &want, run);
}

/// The variant table on a gpu-family device (lavapipe with the gpu family forced): a grid of
/// large tiles that fills a GPU (2 workgroups per compute unit) runs conv2d_fwd_mm by default,
/// with or without batch statistics, and matches the reference; a smaller grid keeps the block
/// tile first, unless K is long enough to split it over K (then the split tile, and
/// conv2d_split_k_epilogue after it). The same for the input gradient (conv2d_bwd_data_mm) and
/// the weight gradient (conv2d_bwd_weight_mm, its split-K grid).
#[test]
fn conv2d_gpu_family_runs_the_large_tiles_on_full_grids() {
    use convoy::internals::kernels::conv::{self, variants, ConvTile};
    use convoy::ops::Conv2dGeom;
    use convoy::{Gpu, KernelFamily};
    let g = open_gpu(Gpu::builder().kernels(KernelFamily::Gpu));
    let mut rng = Rng::new(43);
    // 184 x 184 pixels: 265 workgroups of 128 (>= 2 x 132)
    let (xs, ws) = ([1, 64, 184, 184], [64, 64, 1, 1]);
    let geom = Conv2dGeom::new(&xs.into(), &ws.into(), Conv2dArgs::default()).unwrap();
    let first = |geom: &Conv2dGeom, stats: bool| match variants::forward((&g).into(), geom, DType::F32, stats)
        .unwrap()
        .kernel
    {
        variants::Forward::Tiled { tiles, .. } => tiles.candidates[0],
        other => panic!("not tiled: {other:?}"),
    };
    assert_eq!(first(&geom, false), ConvTile::MM_64);
    assert_eq!(first(&geom, true), ConvTile::MM_64);
    let small = Conv2dGeom::new(&[1, 64, 56, 56].into(), &ws.into(), Conv2dArgs::default()).unwrap();
    assert_eq!(first(&small, false), ConvTile::BLOCK);
    let x = rng.vec(xs.iter().product(), -1.0, 1.0);
    let w = rng.vec(ws.iter().product(), -0.5, 0.5);
    let (want, _) = reference::conv2d(&to_f64(&x), xs, &to_f64(&w), ws, None, 1, 0, 1, 1);
    let (xt, wt) = (
        Tensor::from_slice(&g, &x, xs).unwrap(),
        Tensor::from_slice(&g, &w, ws).unwrap(),
    );
    let y = Tensor::empty(&g, geom.out_shape()).unwrap();
    let ds = conv::forward(
        &g,
        &geom,
        Default::default(),
        DType::F32,
        &forward_buffers(&xt, &wt, None, None, &y),
    )
    .unwrap();
    assert!(ds.iter().any(|d| d.pipeline.shader.name == "conv2d_fwd_mm"));
    g.run(&ds);
    assert_close("mm forward by the table's choice", &y.to_vec().unwrap(), &want, RTOL);
    // its input gradient: conv2d_bwd_data_mm (the same grid)
    let dy = rng.vec(geom.out_shape().numel(), -1.0, 1.0);
    let (want_dx, _) = reference::conv2d_backward(&to_f64(&x), xs, &to_f64(&w), ws, &to_f64(&dy), 1, 0, 1, 1);
    let dyt = Tensor::from_slice(&g, &dy, geom.out_shape()).unwrap();
    let dx = Tensor::empty(&g, xs).unwrap();
    let ds = conv::backward_data(&g, &geom, dyt.buffer(), wt.buffer(), dx.buffer(), DType::F32, None).unwrap();
    assert!(ds.iter().any(|d| d.pipeline.shader.name == "conv2d_bwd_data_mm"));
    g.run(&ds);
    assert_close(
        "mm input gradient by the table's choice",
        &dx.to_vec().unwrap(),
        &want_dx,
        RTOL,
    );
    // the weight gradient of a 3x3 over 130 x 130 pixels: 67 split-K chunks of 256 for 5 blocks
    // of 64 x 128
    let (xs, ws) = ([1, 64, 130, 130], [64, 64, 3, 3]);
    let geom = Conv2dGeom::new(&xs.into(), &ws.into(), Conv2dArgs::default().padding(1)).unwrap();
    let x = rng.vec(xs.iter().product(), -1.0, 1.0);
    let w = rng.vec(ws.iter().product(), -0.5, 0.5);
    let dy = rng.vec(geom.out_shape().numel(), -1.0, 1.0);
    let (_, want_dw) = reference::conv2d_backward(&to_f64(&x), xs, &to_f64(&w), ws, &to_f64(&dy), 1, 1, 1, 1);
    let (xt, dyt) = (
        Tensor::from_slice(&g, &x, xs).unwrap(),
        Tensor::from_slice(&g, &dy, geom.out_shape()).unwrap(),
    );
    let dw = Tensor::empty(&g, ws).unwrap();
    let bufs = conv::WeightGradientBuffers {
        dy: dyt.buffer(),
        x: xt.buffer(),
        dw: dw.buffer(),
    };
    let ds = conv::backward_weight(&g, &geom, &bufs, DType::F32, None).unwrap();
    assert!(ds.iter().any(|d| d.pipeline.shader.name == "conv2d_bwd_weight_mm"));
    g.run(&ds);
    assert_close(
        "mm weight gradient by the table's choice",
        &dw.to_vec().unwrap(),
        &want_dw,
        RTOL,
    );
    // a 7x7 stage at batch 2 (2 workgroups of 128 x 128): the forward split over K (144 chunks
    // in 18 slices of 8), with the statistics, by the table's choice
    let (xs, ws) = ([2, 256, 7, 7], [256, 256, 3, 3]);
    let geom = Conv2dGeom::new(&xs.into(), &ws.into(), Conv2dArgs::default().padding(1)).unwrap();
    let split = ConvTile {
        kind: convoy::internals::kernels::conv::TileKind::MmSplit { slices: 18 },
        ..ConvTile::MM_128
    };
    assert_eq!(first(&geom, true), split);
    let x = rng.vec(xs.iter().product(), -1.0, 1.0);
    let w = rng.vec(ws.iter().product(), -0.5, 0.5);
    let (want, _) = reference::conv2d(&to_f64(&x), xs, &to_f64(&w), ws, None, 1, 1, 1, 1);
    let want_stats = block_stats(&want, [2, 256, 49]);
    let (xt, wt) = (
        Tensor::from_slice(&g, &x, xs).unwrap(),
        Tensor::from_slice(&g, &w, ws).unwrap(),
    );
    let y = Tensor::empty(&g, geom.out_shape()).unwrap();
    let stats = Tensor::empty(&g, [want_stats.len()]).unwrap();
    let bufs = conv::ForwardBuffers {
        stats: Some(stats.buffer()),
        ..forward_buffers(&xt, &wt, None, None, &y)
    };
    let ds = conv::forward(&g, &geom, Default::default(), DType::F32, &bufs).unwrap();
    let names: Vec<_> = ds.iter().map(|d| d.pipeline.shader.name).collect();
    assert_eq!(names, ["conv2d_fwd_mm", "conv2d_split_k_epilogue"]);
    g.run(&ds);
    assert_close("split forward by the table's choice", &y.to_vec().unwrap(), &want, RTOL);
    assert_close("its statistics", &stats.to_vec().unwrap(), &want_stats, RTOL);
}

/// With tuning on, the first forward of a shape times the candidates, records the winner in the
/// cache file, and computes the right result; a second device reads the choice back.
#[test]
fn conv2d_tuner_records_and_reuses_choices() {
    use convoy::KernelFamily;
    let mut rng = Rng::new(9);
    let (xs, ws) = ([2, 6, 9, 9], [10, 6, 3, 3]);
    let x = rng.vec(972, -1.0, 1.0);
    let w = rng.vec(540, -0.5, 0.5);
    let args = Conv2dArgs::default().padding(1);
    let (want, _) = reference::conv2d(&to_f64(&x), xs, &to_f64(&w), ws, None, 1, 1, 1, 1);
    // each family records its own kernel's tiles: register or staged ([ocb, wg] or
    // [ocb, wg, 1]) for the gpu family, texture ([ocb, wg, 2, px]) for the cpu family
    for (family, kernel, kind_ok) in [
        (
            KernelFamily::Gpu,
            "conv2d_fwd n2",
            (|r: &[usize]| r.len() == 2 || r == [r[0], r[1], 1]) as fn(&[usize]) -> bool,
        ),
        (KernelFamily::Cpu, "conv2d_fwd_tex n2", |r: &[usize]| {
            r.len() == 4 && r[2] == 2 && [4, 8].contains(&r[3])
        }),
    ] {
        let dir = std::env::temp_dir().join(format!("convoy-tune-{}-{family:?}", std::process::id()));
        let cache = dir.join("tune.tsv");
        let _ = std::fs::remove_file(&cache);
        let open = || {
            convoy::Gpu::builder()
                .tune(true)
                .tune_cache(&cache)
                .kernels(family)
                .build()
                .unwrap()
        };
        let run = |gpu: &convoy::Gpu| {
            let xt = Tensor::from_slice(gpu, &x, xs).unwrap();
            let wt = Tensor::from_slice(gpu, &w, ws).unwrap();
            let y = conv2d(gpu, &xt, &wt, None, args).unwrap();
            assert_close(&format!("tuned conv2d {family:?}"), &y.to_vec().unwrap(), &want, RTOL);
        };
        run(&open());
        let text = std::fs::read_to_string(&cache).expect("the tuner writes its cache file");
        let line = text
            .lines()
            .find(|l| l.contains(&format!("{kernel} c6 9x9 -> 10 k3x3 s1 p1 d1 g1")))
            .unwrap_or_else(|| panic!("{family:?}: no choice recorded for the shape:\n{text}"));
        let key = line.split('\t').nth(1).unwrap();
        let recorded: Vec<usize> = line
            .split('\t')
            .nth(2)
            .unwrap()
            .split(' ')
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(kind_ok(&recorded), "{family:?}: {line}");
        // a new device on the same cache reads the choice back, runs it without timing again
        // (the file is not rewritten) and gets the same result
        let modified = || std::fs::metadata(&cache).unwrap().modified().unwrap();
        let written = modified();
        let again = open();
        assert_eq!(again.tuner().unwrap().get(key), Some(recorded), "{family:?}: read back");
        run(&again);
        assert_eq!(
            modified(),
            written,
            "{family:?}: reused, not re-tuned (the tuner rewrites the file)"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The tuner's clocks: timestamp queries (a GPU's) and wall time (a CPU driver's) both time a
/// real conv as a positive, finite number of milliseconds of the same order; the timestamp path
/// (query set, resolve, readback, period) runs here because lavapipe has timestamp queries.
#[test]
fn kernel_timer_reads_both_clocks() {
    use convoy::internals::device::{time_dispatches, Clock};
    use convoy::internals::kernels::conv::{self, ForwardBuffers};
    use convoy::ops::Conv2dGeom;
    let g = gpu();
    let mut rng = Rng::new(5);
    let (xs, ws) = ([4, 32, 20, 20], [64, 32, 3, 3]);
    let geom = Conv2dGeom::new(&xs.into(), &ws.into(), Conv2dArgs::default().padding(1)).unwrap();
    let x = Tensor::from_slice(g, &rng.vec(4 * 32 * 400, -1.0, 1.0), xs).unwrap();
    let w = Tensor::from_slice(g, &rng.vec(64 * 288, -1.0, 1.0), ws).unwrap();
    let y = Tensor::zeros(g, geom.out_shape()).unwrap();
    let b = ForwardBuffers::new(x.buffer(), w.buffer(), y.buffer());
    let ds = conv::forward(g, &geom, Default::default(), DType::F32, &b).unwrap();
    if !g.info().has_timestamps() {
        // lavapipe and wgpu's GL backend on llvmpipe have them; an adapter without them refuses
        // the GPU's clock by name and still times by the wall clock
        assert_ne!(
            g.info().backend,
            wgpu::Backend::Vulkan,
            "lavapipe has timestamp queries"
        );
        let Err(err) = time_dispatches(g, &ds, 1, Clock::Timestamps) else {
            panic!("the GPU's clock without timestamp queries must be refused");
        };
        assert!(err.to_string().contains("timestamp"), "{err}");
        assert!(time_dispatches(g, &ds, 1, Clock::Wall).unwrap() > 0.0);
        return;
    }
    // the clocks alternate, best of each kept, so that a machine whose speed drifts (a shared
    // CI runner) moves both alike
    let (mut stamped, mut wall) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        stamped = stamped.min(time_dispatches(g, &ds, 2, Clock::Timestamps).unwrap());
        wall = wall.min(time_dispatches(g, &ds, 2, Clock::Wall).unwrap());
    }
    println!("conv forward: timestamps {stamped:.3} ms, wall {wall:.3} ms");
    assert!(stamped.is_finite() && stamped > 0.0, "timestamps: {stamped} ms");
    assert!(wall.is_finite() && wall > 0.0, "wall: {wall} ms");
    // What this guards is the timestamp arithmetic (the period, the tick difference): a unit
    // slip is a factor of 1,000 or more, so the two clocks must agree within 10x. The bound is
    // not tighter because CI, on a loaded runner, measured the timestamps at 2.2x the wall time
    // (14.73 against 6.56 ms, one call of each); and a conv of 150 MFLOP takes more than a
    // microsecond on any device.
    assert!(
        stamped > 1e-3 && stamped < wall * 10.0 && stamped > wall / 10.0,
        "timestamps {stamped} ms against wall {wall} ms"
    );
}

/// A recorded choice decides the kernel, whichever kind of tile it names: the gpu family's
/// first forward of a shape records a tile; the record rewritten by hand to a block tile and
/// to a register tile, a new device on the cache runs exactly that kernel and tile (seen in its
/// dispatches), computes the right result, and does not time the candidates again.
#[test]
fn conv2d_tuner_reuses_recorded_block_and_register_tiles() {
    use convoy::internals::kernels::conv::{self, ForwardBuffers};
    use convoy::ops::Conv2dGeom;
    use convoy::KernelFamily;
    let mut rng = Rng::new(12);
    // 40 output channels: the block tile is a candidate (and the gpu family's default)
    let (xs, ws) = ([2, 8, 9, 9], [40, 8, 3, 3]);
    let x = rng.vec(2 * 8 * 81, -1.0, 1.0);
    let w = rng.vec(40 * 72, -0.5, 0.5);
    let args = Conv2dArgs::default().padding(1);
    let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
    let (want, _) = reference::conv2d(&to_f64(&x), xs, &to_f64(&w), ws, None, 1, 1, 1, 1);
    let dir = std::env::temp_dir().join(format!("convoy-tune-records-{}", std::process::id()));
    let cache = dir.join("tune.tsv");
    let _ = std::fs::remove_file(&cache);
    let open = || {
        convoy::Gpu::builder()
            .tune(true)
            .tune_cache(&cache)
            .kernels(KernelFamily::Gpu)
            .build()
            .unwrap()
    };
    // the forward's dispatches on a fresh device, checked against the reference
    let run = |what: &str| {
        let gpu = open();
        let xt = Tensor::from_slice(&gpu, &x, xs).unwrap();
        let wt = Tensor::from_slice(&gpu, &w, ws).unwrap();
        let y = Tensor::zeros(&gpu, geom.out_shape()).unwrap();
        let b = ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer());
        let ds = conv::forward(&gpu, &geom, Default::default(), DType::F32, &b).unwrap();
        gpu.run(&ds);
        assert_close(what, &y.to_vec().unwrap(), &want, RTOL);
        ds.iter().map(|d| (d.pipeline.shader.name, d.grid)).collect::<Vec<_>>()
    };
    run("tuned");
    let shape = "n2 c8 9x9 -> 40 k3x3 s1 p1 d1 g1";
    let text = std::fs::read_to_string(&cache).expect("the tuner writes its cache file");
    let line = text
        .lines()
        .find(|l| l.contains(shape))
        .unwrap_or_else(|| panic!("no choice recorded for {shape}:\n{text}"))
        .to_string();
    let mut fields = line.split('\t');
    let (adapter, key) = (fields.next().unwrap(), fields.next().unwrap());
    // (record, kernel, channel blocks in grid z): the block tile covers all 40 channels in one
    // block of 64; the register tile of 4 channels x 32 invocations needs 10
    for (record, kernel, z) in [("64 256 1", "conv2d_fwd_block", 1), ("4 32", "conv2d_fwd", 10)] {
        std::fs::write(&cache, format!("{adapter}\t{key}\t{record}\n")).unwrap();
        let written = std::fs::metadata(&cache).unwrap().modified().unwrap();
        let ds = run(&format!("recorded {record}"));
        assert_eq!(ds.len(), 1, "{record}: {ds:?}");
        assert_eq!((ds[0].0, ds[0].1[2]), (kernel, z), "{record}: the recorded tile runs");
        assert_eq!(
            std::fs::metadata(&cache).unwrap().modified().unwrap(),
            written,
            "{record}: reused, not re-tuned (the tuner rewrites the file)"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The kernel policy's two families on the same shapes: the CPU family (texture operands), the
/// GPU family forced (storage-buffer kernels), and the CPU family on a device whose textures
/// are small (CONVOY's texture side capped): batches folded into bands of planes, and inputs
/// too large for any band, which run the storage-buffer kernels instead. Each against the f64
/// references, forward (with bias), input and weight gradients, through the launchers' defaults.
#[test]
fn conv2d_both_kernel_families_and_small_texture_limits() {
    use convoy::internals::kernels::conv::{self, texture as conv_texture};
    use convoy::ops::Conv2dGeom;
    use convoy::{Gpu, KernelFamily};
    let cpu = open_gpu(Gpu::builder().kernels(KernelFamily::Cpu));
    let gpu_family = open_gpu(Gpu::builder().kernels(KernelFamily::Gpu));
    // textures of at most 40 texels a side: 12x12 planes, 3 images per band, 3 bands; two
    // groups' planes stacked in each of 2 bands; one 32x32 plane alone; 7 channel blocks of
    // 32x32 planes fit no band (the storage-buffer kernels run)
    // (and staging buffers of 4 KiB: every packing in bands of 5 rows of 48 texels)
    let small = open_gpu(
        Gpu::builder()
            .kernels(KernelFamily::Cpu)
            .max_texture_side(40)
            .max_staging_bytes(4096),
    );
    assert!(cpu.policy().texture_operands && !gpu_family.policy().texture_operands);
    let mut rng = Rng::new(23);
    // (n, cin, hw, cout, k, stride, pad, dil, groups, texture on `small`)
    let shapes = [
        (8, 4, 10, 6, 3, 1, 1, 1, 1, true),
        (7, 8, 6, 6, 3, 2, 1, 1, 2, true),
        (1, 4, 30, 3, 3, 1, 1, 1, 1, true),
        (2, 28, 30, 3, 3, 1, 1, 1, 1, false),
        (3, 3, 9, 8, 5, 1, 2, 2, 1, true),
        // x fits the side of 40 (one 22x22 plane), dy does not (12 blocks of 20 rows): the
        // weight gradient falls back to the storage-buffer kernel
        (1, 3, 20, 48, 3, 1, 1, 1, 1, true),
        // a strided 1x1 projection with 16 weight columns: the texture weight gradient where
        // textures are, the narrow kernel where not
        (4, 16, 7, 32, 1, 2, 0, 1, 1, true),
        // 16 channels at 3x3: 18 lanes of two texel columns, in one workgroup of 24 (4 blocks
        // of 11-row planes: too tall for the side of 40)
        (2, 16, 9, 8, 3, 1, 1, 1, 1, false),
    ];
    let mut kept_reads = 0;
    for (n, cin, hw, cout, k, stride, pad, dil, groups, fits_small) in shapes {
        let xs = [n, cin, hw, hw];
        let ws = [cout, cin / groups, k, k];
        let args = Conv2dArgs::new(stride, pad, dil, groups);
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        let ys = geom.out_shape();
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let b = rng.vec(cout, -1.0, 1.0);
        let dy = rng.vec(ys.numel(), -1.0, 1.0);
        let bf = to_f64(&b);
        let (want_y, _) = reference::conv2d(&to_f64(&x), xs, &to_f64(&w), ws, Some(&bf), stride, pad, dil, groups);
        let (want_dx, want_dw) =
            reference::conv2d_backward(&to_f64(&x), xs, &to_f64(&w), ws, &to_f64(&dy), stride, pad, dil, groups);
        for (family, g) in [("cpu", &cpu), ("gpu", &gpu_family), ("cpu, side 40", &small)] {
            let what = format!("{family}: x{xs:?} w{ws:?} s{stride} p{pad} d{dil} g{groups}");
            let expect_texture = family == "cpu" || (family == "cpu, side 40" && fits_small);
            assert_eq!(
                conv_texture::uses_texture(g, &geom),
                expect_texture,
                "{what}: texture path"
            );
            let xt = Tensor::from_slice(g, &x, xs).unwrap();
            let wt = Tensor::from_slice(g, &w, ws).unwrap();
            let bt = Tensor::from_slice(g, &b, [cout]).unwrap();
            let dyt = Tensor::from_slice(g, &dy, ys.clone()).unwrap();
            let y = Tensor::empty(g, ys.clone()).unwrap();
            let dx = Tensor::empty(g, xs).unwrap();
            let dw = Tensor::empty(g, ws).unwrap();
            let (epi, f32) = (Default::default(), DType::F32);
            let (xb, wb) = (xt.buffer(), wt.buffer());
            // as a training plan runs it: x packed once, for the forward and the weight gradient,
            // and dy once, for the input gradient (all its stride phases) and the weight gradient
            let mut kept = conv_texture::KeptOperands::default();
            kept.want(g, &geom, dyt.buffer(), xb);
            let mut ds = conv::forward(
                g,
                &geom,
                epi,
                f32,
                &conv::ForwardBuffers {
                    x: xb,
                    w: wb,
                    bias: Some(bt.buffer()),
                    residual: None,
                    y: y.buffer(),
                    stats: None,
                    kept: Some(&kept),
                    placement: None,
                    x_packed: None,
                    w_transposed: None,
                },
            )
            .unwrap();
            kept.lowered(&ds);
            if family == "cpu, side 40" && expect_texture {
                // x's texture (12+ rows) packed in bands of 5, then the weights', then the conv
                assert!(ds.len() >= 5, "{what}: {} forward dispatches", ds.len());
            }
            if !expect_texture {
                // what only the texture forward does is refused, not run wrong
                let placed = conv::ForwardBuffers {
                    placement: Some(conv::Placement::dense(&geom)),
                    ..conv::ForwardBuffers::new(xb, wb, y.buffer())
                };
                let err = conv::forward(g, &geom, epi, f32, &placed).err().expect("refused");
                assert!(err.to_string().contains("only the texture forward"), "{what}: {err}");
            }
            let dx_ds = conv::backward_data(g, &geom, dyt.buffer(), wb, dx.buffer(), DType::F32, Some(&kept)).unwrap();
            kept.lowered(&dx_ds);
            let dx_names: Vec<_> = dx_ds.iter().map(|d| d.pipeline.shader.name).collect();
            ds.extend(dx_ds);
            let packings = |ds: &[convoy::internals::device::Dispatch]| {
                ds.iter()
                    .filter(|d| d.pipeline.shader.name == "conv2d_pack_input")
                    .count()
            };
            let bufs = conv::WeightGradientBuffers {
                dy: dyt.buffer(),
                x: xb,
                dw: dw.buffer(),
            };
            let packing = conv::backward_weight(g, &geom, &bufs, DType::F32, None).unwrap();
            let reading = conv::backward_weight(g, &geom, &bufs, DType::F32, Some(&kept)).unwrap();
            let reads_kept = conv_texture::weight_gradient_uses_texture(g, &geom)
                && conv_texture::swapped_pointwise(&geom).is_none();
            let (before, after) = (packings(&packing), packings(&reading));
            // x is always kept; dy where the input gradient ran through the texture forward
            let textured = dx_names.iter().any(|n| n.starts_with("conv2d_fwd_tex"));
            let dy_kept = reads_kept && textured;
            if textured && family == "cpu" {
                // one packing of dy for all the stride phases, and one of each phase's weights
                let count = |p: fn(&str) -> bool| dx_names.iter().filter(|n| p(n)).count();
                let phases = count(|n| n.starts_with("conv2d_fwd_tex"));
                assert_eq!(count(|n| n == "conv2d_pack_input"), phases + 1, "{what}: {dx_names:?}");
            }
            assert_eq!(after < before, reads_kept, "{what}: packings {before} -> {after}");
            assert_eq!(
                before > 0 && after == 0,
                dy_kept,
                "{what}: packings {before} -> {after} {dx_names:?}"
            );
            kept_reads += usize::from(reads_kept) + usize::from(dy_kept);
            // a write makes a buffer's packings stale: the weight gradient packs x itself again
            kept.written(xb);
            let again = conv::backward_weight(g, &geom, &bufs, DType::F32, Some(&kept)).unwrap();
            assert_eq!(packings(&again) > after, reads_kept, "{what}: after x is written");
            ds.extend(reading);
            g.run(&ds);
            assert_close(&format!("forward {what}"), &y.to_vec().unwrap(), &want_y, RTOL);
            assert_close(&format!("input grad {what}"), &dx.to_vec().unwrap(), &want_dx, RTOL);
            assert_close(&format!("weight grad {what}"), &dw.to_vec().unwrap(), &want_dw, RTOL);
        }
    }
    // x: every shape's texture weight gradient on the cpu family (8), and on `small` where x
    // and dy both fit (5); dy: those whose input gradient ran through the texture forward, the
    // two strided ones included (8, and 3 on `small`, whose other input gradients run the
    // storage kernel)
    assert_eq!(kept_reads, 24, "kept packings the weight gradients read");
}

/// Per-axis strides, paddings and dilations with rectangular kernels, through every kernel
/// each family has: the launchers' own choice, and every register, block and texture tile for
/// the forward (with a fused epilogue), the input gradient and the weight gradient: a rotating
/// sample of the tiles by default (tests/kernels/sweep.rs), all of them in the extended run.
#[test]
fn conv2d_asymmetric_arguments_through_every_kernel() {
    asymmetric_arguments_through_every_kernel(Sweep::Sample);
}

#[test]
#[ignore = "extended: every tile on every shape (cargo test --release -- --include-ignored)"]
fn conv2d_asymmetric_arguments_through_every_kernel_every_tile() {
    asymmetric_arguments_through_every_kernel(Sweep::Every);
}

fn asymmetric_arguments_through_every_kernel(sweep: Sweep) {
    use convoy::graph::{Act, Epilogue};
    use convoy::internals::kernels::conv::{self, ConvTile};
    use convoy::ops::Conv2dGeom;
    let families =
        [convoy::KernelFamily::Cpu, convoy::KernelFamily::Gpu].map(|f| open_gpu(convoy::Gpu::builder().kernels(f)));
    let mut rng = Rng::new(23);
    // (x, cout, kernel, stride, padding, dilation, groups): 1x7 and 7x1 (Inception), mixed
    // strides and dilations, a depthwise 1x5, and wide groups for the block tiles
    let cases = [
        ([2, 8, 6, 11], 12, [1, 7], [1, 1], [0, 3], [1, 1], 1),
        ([2, 8, 11, 6], 12, [7, 1], [1, 1], [3, 0], [1, 1], 1),
        ([1, 6, 9, 10], 8, [3, 2], [2, 1], [1, 0], [1, 2], 2),
        ([2, 5, 8, 9], 5, [1, 5], [1, 2], [0, 2], [1, 1], 5),
        ([1, 40, 7, 9], 64, [3, 1], [1, 1], [1, 0], [1, 1], 1),
        ([2, 4, 10, 7], 6, [3, 3], [2, 3], [2, 1], [2, 1], 1),
        // stride phases the texture input gradient splits by: stride 3 with dilations 2 and 3,
        // and a padding beyond the kernel's reach (the register kernel's case)
        ([1, 8, 13, 12], 6, [5, 3], [3, 2], [2, 1], [2, 3], 1),
        ([2, 6, 9, 8], 9, [1, 1], [2, 2], [1, 1], [1, 1], 1),
        // a pointwise conv to many more channels (r50_expand-like, channels off multiples of
        // 4): the texture weight gradient runs it as the conv from dy to x, transposed
        ([2, 38, 5, 6], 257, [1, 1], [1, 1], [0, 0], [1, 1], 1),
    ];
    for (case, (xs, cout, [kh, kw], stride, padding, dilation, groups)) in cases.into_iter().enumerate() {
        let args = Conv2dArgs::new(1, 0, 1, groups).hw(stride, padding, dilation);
        let ws = [cout, xs[1] / groups, kh, kw];
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        assert_eq!(
            convoy::internals::kernels::conv::texture::swapped_pointwise(&geom).is_some(),
            cout == 257,
            "{xs:?} {ws:?}: only the last case takes the swapped weight gradient"
        );
        let ys = geom.out_shape();
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let b = rng.vec(cout, -0.5, 0.5);
        let dy = rng.vec(ys.numel(), -1.0, 1.0);
        let (y64, _) = reference::conv2d(
            &to_f64(&x),
            xs,
            &to_f64(&w),
            ws,
            Some(&to_f64(&b)),
            stride,
            padding,
            dilation,
            groups,
        );
        let want: Vec<f64> = y64.iter().map(|&v| reference::activation(Act::Relu, v)).collect();
        let (dx64, dw64) = reference::conv2d_backward(
            &to_f64(&x),
            xs,
            &to_f64(&w),
            ws,
            &to_f64(&dy),
            stride,
            padding,
            dilation,
            groups,
        );
        let pixels = ys.numel() / cout;
        for (family, g) in families.iter().enumerate() {
            let turn = case * families.len() + family;
            let what = format!("{:?} x{xs:?} w{ws:?} {args:?}", g.policy().family);
            let t = |v: &[f32], s: Vec<usize>| Tensor::from_slice(g, v, s).unwrap();
            let (xt, wt, bt, dyt) = (
                t(&x, xs.to_vec()),
                t(&w, ws.to_vec()),
                t(&b, vec![cout]),
                t(&dy, ys.dims().to_vec()),
            );
            let epi = Epilogue {
                residual: false,
                act: Act::Relu,
            };
            // the launcher's own choice, then the sampled candidates
            let mut candidates = ConvTile::forward_candidates(g, cout / groups, pixels);
            candidates.extend(ConvTile::texture_candidates(g, cout / groups, pixels));
            let mut tiles: Vec<Option<ConvTile>> = vec![None];
            tiles.extend(sweep.pick(candidates, turn).into_iter().map(Some));
            let mut ran = 0;
            for tile in tiles {
                let y = Tensor::empty(g, ys.clone()).unwrap();
                let mut bufs = conv::ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer());
                bufs.bias = Some(bt.buffer());
                let d = match tile {
                    None => conv::forward(g, &geom, epi, DType::F32, &bufs).unwrap(),
                    // a tile this shape cannot take refuses it
                    Some(t) => match conv::forward_tiled(g, &geom, t, epi, DType::F32, &bufs) {
                        Ok(d) => d,
                        Err(_) => continue,
                    },
                };
                ran += 1;
                g.run(&d);
                assert_close(&format!("forward {what} {tile:?}"), &y.to_vec().unwrap(), &want, RTOL);
            }
            // the launcher's own kernel, and every candidate this shape takes in the full sweep
            let least = if sweep == Sweep::Every { 2 } else { 1 };
            assert!(ran >= least, "{what}: only {ran} forward kernels ran");
            let dx = Tensor::empty(g, xs).unwrap();
            g.run(&conv::backward_data(g, &geom, dyt.buffer(), wt.buffer(), dx.buffer(), DType::F32, None).unwrap());
            assert_close(&format!("input gradient {what}"), &dx.to_vec().unwrap(), &dx64, RTOL);
            let mut dx_tiles = ConvTile::candidates(g, xs[1] / groups, pixels);
            dx_tiles.push(ConvTile::BLOCK);
            for tile in sweep.pick(dx_tiles, turn) {
                let dx = Tensor::empty(g, xs).unwrap();
                if let Ok(d) = conv::backward_data_tiled(g, &geom, tile, dyt.buffer(), wt.buffer(), dx.buffer()) {
                    g.run(&d);
                    assert_close(
                        &format!("input gradient {what} {tile:?}"),
                        &dx.to_vec().unwrap(),
                        &dx64,
                        RTOL,
                    );
                }
            }
            let dw = Tensor::empty(g, ws).unwrap();
            let bufs = conv::WeightGradientBuffers {
                dy: dyt.buffer(),
                x: xt.buffer(),
                dw: dw.buffer(),
            };
            g.run(&conv::backward_weight(g, &geom, &bufs, DType::F32, None).unwrap());
            assert_close(&format!("weight gradient {what}"), &dw.to_vec().unwrap(), &dw64, RTOL);
            let mut dw_tiles = ConvTile::candidates(g, cout / groups, pixels);
            dw_tiles.push(ConvTile::BLOCK);
            for tile in sweep.pick(dw_tiles, turn) {
                let dw = Tensor::empty(g, ws).unwrap();
                let bufs = conv::WeightGradientBuffers {
                    dy: dyt.buffer(),
                    x: xt.buffer(),
                    dw: dw.buffer(),
                };
                if let Ok(d) = conv::backward_weight_tiled(g, &geom, tile, None, &bufs) {
                    g.run(&d);
                    assert_close(
                        &format!("weight gradient {what} {tile:?}"),
                        &dw.to_vec().unwrap(),
                        &dw64,
                        RTOL,
                    );
                }
            }
        }
    }
}

/// The gpu family's staged depthwise forward (conv2d_fwd_depthwise) against f64: strides,
/// dilations, per-axis arguments, maps smaller and larger than its 16 x 16 tile, a grid folded
/// past 65,535 workgroups, and the fused epilogue; the stride-1 input gradient through it; and
/// which convs it takes.
#[test]
fn conv2d_depthwise_staged_kernel_matches_reference() {
    use convoy::graph::{Act, Epilogue};
    use convoy::internals::kernels::conv::{self, depthwise_staged_fits, forward_depthwise};
    use convoy::ops::Conv2dGeom;
    let g = &open_gpu(convoy::Gpu::builder().kernels(convoy::KernelFamily::Gpu));
    let mut rng = Rng::new(29);
    // (x, kernel, stride, padding, dilation, act)
    let cases = [
        ([2, 5, 9, 11], [3, 3], [1, 1], [1, 1], [1, 1], Act::Relu6),
        ([1, 4, 37, 41], [3, 3], [2, 2], [1, 1], [1, 1], Act::HardSwish),
        ([2, 3, 20, 18], [5, 5], [2, 2], [2, 2], [1, 1], Act::Silu),
        ([1, 6, 17, 19], [3, 3], [1, 1], [2, 2], [2, 2], Act::None),
        ([2, 4, 12, 30], [1, 7], [1, 2], [0, 3], [1, 1], Act::Relu),
        ([1, 2, 1, 1], [3, 3], [1, 1], [1, 1], [1, 1], Act::None),
        // 66,000 planes of 1x1: the grid folds over y
        ([2, 33_000, 1, 1], [3, 3], [1, 1], [1, 1], [1, 1], Act::Relu),
    ];
    for (xs, [kh, kw], stride, padding, dilation, act) in cases {
        let c = xs[1];
        let args = Conv2dArgs::new(1, 0, 1, c).hw(stride, padding, dilation);
        let ws = [c, 1, kh, kw];
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        assert!(depthwise_staged_fits(&geom), "{geom:?}");
        let ys = geom.out_shape();
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let b = rng.vec(c, -0.5, 0.5);
        let r = rng.vec(ys.numel(), -0.5, 0.5);
        let (conv64, _) = reference::conv2d(
            &to_f64(&x),
            xs,
            &to_f64(&w),
            ws,
            Some(&to_f64(&b)),
            stride,
            padding,
            dilation,
            c,
        );
        let want: Vec<f64> = conv64
            .iter()
            .zip(&r)
            .map(|(v, &r)| reference::activation(act, v + r as f64))
            .collect();
        let t = |v: &[f32], s: Vec<usize>| Tensor::from_slice(g, v, s).unwrap();
        let (xt, wt, bt, rt) = (
            t(&x, xs.to_vec()),
            t(&w, ws.to_vec()),
            t(&b, vec![c]),
            t(&r, ys.dims().to_vec()),
        );
        let epi = Epilogue { residual: true, act };
        for staged in [true, false] {
            let y = Tensor::empty(g, ys.clone()).unwrap();
            let mut bufs = conv::ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer());
            bufs.bias = Some(bt.buffer());
            bufs.residual = Some(rt.buffer());
            // directly, and through the launcher, which picks it on the gpu family
            let d = if staged {
                forward_depthwise(g, &geom, epi, DType::F32, &bufs).unwrap()
            } else {
                conv::forward(g, &geom, epi, DType::F32, &bufs).unwrap()
            };
            g.run(&d);
            let what = format!("staged depthwise x{xs:?} k{kh}x{kw} {args:?} {act:?} (direct: {staged})");
            assert_close(&what, &y.to_vec().unwrap(), &want, RTOL);
        }
        // the input gradient: at stride 1 the staged forward of dy with the kernel flipped
        // (directly, and as backward_data's choice), else backward_data's other kernels
        let dy = rng.vec(ys.numel(), -1.0, 1.0);
        let (dx64, _) = reference::conv2d_backward(
            &to_f64(&x),
            xs,
            &to_f64(&w),
            ws,
            &to_f64(&dy),
            stride,
            padding,
            dilation,
            c,
        );
        let dyt = t(&dy, ys.dims().to_vec());
        let staged = conv::transposes_to_forward(&geom);
        assert_eq!(
            staged,
            stride == [1, 1] && padding[0] <= dilation[0] * (kh - 1) && padding[1] <= dilation[1] * (kw - 1)
        );
        for direct in [true, false] {
            let dx = Tensor::empty(g, xs).unwrap();
            let d = if direct {
                match conv::backward_data_depthwise(g, &geom, dyt.buffer(), wt.buffer(), dx.buffer()) {
                    Ok(d) => d,
                    Err(e) => {
                        assert!(!staged, "{geom:?}: {e}");
                        continue;
                    }
                }
            } else {
                conv::backward_data(g, &geom, dyt.buffer(), wt.buffer(), dx.buffer(), DType::F32, None).unwrap()
            };
            g.run(&d);
            let what = format!("depthwise input gradient x{xs:?} k{kh}x{kw} {args:?} (staged directly: {direct})");
            assert_close(&what, &dx.to_vec().unwrap(), &dx64, RTOL);
        }
    }
    // a depth multiplier of 2, or a window past the tile's workgroup memory, is not its to take
    let geom = |xs: [usize; 4], ws: [usize; 4], args| Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
    assert!(!depthwise_staged_fits(&geom(
        [1, 4, 8, 8],
        [8, 1, 3, 3],
        Conv2dArgs::new(1, 1, 1, 4)
    )));
    // dilation 30: a 76 x 76 window
    assert!(!depthwise_staged_fits(&geom(
        [1, 4, 80, 80],
        [4, 1, 3, 3],
        Conv2dArgs::new(1, 1, 30, 4)
    )));
}

/// The gpu family's strided input gradient through the block forward, one stride phase at a
/// time (groups of 32+ input channels): against the f64 reference, with the block forward
/// among its dispatches; strides 2 and 3, per-axis arguments, dilation, groups, a 1x1 stride-2
/// projection (three of its four phases have no tap: zeros), odd maps; where a phase's padding
/// would be negative (stride 3 with padding 1; a 1x1 with padding) the register
/// kernel runs.
#[test]
fn conv2d_gpu_strided_input_gradient_through_block_phases() {
    use convoy::internals::kernels::conv;
    use convoy::ops::Conv2dGeom;
    let g = open_gpu(convoy::Gpu::builder().kernels(convoy::KernelFamily::Gpu));
    let mut rng = Rng::new(41);
    // (x shape, cout, kernel, stride, padding, dilation, groups, through the block phases)
    type Case = (
        [usize; 4],
        usize,
        [usize; 2],
        [usize; 2],
        [usize; 2],
        [usize; 2],
        usize,
        bool,
    );
    let cases: [Case; 8] = [
        ([2, 32, 11, 9], 24, [3, 3], [2, 2], [1, 1], [1, 1], 1, true),
        ([1, 40, 14, 14], 48, [1, 1], [2, 2], [0, 0], [1, 1], 1, true),
        ([2, 33, 10, 13], 16, [3, 5], [2, 3], [1, 2], [1, 1], 1, true),
        ([1, 32, 15, 15], 8, [3, 3], [3, 3], [1, 1], [2, 2], 1, false),
        ([1, 32, 16, 17], 8, [3, 3], [3, 3], [0, 0], [1, 1], 1, true),
        ([1, 64, 8, 8], 64, [3, 3], [2, 2], [1, 1], [1, 1], 2, true),
        ([2, 36, 7, 7], 20, [7, 7], [2, 2], [3, 3], [1, 1], 1, true),
        ([1, 32, 9, 9], 8, [1, 1], [2, 2], [1, 1], [1, 1], 1, false),
    ];
    for (xs, cout, [kh, kw], stride, pad, dil, groups, phased) in cases {
        let ws = [cout, xs[1] / groups, kh, kw];
        let args = Conv2dArgs::new(1, 0, 1, groups).hw(stride, pad, dil);
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        let ys = geom.out_shape();
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let dy = rng.vec(ys.numel(), -1.0, 1.0);
        let (want_dx, _) =
            reference::conv2d_backward(&to_f64(&x), xs, &to_f64(&w), ws, &to_f64(&dy), stride, pad, dil, groups);
        let what = format!("x{xs:?} w{ws:?} s{stride:?} p{pad:?} d{dil:?} g{groups}");
        let wt = Tensor::from_slice(&g, &w, ws).unwrap();
        let dyt = Tensor::from_slice(&g, &dy, ys.clone()).unwrap();
        let dx = Tensor::empty(&g, xs).unwrap();
        let ds = conv::backward_data(&g, &geom, dyt.buffer(), wt.buffer(), dx.buffer(), DType::F32, None).unwrap();
        let block = ds.iter().any(|d| d.pipeline.shader.name == "conv2d_fwd_block");
        assert_eq!(block, phased, "{what}: through the block phases");
        g.run(&ds);
        assert_close(&format!("input grad {what}"), &dx.to_vec().unwrap(), &want_dx, RTOL);
    }
}

/// With tuning on, each family times its candidates on a sample of the problem (a CPU driver:
/// the first images and the first 64 tile rows), then runs the winner on the whole of it. The
/// sample of an input gradient through the texture forward cuts the forward's output channels,
/// which are the conv's input channels: the transposed weights packed for it must follow
/// (`bench models` with tuning on failed here on a ResNet's 512-channel head). Shapes with more
/// than 64 channels on both sides, strided and not, and a 1x1 on a 1x1 map (a classifier
/// lowered as a conv), each forward, input and weight gradient against the f64 reference.
#[test]
fn conv2d_tuned_on_samples_of_wide_convs() {
    use convoy::internals::kernels::conv;
    use convoy::ops::Conv2dGeom;
    use convoy::{Gpu, KernelFamily};
    let mut rng = Rng::new(41);
    // (n, cin, hw, cout, k, stride, pad)
    let shapes = [
        (2, 72, 5, 80, 3, 1, 1),
        (2, 80, 6, 72, 3, 2, 1),
        (3, 130, 1, 10, 1, 1, 0),
        (2, 96, 4, 66, 1, 2, 0),
    ];
    for family in [KernelFamily::Cpu, KernelFamily::Gpu] {
        let dir = std::env::temp_dir().join(format!("convoy-tune-wide-{}-{family:?}", std::process::id()));
        let g = open_gpu(
            Gpu::builder()
                .tune(true)
                .tune_cache(dir.join("tune.tsv"))
                .kernels(family),
        );
        for (n, cin, hw, cout, k, stride, pad) in shapes {
            let (xs, ws) = ([n, cin, hw, hw], [cout, cin, k, k]);
            let args = Conv2dArgs::new(stride, pad, 1, 1);
            let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
            let ys = geom.out_shape();
            let x = rng.vec(xs.iter().product(), -1.0, 1.0);
            let w = rng.vec(ws.iter().product(), -0.5, 0.5);
            let dy = rng.vec(ys.numel(), -1.0, 1.0);
            let (want_y, _) = reference::conv2d(&to_f64(&x), xs, &to_f64(&w), ws, None, stride, pad, 1, 1);
            let (want_dx, want_dw) =
                reference::conv2d_backward(&to_f64(&x), xs, &to_f64(&w), ws, &to_f64(&dy), stride, pad, 1, 1);
            let xt = Tensor::from_slice(&g, &x, xs).unwrap();
            let wt = Tensor::from_slice(&g, &w, ws).unwrap();
            let dyt = Tensor::from_slice(&g, &dy, ys.clone()).unwrap();
            let (y, dx, dw) = (
                Tensor::empty(&g, ys.clone()).unwrap(),
                Tensor::empty(&g, xs).unwrap(),
                Tensor::empty(&g, ws).unwrap(),
            );
            let what = format!("{family:?} tuned: x{xs:?} w{ws:?} s{stride} p{pad}");
            let b = conv::ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer());
            let mut ds = conv::forward(&g, &geom, Default::default(), DType::F32, &b).unwrap();
            ds.extend(
                conv::backward_data(&g, &geom, dyt.buffer(), wt.buffer(), dx.buffer(), DType::F32, None).unwrap(),
            );
            let bufs = conv::WeightGradientBuffers {
                dy: dyt.buffer(),
                x: xt.buffer(),
                dw: dw.buffer(),
            };
            ds.extend(conv::backward_weight(&g, &geom, &bufs, DType::F32, None).unwrap());
            g.run(&ds);
            assert_close(&format!("forward {what}"), &y.to_vec().unwrap(), &want_y, RTOL);
            assert_close(&format!("input grad {what}"), &dx.to_vec().unwrap(), &want_dx, RTOL);
            assert_close(&format!("weight grad {what}"), &dw.to_vec().unwrap(), &want_dw, RTOL);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The texture forward with its shape and its epilogue's bias and residual in its Params builds
/// one conv pipeline for convs with the same taps and activation that differ in their maps'
/// sizes, strides, padding, bias and residual, and stays exact; with them in override
/// constants it builds one per conv.
/// Fresh devices, so that other tests' pipelines do not count.
#[test]
fn texture_forward_shares_one_pipeline_across_shapes() {
    use convoy::graph::{Act, Epilogue};
    use convoy::internals::kernels::conv::{self, ConvTile, TileKind};
    use convoy::ops::Conv2dGeom;
    let mut rng = Rng::new(41);
    // (n, hw, stride, pad): one conv's channels and kernel, four maps and strides
    let shapes = [(2, 9, 1, 1), (1, 14, 2, 1), (3, 5, 1, 0), (2, 23, 2, 2)];
    let (cin, cout, k) = (7, 9, 3);
    let mut built = Vec::new();
    for in_params in [true, false] {
        let dev = open_gpu(
            convoy::Gpu::builder()
                .kernels(convoy::KernelFamily::Cpu)
                .shape_in_params(in_params),
        );
        assert_eq!(dev.policy().shape_in_params, in_params);
        let tile = ConvTile {
            ocb: 4,
            wg: 16,
            kind: TileKind::Texture { px: 4 },
        };
        let ws = [cout, cin, k, k];
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let wt = Tensor::from_slice(&dev, &w, ws).unwrap();
        let b = rng.vec(cout, -1.0, 1.0);
        let bt = Tensor::from_slice(&dev, &b, [cout]).unwrap();
        for (i, (n, hw, stride, pad)) in shapes.into_iter().enumerate() {
            let xs = [n, cin, hw, hw];
            let geom = Conv2dGeom::new(&xs.into(), &ws.into(), Conv2dArgs::new(stride, pad, 1, 1)).unwrap();
            let x = rng.vec(xs.iter().product(), -1.0, 1.0);
            let xt = Tensor::from_slice(&dev, &x, xs).unwrap();
            let r = rng.vec(geom.out_shape().numel(), -1.0, 1.0);
            let rt = Tensor::from_slice(&dev, &r, geom.out_shape()).unwrap();
            // bias on every other shape, a residual on the others (in the Params with the
            // shape: still one pipeline); the activation, a constant, the same for all
            let (bias, act) = (i % 2 == 0, Act::Silu);
            let epi = Epilogue { residual: !bias, act };
            let y = Tensor::empty(&dev, geom.out_shape()).unwrap(); // NaN: every output written
            let bufs = conv::ForwardBuffers {
                bias: bias.then(|| bt.buffer()),
                residual: (!bias).then(|| rt.buffer()),
                ..conv::ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer())
            };
            dev.run(&conv::forward_tiled(&dev, &geom, tile, epi, DType::F32, &bufs).unwrap());
            let b64 = to_f64(&b);
            let bias64 = bias.then_some(&b64[..]);
            let (conv, _) = reference::conv2d(&to_f64(&x), xs, &to_f64(&w), ws, bias64, stride, pad, 1, 1);
            let want: Vec<f64> = conv
                .iter()
                .zip(&r)
                .map(|(&c, &r)| reference::activation(act, c + if bias { 0.0 } else { r as f64 }))
                .collect();
            let what = format!("x{xs:?} s{stride} p{pad} {}, shape in params {in_params}", act.name());
            assert_close(&what, &y.to_vec().unwrap(), &want, RTOL);
        }
        built.push(dev.pipeline_count());
    }
    // the packings build the same pipelines either way: one conv pipeline against four
    assert_eq!(
        built[1] - built[0],
        3,
        "pipelines with the shape in params, in constants: {built:?}"
    );
}

/// The gpu family's input gradients through the variant table where it runs the large-tile
/// forward of dy split over K (at stride 1, its own choice; per stride phase, the forward's): a stride phase run as a forward has no padding yet reads past dy's edge (its last
/// outputs' taps fall outside), so the large tile's aligned variant without the image-bounds
/// check (UNPADDED) must not take it. Then the weight gradients of the same shapes.
#[test]
fn conv2d_gpu_family_gradients_through_split_forwards() {
    use convoy::internals::kernels::conv;
    use convoy::ops::Conv2dGeom;
    use convoy::{Gpu, KernelFamily};
    let g = open_gpu(Gpu::builder().kernels(KernelFamily::Gpu));
    let mut rng = Rng::new(46);
    // (x, w, stride): a 7x7 stage (the forward of dy split, by the input gradient's table); a
    // stride-2 conv onto 4x4 (4 phases of 2x2, 2x1, 1x2, 1x1 taps over 4x4 maps of dy, each
    // through the forward's table: split)
    for (xs, ws, s) in [
        ([2, 256, 7, 7], [256, 256, 3, 3], 1),
        ([2, 128, 8, 8], [256, 128, 3, 3], 2),
    ] {
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), Conv2dArgs::new(s, 1, 1, 1)).unwrap();
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let dy = rng.vec(geom.out_shape().numel(), -1.0, 1.0);
        let (want_dx, want_dw) = reference::conv2d_backward(&to_f64(&x), xs, &to_f64(&w), ws, &to_f64(&dy), s, 1, 1, 1);
        let xt = Tensor::from_slice(&g, &x, xs).unwrap();
        let wt = Tensor::from_slice(&g, &w, ws).unwrap();
        let dyt = Tensor::from_slice(&g, &dy, geom.out_shape()).unwrap();
        let dx = Tensor::empty(&g, xs).unwrap();
        let ds = conv::backward_data(&g, &geom, dyt.buffer(), wt.buffer(), dx.buffer(), DType::F32, None).unwrap();
        assert!(
            ds.iter().any(|d| d.pipeline.shader.name == "conv2d_split_k_epilogue"),
            "x{xs:?} s{s}: no split forward"
        );
        g.run(&ds);
        assert_close(&format!("dx x{xs:?} s{s}"), &dx.to_vec().unwrap(), &want_dx, RTOL);
        let dw = Tensor::empty(&g, ws).unwrap();
        let bufs = conv::WeightGradientBuffers {
            dy: dyt.buffer(),
            x: xt.buffer(),
            dw: dw.buffer(),
        };
        g.run(&conv::backward_weight(&g, &geom, &bufs, DType::F32, None).unwrap());
        assert_close(&format!("dw x{xs:?} s{s}"), &dw.to_vec().unwrap(), &want_dw, RTOL);
    }
}
