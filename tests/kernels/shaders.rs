//! Each kernel parses and validates with naga, the compiler wgpu itself uses.

use convoy::kernels::shaders::{
    f16_variant, has_f16_variant, has_subgroup_variant, subgroup_variant, ALL, PRELUDES, VARIANT_PRELUDES,
};

#[test]
fn every_shader_validates_with_naga() {
    let mut failures = Vec::new();
    // each kernel, the f16-storage variant of those that have one, and the subgroup variant of
    // those that reduce over their workgroup (of the f16 variants too, where both apply)
    let halves: Vec<_> = ALL
        .iter()
        .filter(|s| has_f16_variant(s))
        .map(|s| f16_variant(s).unwrap())
        .collect();
    assert!(halves.len() >= 9, "f16 variants: {}", halves.len());
    let subgroups: Vec<_> = ALL
        .iter()
        .copied()
        .chain(halves.iter().copied())
        .filter(|s| has_subgroup_variant(s))
        .map(|s| subgroup_variant(s).unwrap())
        .collect();
    assert!(subgroups.len() >= 8, "subgroup variants: {}", subgroups.len());
    for s in ALL.iter().copied().chain(halves).chain(subgroups) {
        let module = match naga::front::wgsl::parse_str(s.source) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{}: {}", s.name, e.emit_to_string(s.source)));
                continue;
            }
        };
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
        if let Err(e) = v.validate(&module) {
            failures.push(format!("{}: {}", s.name, e.emit_to_string(s.source)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shader_file_is_registered() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    for entry in std::fs::read_dir(dir).expect("shaders/ exists") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .to_string_lossy()
            .replace(".wgsl", "");
        assert!(
            ALL.iter().any(|s| s.name == name)
                || PRELUDES.contains(&name.as_str())
                || VARIANT_PRELUDES.contains(&name.as_str()),
            "shaders/{name}.wgsl is neither in kernels::shaders::ALL nor a prelude of one"
        );
    }
}
