//! Reference fixtures written by a PyTorch script of tools/ (Debian's python3-torch and
//! python3-torchvision), made on first use into the test target's temporary folder, and made
//! again when the script's FORMAT moves past what is there.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The folder of `case`: `tools/<script> <root> <case>` writes it (with a meta.json holding
/// `"format": <format>`) unless a current one is there. One script runs at a time.
pub fn pytorch_fixtures(script: &str, folder: &str, case: &str, format: u32) -> PathBuf {
    static GEN: Mutex<()> = Mutex::new(());
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(folder);
    let dir = root.join(case);
    let _guard = GEN.lock().unwrap_or_else(|e| e.into_inner());
    let current =
        std::fs::read_to_string(dir.join("meta.json")).is_ok_and(|m| m.contains(&format!("\"format\": {format}")));
    if !current {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools").join(script);
        let out = Command::new(super::python()).arg(&script).arg(&root).arg(case).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "{} failed (needs `apt-get install python3-torch python3-torchvision`):\n{}",
                script.display(),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("cannot run {} for the PyTorch fixtures: {e}", super::python()),
        }
    }
    dir
}

/// Run the convoy binary with `args`.
pub fn run_convoy(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_convoy"))
        .args(args)
        .output()
        .expect("run convoy")
}

/// Run the convoy binary; a failure fails the test with its error output.
pub fn convoy_ok(args: &[&str]) {
    let out = run_convoy(args);
    assert!(
        out.status.success(),
        "convoy {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The values of a float32 .npy file.
pub fn read_f32s(path: &Path) -> Vec<f32> {
    match convoy::io::npy::read_npy(path).unwrap() {
        convoy::io::npy::NpyArray::F32 { data, .. } => data,
        other => panic!("{}: not float32: {other:?}", path.display()),
    }
}

/// max |a - b| / max |b|: the bound logits are held to (relative to the largest logit).
pub fn rel_max(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths");
    let scale = b.iter().fold(0f64, |m, &v| m.max((v as f64).abs())).max(1e-12);
    a.iter()
        .zip(b)
        .fold(0f64, |m, (&x, &y)| m.max((x as f64 - y as f64).abs()))
        / scale
}
