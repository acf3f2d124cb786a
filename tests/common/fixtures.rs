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
        let out = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(&root)
            .arg(case)
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "{} failed (needs `apt-get install python3-torch python3-torchvision`):\n{}",
                script.display(),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("cannot run /usr/bin/python3 for the PyTorch fixtures: {e}"),
        }
    }
    dir
}
