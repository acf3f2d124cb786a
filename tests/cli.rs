//! The `convoy` command line as a user runs it: training with outputs, resume, eval, and the
//! errors for bad flags; and a run killed at random moments never leaves a corrupt checkpoint.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn convoy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convoy"))
        .args(args)
        .output()
        .expect("the convoy binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("convoy-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `convoy train` of the MNIST-chapter CNN on a generated image folder, small and quick.
fn small_train(data: &str) -> Vec<&str> {
    vec![
        "train",
        "--model",
        "simple_cnn",
        "--data",
        data,
        "--bs",
        "4",
        "--size",
        "16",
    ]
}

/// `convoy train --precision mixed`: trains where the adapter has shader-f16 (the loss
/// scaler in the checkpoint, not in the weights-only file; metrics.json says the precision),
/// and is refused naming the feature where it has not.
#[test]
fn train_in_mixed_precision_keeps_its_scaler_in_checkpoints() {
    let root = common::images::make_folder("cli-mixed");
    let data = format!("folder={}", s(&root));
    let out = tmp("mixed");
    let mut args = small_train(&data);
    args.extend(["--epochs", "1", "--out", s(&out), "--precision", "mixed"]);
    let o = convoy(&args);
    if !common::gpu().info().has_f16() {
        assert!(!o.status.success() && text(&o).contains("shader-f16"), "{}", text(&o));
        return;
    }
    assert!(o.status.success(), "{}", text(&o));
    let names = |f: &str| {
        let bytes = std::fs::read(out.join(f)).unwrap();
        convoy::io::safetensors::parse_safetensors(&bytes, f)
            .unwrap()
            .into_keys()
            .collect::<Vec<String>>()
    };
    assert!(names("checkpoint.safetensors").contains(&"grad_scaler".to_string()));
    assert!(!names("model.safetensors").contains(&"grad_scaler".to_string()));
    let metrics = std::fs::read_to_string(out.join("metrics.json")).unwrap();
    assert!(metrics.contains("\"precision\":\"mixed\""), "{metrics}");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn train_writes_its_outputs_resumes_and_evaluates() {
    let root = common::images::make_folder("cli-train");
    let data = format!("folder={}", s(&root));
    let out = tmp("train");
    let base = small_train(&data);
    let mut first = base.clone();
    first.extend(["--epochs", "3", "--out", s(&out), "--stats"]);
    let o = convoy(&first);
    assert!(o.status.success(), "{}", text(&o));
    for f in [
        "metrics.json",
        "checkpoint.safetensors",
        "model.safetensors",
        "training_curves.png",
        "activation_stats.json",
        "activation_curves.png",
        "colorful_dimension.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing:\n{}", text(&o));
    }
    let metrics = std::fs::read_to_string(out.join("metrics.json")).unwrap();
    assert_eq!(metrics.matches("\"epoch\":").count(), 3, "{metrics}");
    let last_top1 = text(&o)
        .lines()
        .find_map(|l| {
            l.strip_prefix("test accuracy: ")
                .map(|r| r.split('%').next().unwrap().to_string())
        })
        .expect("prints the test accuracy");

    // eval of the saved weights reproduces the final accuracy
    let o = convoy(&[
        "eval",
        "--model",
        "simple_cnn",
        "--data",
        &data,
        "--bs",
        "4",
        "--size",
        "16",
        "--weights",
        s(&out.join("model.safetensors")),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("top-1 {last_top1}%")),
        "{} vs {last_top1}",
        text(&o)
    );

    // resuming a finished run has nothing to do; a different model is refused
    let ckpt = out.join("checkpoint.safetensors");
    let mut again = base.clone();
    again.extend(["--epochs", "3", "--resume", s(&ckpt)]);
    let o = convoy(&again);
    assert!(
        o.status.success() && text(&o).contains("nothing to train"),
        "{}",
        text(&o)
    );
    let o = convoy(&[
        "train",
        "--model",
        "resnet_mini",
        "--data",
        &data,
        "--epochs",
        "3",
        "--resume",
        s(&ckpt),
    ]);
    assert!(!o.status.success() && text(&o).contains("simple_cnn"), "{}", text(&o));
}

/// A resumed run's metrics.json has every epoch, those before the resume too (the checkpoint
/// carries them): the full-data run of 2026-12-04 resumed after epoch 2 and wrote only 3 and 4.
#[test]
fn resumed_run_writes_the_whole_history() {
    let root = common::images::make_folder("cli-resume-history");
    let data = format!("folder={}", s(&root));
    let (a, b) = (tmp("resume-history-a"), tmp("resume-history-b"));
    let mut base = small_train(&data);
    base.push("--constant-lr");
    let mut first = base.clone();
    first.extend(["--epochs", "1", "--out", s(&a)]);
    let o = convoy(&first);
    assert!(o.status.success(), "{}", text(&o));
    let ckpt = a.join("checkpoint.safetensors");
    let mut second = base.clone();
    second.extend(["--epochs", "2", "--out", s(&b), "--resume", s(&ckpt)]);
    let o = convoy(&second);
    assert!(o.status.success(), "{}", text(&o));
    let before = std::fs::read_to_string(a.join("metrics.json")).unwrap();
    let after = std::fs::read_to_string(b.join("metrics.json")).unwrap();
    assert_eq!(after.matches("\"epoch\":").count(), 2, "{after}");
    // the first epoch's record, digit for digit
    let first_epoch = &before[before.find("{\"epoch\":1").unwrap()..before.rfind(']').unwrap()];
    assert!(after.contains(first_epoch), "{before}\n{after}");
    assert!(after.contains("{\"epoch\":2"), "{after}");
}

#[test]
fn bad_flags_are_clear_errors() {
    for (args, says) in [
        (vec!["train", "--model", "resnet9000"], "resnet_mini"),
        (vec!["train", "--lr", "-1"], "--lr"),
        (vec!["train", "--bs", "0"], "at least 1"),
        (vec!["train", "--label-smoothing", "1.5"], "[0, 1)"),
        (vec!["train", "--weight-decay", "-0.1"], "--weight-decay"),
        (vec!["train", "--data", "imagenet"], "folder=PATH"),
        (
            vec!["train", "--data", "folder=/nonexistent/convoy"],
            "/nonexistent/convoy",
        ),
        (vec!["train", "--size", "20", "--size-start", "28"], "--size-start"),
        (vec!["train", "--stats"], "--out"),
        (
            vec!["eval", "--model", "simple_cnn", "--weights", "/nonexistent.safetensors"],
            "/nonexistent.safetensors",
        ),
        (vec!["bench", "nothing"], "nothing"),
    ] {
        let o = convoy(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{args:?}: {}", text(&o));
    }
}

/// Kill a training run (SIGKILL) at many moments, some during checkpoint writes (tiny epochs
/// make them frequent): the checkpoint on disk is always absent or complete and loadable.
#[test]
fn killing_a_run_never_corrupts_its_checkpoint() {
    let root = common::images::make_folder("cli-kill");
    let data = format!("folder={}", s(&root));
    let out = tmp("kill");
    let gpu = common::gpu();
    let mut loaded = 0;
    for k in 0..8u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_convoy"))
            .args([
                "train",
                "--model",
                "simple_cnn",
                "--data",
                &data,
                "--bs",
                "4",
                "--size",
                "8",
            ])
            .args(["--epochs", "500", "--out", s(&out)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let ckpt = out.join("checkpoint.safetensors");
        if k == 0 {
            // the first run lives until its first checkpoint (however loaded the machine is);
            // the later ones die at staggered times, some of them mid-write
            let start = std::time::Instant::now();
            while !ckpt.exists() && start.elapsed().as_secs() < 300 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(1500 + 137 * k));
        child.kill().unwrap();
        child.wait().unwrap();
        if ckpt.exists() {
            let (_, info) = convoy::train::load_checkpoint(gpu, &ckpt)
                .unwrap_or_else(|e| panic!("kill {k}: the checkpoint is corrupt: {e}"));
            assert!(info.epoch >= 1);
            loaded += 1;
        }
        // no temporary file is left looking like a checkpoint
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| !n.ends_with(".safetensors") || n == "checkpoint.safetensors"),
            "{names:?}"
        );
    }
    assert!(loaded >= 4, "too few kills landed after a first checkpoint ({loaded})");
}

/// `convoy info --model`: each conv of the model with the kernel of each of its passes and why
/// (the conv variant table), under each kernel family; with the tuner on, the tile it recorded
/// for a shape after a run that tuned it; and bad flags refused by name.
#[test]
fn info_prints_the_kernel_of_each_conv_pass() {
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_convoy"))
            .envs(env.iter().copied())
            .args(args)
            .output()
            .expect("the convoy binary runs");
        (o.status.success(), text(&o))
    };
    let info = [
        "info",
        "--model",
        "resnet18",
        "--batch",
        "2",
        "--size",
        "32",
        "--classes",
        "10",
    ];
    let (ok, out) = run(&[("CONVOY_TUNE", "0"), ("CONVOY_KERNELS", "cpu")], &info);
    assert!(ok, "{out}");
    assert!(out.contains("resnet18, batch 2, 32x32, 10 classes: 20 convs"), "{out}");
    for layer in ["conv1:", "layer1.0.conv1:", "layer2.0.downsample.0:", "layer4.1.conv2:"] {
        assert!(out.contains(&format!("\n{layer} x [2, ")), "{layer} missing:\n{out}");
    }
    let count = |s: &str| out.matches(s).count();
    // every conv has its two forwards and a weight gradient; conv1 reads the image, whose
    // gradient the step does not compute
    assert_eq!(count("  inference  "), 20, "{out}");
    assert_eq!(count("  training forward "), 20, "{out}");
    assert_eq!(count("  weight gradient "), 20, "{out}");
    assert_eq!(count("  input gradient "), 19, "{out}");
    assert_eq!(count("why: "), 79, "{out}");
    // the cpu family: textures; the stride-2 convs' input gradients in 4 phases
    assert!(out.contains("conv2d_fwd_tex with statistics"), "{out}");
    assert!(out.contains("conv2d_fwd_tex per stride phase (4)"), "{out}");
    assert!(!out.contains("[tuned:"), "tuner off:\n{out}");
    // the gpu family on a depthwise model: the staged depthwise kernel for inference, the
    // register kernel where the training forward writes statistics
    let mobile = [
        "info",
        "--model",
        "mobilenet_v2",
        "--batch",
        "2",
        "--size",
        "32",
        "--classes",
        "10",
    ];
    let (ok, out) = run(&[("CONVOY_TUNE", "0"), ("CONVOY_KERNELS", "gpu")], &mobile);
    assert!(ok, "{out}");
    assert!(out.contains("conv2d_fwd_depthwise\n"), "{out}");
    assert!(
        out.contains("the staged depthwise kernel writes no statistics"),
        "{out}"
    );
    assert!(out.contains("conv2d_fwd_block with statistics"), "{out}");
    // the tuner's record of a shape, written through the library as a tuning run would
    // (tuning every shape here takes half a minute), is what info shows for that conv
    use convoy::internals::kernels::conv::{tuner_key, variants, ConvTile, TileKind};
    use convoy::ops::Conv2dGeom;
    let dir = tmp("info-tune");
    std::fs::create_dir_all(&dir).unwrap();
    let cache = dir.join("tune.tsv");
    let gpu = common::open_gpu(
        convoy::Gpu::builder()
            .tune(true)
            .tune_cache(&cache)
            .kernels(convoy::KernelFamily::Cpu),
    );
    // layer3.0.conv2 at batch 2, 32x32: 256 channels of 2x2
    let geom = Conv2dGeom::new(
        &[2, 256, 2, 2].into(),
        &[256, 256, 3, 3].into(),
        convoy::ops::Conv2dArgs::default().padding(1),
    )
    .unwrap();
    let table = variants::forward((&gpu).into(), &geom, convoy::DType::F32, false).unwrap();
    let variants::Forward::Tiled { tiles, .. } = table.kernel else {
        panic!("the cpu family tiles this conv: {table:?}")
    };
    let pick = ConvTile {
        ocb: 4,
        wg: 8,
        kind: TileKind::Texture { px: 4 },
    };
    assert!(
        tiles.candidates.contains(&pick) && tiles.candidates[0] != pick,
        "{tiles:?}"
    );
    gpu.tuner()
        .unwrap()
        .set(&tuner_key(&tiles.tuner, &geom), vec![4, 8, 2, 4]);
    let tuned = [
        ("CONVOY_TUNE", "1"),
        ("CONVOY_KERNELS", "cpu"),
        ("CONVOY_TUNE_CACHE", s(&cache)),
    ];
    let (ok, out) = run(&tuned, &info);
    assert!(ok, "{out}");
    assert!(out.contains("tuner on"), "{out}");
    let block = out
        .split("\nlayer3.0.conv2: ")
        .nth(1)
        .unwrap()
        .split("\nlayer3.0.")
        .next()
        .unwrap();
    let inference = block.lines().find(|l| l.trim_start().starts_with("inference")).unwrap();
    assert!(inference.ends_with("[tuned: 4 rows x 8 lanes x 4 pixels]"), "{block}");
    // the same shape in layer3.1 (twice), and only there: the training forward's statistics
    // variant has a key of its own
    assert_eq!(count_in(&out, "[tuned: "), 3, "only the recorded shape:\n{out}");
    let _ = std::fs::remove_dir_all(&dir);
    // bad flags, named
    for (args, want) in [
        (vec!["info", "--model", "resnet18", "--batch", "0"], "--batch"),
        (vec!["info", "--batch", "2"], "--model"),
        (vec!["info", "--model", "resnet19"], "resnet18"),
    ] {
        let (ok, out) = run(&[], &args);
        assert!(!ok && out.contains(want), "{args:?}: {out}");
    }
}

fn count_in(s: &str, what: &str) -> usize {
    s.matches(what).count()
}

/// `convoy bench conv --candidates --json`: every tuner candidate of each pass of a suite shape,
/// the variant table's default marked once per pass, each timed (or refused, saying why), with
/// the clock named and both the GPU's and the wall's time; and `bench gemm --json` carries the
/// copy kernel's bandwidth. With --f16 (where the adapter has shader-f16), mixed precision's
/// passes too.
#[test]
fn bench_conv_times_every_candidate() {
    use common::json::Json;
    let f16 = common::gpu().info().has_f16();
    let mut args = vec![
        "bench",
        "conv",
        "--candidates",
        "--json",
        "--filter",
        "r18_l4",
        "--batch",
        "1",
        "--iters",
        "1",
        // one untimed run first: a CPU driver builds a kernel's code at its first dispatch
        // (lavapipe: ~0.3-0.4 s), which the wall clock sees and the GPU's does not
        "--warmup",
        "1",
        "--gemm-size",
        "128",
    ];
    if f16 {
        args.push("--f16");
    }
    let o = convoy(&args);
    assert!(o.status.success(), "{}", text(&o));
    let doc = Json::parse(String::from_utf8_lossy(&o.stdout).trim());
    assert!(["wall", "timestamps"].contains(&doc.at("clock").str()));
    let rows = doc.at("results").array();
    let mut passes = vec!["forward", "fwd_stats", "bwd_data", "bwd_weight"];
    if f16 {
        passes.extend(["forward_f16", "fwd_stats_f16", "bwd_data_f16", "bwd_weight_f16"]);
    }
    for pass in passes {
        let of: Vec<&Json> = rows.iter().filter(|r| r.at("pass").str() == pass).collect();
        assert!(!of.is_empty(), "no {pass} candidates");
        let defaults = of.iter().filter(|r| r.at("default") == &Json::Bool(true)).count();
        assert_eq!(defaults, 1, "{pass}: one default");
        for r in &of {
            assert_eq!(r.at("name").str(), "r18_l4");
            assert_eq!(r.at("batch").usize(), 1);
            assert!(!r.at("kernel").str().is_empty() && !r.at("tile").str().is_empty());
            if r.get("refused").is_some() {
                continue;
            }
            let ms = r.at("ms").f64();
            assert!(ms.is_finite() && ms > 0.0, "{pass}: {ms} ms");
            let wall = r.at("wall_ms").f64();
            assert!(wall > 0.0);
            assert!(r.at("gflops").f64() > 0.0);
            // the GPU's clock where the adapter has timestamps (lavapipe has): one time per run
            // from the same submission, so within 10x of the wall time per run (a unit slip in
            // the tick arithmetic is 1,000x)
            if let Some(Json::Number(_)) = r.get("gpu_ms") {
                let gpu = r.at("gpu_ms").f64();
                assert!(
                    gpu > 0.0 && gpu < 10.0 * wall && gpu > wall / 10.0,
                    "{pass}: GPU {gpu} ms, wall {wall} ms"
                );
            }
        }
    }
    // the forward's texture tiles on lavapipe's cpu family: several, each timed
    assert!(rows.iter().filter(|r| r.at("pass").str() == "forward").count() >= 2);
    let o = convoy(&[
        "bench",
        "gemm",
        "--json",
        "--gemm-size",
        "128",
        "--iters",
        "1",
        "--warmup",
        "0",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let doc = Json::parse(String::from_utf8_lossy(&o.stdout).trim());
    let copy = doc.at("copy");
    assert_eq!(copy.at("kernel").str(), "copy_vec4");
    assert!(copy.at("gbytes_per_s").f64() > 0.0 && copy.at("ms").f64() > 0.0);
}

/// `bench models --profile --json`: each model's dispatches and host time per run, and per
/// kernel the time, dispatches and (for the memory-bound kernels) bytes, beside the copy
/// kernel's bandwidth.
#[test]
fn bench_models_profiles_kernels_with_their_bytes() {
    use common::json::Json;
    let o = convoy(&[
        "bench",
        "models",
        "--model",
        "resnet18",
        "--batch",
        "2",
        "--size",
        "32",
        "--classes",
        "10",
        "--fusion",
        "on",
        "--iters",
        "1",
        "--warmup",
        "0",
        "--profile",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let doc = Json::parse(String::from_utf8_lossy(&o.stdout).trim());
    assert!(doc.at("copy_gbytes_per_s").f64() > 0.0);
    let rows = doc.at("results").array();
    assert_eq!(rows.len(), 2, "inference and a training step");
    for r in rows {
        let dispatches = r.at("dispatches").usize();
        assert!(r.at("host_ms").f64() > 0.0);
        // the start-up's parts; the first run is the one timed run here (--warmup 0)
        assert!(r.at("init_ms").f64() > 0.0 && r.at("compile_ms").f64() > 0.0);
        assert!(
            r.at("first_ms").f64() >= r.at("ms").f64() * 0.999,
            "{}",
            r.at("first_ms").f64()
        );
        let profile = r.at("profile").array();
        let counted: usize = profile.iter().map(|k| k.at("dispatches").usize()).sum();
        // the profile also times the plan's prologue (folded weights) where it has one
        assert!(counted >= dispatches, "{counted} profiled of {dispatches}");
        for k in profile {
            assert!(k.at("ms").f64() > 0.0, "{}", k.at("kernel").str());
        }
        let bytes = |name: &str| {
            profile
                .iter()
                .filter(|k| k.at("kernel").str().starts_with(name))
                .map(|k| k.at("bytes").f64())
                .sum::<f64>()
        };
        if r.at("name").str().ends_with("_train") {
            // SGD with momentum moves 5 floats per parameter: ResNet-18 with a 10-class head
            // has 11,181,642 parameters
            assert_eq!(bytes("sgd_update"), 5.0 * 4.0 * 11_181_642.0);
            // its 62 parameter tensors in multi-tensor dispatches, never one each (4 tensors a
            // dispatch at least, on GL; 10 on lavapipe's Vulkan)
            let updates: usize = profile
                .iter()
                .filter(|k| k.at("kernel").str().starts_with("sgd_update"))
                .map(|k| k.at("dispatches").usize())
                .sum();
            assert!(
                (1..=62usize.div_ceil(4) + 1).contains(&updates),
                "{updates} update dispatches"
            );
            assert!(bytes("batch_norm_bwd") > 0.0 && bytes("batch_norm_apply") > 0.0);
        }
    }
}
