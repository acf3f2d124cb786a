//! Channel copies (concat, slice, the slice's zero-filled backward) and the channel shuffle,
//! against index arithmetic on the host, with values that name their (n, c, pixel).

use crate::common::gpu;
use convoy::internals::ops::channels::{copy, shuffle, Range};
use convoy::Tensor;

/// A value per (n, c, s) that no other position shares.
fn coded(n: usize, c: usize, hw: usize) -> Vec<f32> {
    (0..n * c * hw).map(|i| i as f32 + 0.5).collect()
}

#[test]
fn concat_slice_and_pad_copy_the_right_channels() {
    let g = gpu();
    for (n, hw) in [(1, 1), (2, 7 * 5), (3, 300)] {
        let (ca, cb) = (3, 5);
        let (a, b) = (coded(n, ca, hw), coded(n, cb, hw));
        let at = Tensor::from_slice(g, &a, [n, ca, hw, 1]).unwrap();
        let bt = Tensor::from_slice(g, &b, [n, cb, hw, 1]).unwrap();
        let cat = Tensor::empty(g, [n, ca + cb, hw, 1]).unwrap(); // NaN until written
        let r = |src_c, src_off, dst_off, count| Range {
            src_c,
            dst_c: ca + cb,
            src_off,
            dst_off,
            count,
        };
        g.run(&[
            copy(g, [n, hw], r(ca, 0, 0, ca), false, at.buffer(), cat.buffer()).unwrap(),
            copy(g, [n, hw], r(cb, 0, ca, cb), false, bt.buffer(), cat.buffer()).unwrap(),
        ]);
        let got = cat.to_vec().unwrap();
        for i in 0..n {
            for c in 0..ca + cb {
                for s in 0..hw {
                    let want = if c < ca {
                        a[(i * ca + c) * hw + s]
                    } else {
                        b[(i * cb + c - ca) * hw + s]
                    };
                    assert_eq!(got[(i * (ca + cb) + c) * hw + s], want, "concat n{i} c{c} s{s}");
                }
            }
        }
        // channels 2..6 of the concat out, and back into zeros (the slice's backward)
        let slice = Tensor::empty(g, [n, 4, hw, 1]).unwrap();
        let out = Range {
            src_c: ca + cb,
            dst_c: 4,
            src_off: 2,
            dst_off: 0,
            count: 4,
        };
        g.run(&[copy(g, [n, hw], out, false, cat.buffer(), slice.buffer()).unwrap()]);
        let padded = Tensor::empty(g, [n, ca + cb, hw, 1]).unwrap();
        let back = Range {
            src_c: 4,
            dst_c: ca + cb,
            src_off: 0,
            dst_off: 2,
            count: 4,
        };
        g.run(&[copy(g, [n, hw], back, true, slice.buffer(), padded.buffer()).unwrap()]);
        let (s, p) = (slice.to_vec().unwrap(), padded.to_vec().unwrap());
        for i in 0..n {
            for c in 0..ca + cb {
                for px in 0..hw {
                    let at = (i * (ca + cb) + c) * hw + px;
                    if (2..6).contains(&c) {
                        assert_eq!(s[(i * 4 + c - 2) * hw + px], got[at], "slice n{i} c{c}");
                        assert_eq!(p[at], got[at], "pad n{i} c{c}");
                    } else {
                        assert_eq!(p[at], 0.0, "pad n{i} c{c} outside the range");
                    }
                }
            }
        }
    }
}

#[test]
fn channel_shuffle_transposes_the_group_grid_and_inverts() {
    let g = gpu();
    for (n, c, hw, groups) in [(2, 6, 5, 2), (1, 12, 9, 3), (3, 116, 4, 2)] {
        let x = coded(n, c, hw);
        let xt = Tensor::from_slice(g, &x, [n, c, hw, 1]).unwrap();
        let y = Tensor::empty(g, [n, c, hw, 1]).unwrap();
        g.run(&[shuffle(g, [n, c, hw], groups, xt.buffer(), y.buffer()).unwrap()]);
        let got = y.to_vec().unwrap();
        // PyTorch: x.view(n, groups, c / groups, hw).transpose(1, 2).reshape(n, c, hw)
        let cpg = c / groups;
        for i in 0..n {
            for gi in 0..groups {
                for k in 0..cpg {
                    for s in 0..hw {
                        let out_c = k * groups + gi;
                        assert_eq!(got[(i * c + out_c) * hw + s], x[(i * c + gi * cpg + k) * hw + s]);
                    }
                }
            }
        }
        // the shuffle in c / groups groups undoes it (its backward)
        let back = Tensor::empty(g, [n, c, hw, 1]).unwrap();
        g.run(&[shuffle(g, [n, c, hw], cpg, y.buffer(), back.buffer()).unwrap()]);
        assert_eq!(back.to_vec().unwrap(), x);
    }
}

#[test]
fn channel_ops_refuse_bad_shapes() {
    let mut graph = convoy::graph::Graph::new();
    let a = graph.input("a", [2, 3, 4, 4]);
    let b = graph.input("b", [2, 3, 4, 5]);
    let e = graph.concat(&[a, b]).unwrap_err().to_string();
    assert!(e.contains("concat") && e.contains("[2, 3, 4, 5]"), "{e}");
    assert!(graph.concat(&[]).is_err());
    let e = graph.slice_channels(a, 2, 2).unwrap_err().to_string();
    assert!(e.contains("slice_channels") && e.contains("2..4"), "{e}");
    let e = graph.channel_shuffle(a, 2).unwrap_err().to_string();
    assert!(e.contains("channel_shuffle") && e.contains("3 channels"), "{e}");
    assert_eq!(graph.chunk(a, 2).unwrap().len(), 2, "3 channels in chunks of 2 and 1");
}
