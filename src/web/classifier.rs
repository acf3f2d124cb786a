//! `Classifier`: a model and its weights on the browser's GPU; images in, logits out.

use super::{check_model, describe, js, open_gpu};
use crate::exec::{Inference, ParamStore};
use crate::nn::{by_name, Model, Net};
use crate::Gpu;
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;

/// The models the page offers: the native main job's small ResNet (Fashion-MNIST) and the
/// torchvision ImageNet models whose weights the user picks.
const MODELS: [&str; 4] = ["resnet_mini", "simple_cnn", "resnet18", "mobilenet_v2"];

#[wasm_bindgen]
pub struct Classifier {
    gpu: Gpu,
    model: Box<dyn Model>,
    store: RefCell<ParamStore>,
    /// a plan per batch size asked for
    plans: RefCell<HashMap<usize, Inference>>,
    classes: usize,
    /// (channels, height, width) of one image
    image: [usize; 3],
}

#[wasm_bindgen]
impl Classifier {
    /// Open the GPU, build `model` for `num_classes` classes and `in_channels` x `size` x `size`
    /// images, and load `weights` (a safetensors file with torchvision names, e.g. the
    /// `model.safetensors` a native `convoy train --out` writes). Every tensor must fit the model.
    pub async fn create(
        model: String,
        weights: Vec<u8>,
        num_classes: usize,
        in_channels: usize,
        size: usize,
    ) -> Result<Classifier, JsError> {
        super::report_panics();
        check_model(&model, &MODELS)?;
        if num_classes == 0 || in_channels == 0 || !(8..=1024).contains(&size) {
            return Err(JsError::new(&format!(
                "need at least one class and channel and a size in 8..=1024 (got {num_classes}, {in_channels}, {size})"
            )));
        }
        let gpu = open_gpu().await?;
        let m = by_name(&model, num_classes, in_channels).map_err(js)?;
        let tensors = crate::io::safetensors::parse_safetensors(&weights, "the weights file").map_err(js)?;
        crate::io::safetensors::reject_non_finite(&tensors, "the weights file").map_err(js)?;
        let store = crate::io::safetensors::store_from_host(&gpu, tensors).map_err(js)?;
        let c = Classifier {
            gpu,
            model: m,
            store: RefCell::new(store),
            plans: RefCell::new(HashMap::new()),
            classes: num_classes,
            image: [in_channels, size, size],
        };
        // build the single-image plan now: a weights file that does not fit fails here
        c.plan(1)?;
        Ok(c)
    }

    fn plan(&self, n: usize) -> Result<(), JsError> {
        if self.plans.borrow().contains_key(&n) {
            return Ok(());
        }
        let [ch, h, w] = self.image;
        let mut net = Net::new(false);
        let x = net.graph.input("x", [n, ch, h, w]);
        let logits = self.model.forward(&mut net, x).map_err(js)?;
        let mut store = self.store.borrow_mut();
        net.check_state(&store, "the weights file").map_err(js)?;
        let inf = Inference::compile(&self.gpu, net.graph, &[logits], &mut store).map_err(js)?;
        self.plans.borrow_mut().insert(n, inf);
        Ok(())
    }

    /// Logits (n x num_classes) of `n` images laid out (n, C, H, W) as `create` set.
    pub async fn classify(&self, images: Vec<f32>, n: usize) -> Result<Vec<f32>, JsError> {
        let [ch, h, w] = self.image;
        if n == 0 || n > 256 || images.len() != n * ch * h * w {
            return Err(JsError::new(&format!(
                "{} values are not {n} images of {ch} x {h} x {w} (1 to 256 images)",
                images.len()
            )));
        }
        self.plan(n)?;
        // the plan stays in the map while it runs; a RefCell borrow must not cross the await
        let plan = self.plans.borrow_mut().remove(&n).expect("built above");
        let out = plan.run_async(&images, None).await;
        self.plans.borrow_mut().insert(n, plan);
        Ok(out.map_err(js)?.remove(0))
    }

    pub fn adapter(&self) -> String {
        describe(&self.gpu)
    }

    pub fn num_classes(&self) -> usize {
        self.classes
    }
}
