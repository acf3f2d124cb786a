//! Plots of a training run as PNG bytes (the caller writes them with `io::write_file`): drawn
//! with plotters into an RGB buffer, text in the embedded DejaVu Sans (assets/fonts).

use super::ActivationStats;
use crate::error::{Error, Result};
use crate::io::image::encode_png;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::arg("plot", "drawing", e.to_string())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draw into a white `w` x `h` canvas and encode it as PNG.
fn render(w: u32, h: u32, draw: impl FnOnce(&Area) -> Result<()>) -> Result<Vec<u8>> {
    static FONT_ONCE: Once = Once::new();
    FONT_ONCE.call_once(|| {
        // the font is part of the binary; a failure here is a build defect, reported below as
        // missing text rather than a panic
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    encode_png(w as usize, h as usize, 3, &buf)
}

fn range(vals: impl Iterator<Item = f32>) -> (f32, f32) {
    let (lo, hi) = vals
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-6);
    (lo - pad, hi + pad)
}

/// One panel: each series as a line over its index, with a legend when there are several.
fn lines(area: &Area, title: &str, x_desc: &str, series: &[(String, Vec<f32>)]) -> Result<()> {
    let n = series.iter().map(|s| s.1.len()).max().unwrap_or(0).max(2);
    let (lo, hi) = range(series.iter().flat_map(|s| s.1.iter().copied()));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0f32..(n - 1) as f32, lo..hi)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        // whole indices, few enough that long runs' labels do not run together
        .x_labels(6)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_err)?;
    for (i, (name, ys)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pts = ys
            .iter()
            .enumerate()
            .filter(|(_, y)| y.is_finite())
            .map(|(x, &y)| (x as f32, y));
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(plot_err)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    if series.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(plot_err)?;
    }
    Ok(())
}

/// Moving average over `k` points (the noisy per-batch loss made readable, as fastai plots it).
fn smooth(v: &[f32], k: usize) -> Vec<f32> {
    (0..v.len())
        .map(|i| {
            let lo = i.saturating_sub(k - 1);
            v[lo..=i].iter().sum::<f32>() / (i + 1 - lo) as f32
        })
        .collect()
}

/// Loss (raw and smoothed), learning rate and momentum per training batch, from the Learner's
/// recorder of (loss, lr, momentum).
pub fn training_curves(recorder: &[(f32, f32, f32)]) -> Result<Vec<u8>> {
    let loss: Vec<f32> = recorder.iter().map(|r| r.0).collect();
    let lr: Vec<f32> = recorder.iter().map(|r| r.1).collect();
    let mom: Vec<f32> = recorder.iter().map(|r| r.2).collect();
    render(1200, 420, |root| {
        let panels = root.split_evenly((1, 3));
        let k = (loss.len() / 50).max(1);
        lines(
            &panels[0],
            "training loss",
            "batch",
            &[
                ("per batch".into(), loss.clone()),
                (format!("mean of {k}"), smooth(&loss, k)),
            ],
        )?;
        lines(&panels[1], "learning rate", "batch", &[("lr".into(), lr.clone())])?;
        lines(&panels[2], "momentum", "batch", &[("momentum".into(), mom.clone())])
    })
}

/// Per-layer mean, standard deviation and fraction near zero of the activations, per batch.
pub fn activation_curves(stats: &ActivationStats) -> Result<Vec<u8>> {
    let per = |which: usize| -> Vec<(String, Vec<f32>)> {
        (0..stats.names.len())
            .map(|l| (stats.names[l].clone(), stats.series(l, which)))
            .collect()
    };
    let near = format!("fraction with |x| <= {}", stats.config.near);
    render(1500, 480, |root| {
        let panels = root.split_evenly((1, 3));
        lines(&panels[0], "activation mean", "batch", &per(0))?;
        lines(&panels[1], "activation std", "batch", &per(1))?;
        lines(&panels[2], &near, "batch", &per(2))
    })
}

/// A perceptual colour ramp (dark blue -> green -> yellow, like viridis) for t in [0, 1].
fn ramp(t: f64) -> RGBColor {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [68.0, 1.0, 84.0]),
        (0.25, [59.0, 82.0, 139.0]),
        (0.5, [33.0, 145.0, 140.0]),
        (0.75, [94.0, 201.0, 98.0]),
        (1.0, [253.0, 231.0, 37.0]),
    ];
    let t = t.clamp(0.0, 1.0);
    let i = STOPS.iter().position(|s| s.0 >= t).unwrap_or(4).max(1);
    let (a, b) = (STOPS[i - 1], STOPS[i]);
    let f = (t - a.0) / (b.0 - a.0);
    let c = |k: usize| (a.1[k] + f * (b.1[k] - a.1[k])) as u8;
    RGBColor(c(0), c(1), c(2))
}

/// fastai's "colorful dimension": for each layer, the histogram of its activations over the
/// batches (x: batch, y: activation value from 0 at the bottom, colour: log(1 + count)).
pub fn colorful_dimension(stats: &ActivationStats) -> Result<Vec<u8>> {
    let layers = stats.names.len().max(1);
    let cols = layers.min(3);
    let rows = layers.div_ceil(cols);
    let bins = stats.config.bins;
    let hi = stats.config.hi;
    render(420 * cols as u32, 300 * rows as u32, |root| {
        let panels = root.split_evenly((rows, cols));
        for (l, name) in stats.names.iter().enumerate() {
            let hists = stats.histograms(l);
            let n = hists.len().max(1);
            let logs: Vec<Vec<f64>> = hists
                .iter()
                .map(|h| h.iter().map(|&c| f64::from(c).ln_1p()).collect())
                .collect();
            let top = logs.iter().flatten().copied().fold(1e-9, f64::max);
            let mut chart = ChartBuilder::on(&panels[l])
                .caption(name, ("sans-serif", 16))
                .margin(6)
                .x_label_area_size(26)
                .y_label_area_size(40)
                .build_cartesian_2d(0f32..n as f32, 0f32..hi)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("batch")
                .x_labels(4)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .draw()
                .map_err(plot_err)?;
            let bw = hi / bins as f32;
            let cells = logs.iter().enumerate().flat_map(|(x, h)| {
                h.iter().enumerate().map(move |(b, &v)| {
                    let (x, y) = (x as f32, b as f32 * bw);
                    Rectangle::new([(x, y), (x + 1.0, y + bw)], ramp(v / top).filled())
                })
            });
            chart.draw_series(cells).map_err(plot_err)?;
        }
        Ok(())
    })
}

/// One panel of named curves over their index (e.g. training loss per batch of several runs).
pub fn curves(title: &str, x_desc: &str, series: &[(String, Vec<f32>)]) -> Result<Vec<u8>> {
    render(900, 520, |root| lines(root, title, x_desc, series))
}
