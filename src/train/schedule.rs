//! The 1cycle schedule of fastai's `fit_one_cycle`: learning rate warms up from lr_max/div to
//! lr_max over the first `pct_start` of the steps, then anneals to lr_max/div_final, both by
//! cosine; momentum moves the opposite way, 0.95 -> 0.85 -> 0.95.

#[derive(Clone, Copy, Debug)]
pub struct OneCycle {
    pub lr_max: f32,
    pub total_steps: usize,
    pub pct_start: f32,
    pub div: f32,
    pub div_final: f32,
    pub moms: (f32, f32, f32),
}

impl OneCycle {
    /// fastai's defaults: pct_start 0.25, div 25, div_final 1e5, moms (0.95, 0.85, 0.95).
    pub fn new(lr_max: f32, total_steps: usize) -> OneCycle {
        OneCycle {
            lr_max,
            total_steps,
            pct_start: 0.25,
            div: 25.0,
            div_final: 1e5,
            moms: (0.95, 0.85, 0.95),
        }
    }

    /// (learning rate, momentum) at step `i` (0-based).
    pub fn at(&self, i: usize) -> (f32, f32) {
        let pos = i as f32 / self.total_steps.max(1) as f32;
        let warm = self.pct_start;
        let cos = |start: f32, end: f32, t: f32| end + (start - end) / 2.0 * (1.0 + (std::f32::consts::PI * t).cos());
        let (lr0, lr1, lr2) = (self.lr_max / self.div, self.lr_max, self.lr_max / self.div_final);
        let (m0, m1, m2) = self.moms;
        if pos < warm {
            let t = pos / warm;
            (cos(lr0, lr1, t), cos(m0, m1, t))
        } else {
            let t = ((pos - warm) / (1.0 - warm)).min(1.0);
            (cos(lr1, lr2, t), cos(m1, m2, t))
        }
    }
}
