//! Small ONNX models written with the importer's own schema (`convoy::onnx::proto`, encoded by
//! prost): valid ones for the fuzz seeds and the import tests, and the hostile variants the
//! reader must refuse.

use convoy::onnx::proto::*;
use prost::Message;

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: 7,
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: 2,
        i: v,
        ..Default::default()
    }
}

pub fn attr_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: 4,
        t: Some(t),
        ..Default::default()
    }
}

pub fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: name.into(),
        op_type: op.into(),
        domain: String::new(),
        attribute: attrs,
    }
}

/// A float tensor stored as raw little-endian bytes.
pub fn floats(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: 1,
        name: name.into(),
        raw_data: v.iter().flat_map(|f| f.to_le_bytes()).collect(),
        ..Default::default()
    }
}

pub fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            dim_value: *d,
                            dim_param: d.is_none().then(|| "batch".to_string()),
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

pub fn model(nodes: Vec<NodeProto>, initializers: Vec<TensorProto>, opset: i64) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        producer_name: "convoy tests".into(),
        producer_version: String::new(),
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer: initializers,
            input: vec![value_info("x", &[None, Some(2), Some(6), Some(5)])],
            output: vec![value_info("y", &[None, Some(3)])],
        }),
    }
}

/// Deterministic values in [-1, 1).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut r = convoy::Rng::new(seed);
    r.vec(n, -1.0, 1.0)
}

/// A small classifier on (N, 2, 6, 5) images: conv 3x3 (pad 1) + bias, relu, global average
/// pool, flatten, Gemm to 3 classes, nodes written in reverse order (the reader sorts them).
pub fn tiny() -> ModelProto {
    let nodes = vec![
        node(
            "Gemm",
            "head",
            &["f", "fc.weight", "fc.bias"],
            &["y"],
            vec![attr_int("transB", 1)],
        ),
        node("Flatten", "flatten", &["p"], &["f"], vec![]),
        node("GlobalAveragePool", "pool", &["r"], &["p"], vec![]),
        node("Relu", "relu", &["c"], &["r"], vec![]),
        node(
            "Conv",
            "conv",
            &["x", "conv.weight", "conv.bias"],
            &["c"],
            vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("pads", &[1, 1, 1, 1])],
        ),
    ];
    let inits = vec![
        floats("conv.weight", &[4, 2, 3, 3], &values(72, 1)),
        floats("conv.bias", &[4], &values(4, 2)),
        floats("fc.weight", &[3, 4], &values(12, 3)),
        floats("fc.bias", &[3], &values(3, 4)),
    ];
    model(nodes, inits, 13)
}

pub fn bytes(m: &ModelProto) -> Vec<u8> {
    m.encode_to_vec()
}

pub fn ints(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: 7,
        name: name.into(),
        raw_data: v.iter().flat_map(|i| i.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// What exporters write around a classifier: a zero Pad before an average pool (count the
/// padding), and `x.view(x.size(0), -1)` as Shape, a Constant, Gather, Unsqueeze, Concat and
/// Reshape; the head a Gemm.
pub fn folding() -> ModelProto {
    let nodes = vec![
        node("Pad", "pad", &["x", "pads"], &["xp"], vec![]),
        node(
            "AveragePool",
            "avg",
            &["xp"],
            &["a"],
            vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("strides", &[1, 1])],
        ),
        node("Shape", "shape", &["a"], &["s"], vec![]),
        node(
            "Constant",
            "zero",
            &[],
            &["i0"],
            vec![attr_tensor("value", ints("v", &[], &[0]))],
        ),
        node("Gather", "gather", &["s", "i0"], &["n"], vec![attr_int("axis", 0)]),
        node("Unsqueeze", "unsq", &["n", "axes"], &["n1"], vec![]),
        node(
            "Concat",
            "cat",
            &["n1", "minus1"],
            &["shape"],
            vec![attr_int("axis", 0)],
        ),
        node("Reshape", "reshape", &["a", "shape"], &["f"], vec![]),
        node("Gemm", "head", &["f", "w", "b"], &["y"], vec![attr_int("transB", 1)]),
    ];
    let inits = vec![
        ints("pads", &[8], &[0, 0, 1, 1, 0, 0, 1, 1]),
        ints("axes", &[1], &[0]),
        ints("minus1", &[1], &[-1]),
        floats("w", &[3, 60], &values(180, 7)),
        floats("b", &[3], &values(3, 8)),
    ];
    model(nodes, inits, 13)
}
