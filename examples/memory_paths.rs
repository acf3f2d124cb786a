//! Micro-benchmark: what a store and a load cost on this adapter by path: rgba32float
//! storage-texture stores, storage-buffer stores (vec4 and scalar), buffer-to-texture copies,
//! texel, storage-buffer, uniform-buffer and workgroup-memory loads (per lane and at one address
//! for the workgroup), and an empty dispatch: lavapipe only makes a load at a constant address one
//! scalar load; any other storage load is a loop over the lanes. `cargo run --release --example
//! memory_paths [texels]`.

use std::time::Instant;
use wgpu::util::DeviceExt;

const W: u32 = 1024;

/// A small kernel of 64 workgroups (a read and a write per lane).
const SMALL: &str = "@group(0) @binding(0) var<storage, read_write> o: array<f32>;
     @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
       o[g.x] = o[g.x] + 1.0; }";

/// What a probe kernel binds, in binding order.
enum Binds {
    /// The texture (as a storage texture or a sampled one).
    Texture,
    /// The texture, then the output buffer.
    TextureOut,
    /// The output buffer, then the uniform buffer.
    OutUniform,
    /// The output buffer.
    Out,
}

fn compute_pipeline(device: &wgpu::Device, src: &str) -> wgpu::ComputePipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(src.into()),
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}

fn main() {
    let texels: u32 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1 << 20);
    let h = texels / W;
    let texels = W * h;
    let instance = wgpu::Instance::default();
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).expect("no adapter");
    println!("{:?}", adapter.get_info().name);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    let tex = device.create_texture(&wgpu::TextureDescriptor {
        label: None,
        size: wgpu::Extent3d {
            width: W,
            height: h,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        usage: wgpu::TextureUsages::STORAGE_BINDING
            | wgpu::TextureUsages::TEXTURE_BINDING
            | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    let view = tex.create_view(&Default::default());
    let init: Vec<f32> = (0..texels * 4).map(|i| (i % 97) as f32).collect();
    let buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&init),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    });
    let out = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (texels as u64) * 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let wg = texels / 64;
    let ubo = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&init[..4096]),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let kernels: &[(&str, &str, u32, Binds)] = &[
        (
            "textureStore rgba32f",
            "@group(0) @binding(0) var t: texture_storage_2d<rgba32float, write>;
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
               let i = g.x; let v = f32(i);
               textureStore(t, vec2u(i % 1024u, i / 1024u), vec4f(v, v + 1.0, v + 2.0, v + 3.0)); }",
            wg,
            Binds::Texture,
        ),
        (
            "store array<vec4f>",
            "@group(0) @binding(0) var<storage, read_write> o: array<vec4f>;
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
               let i = g.x; let v = f32(i); o[i] = vec4f(v, v + 1.0, v + 2.0, v + 3.0); }",
            wg,
            Binds::Out,
        ),
        (
            "store vec4f + 6 udiv/urem",
            "@group(0) @binding(0) var<storage, read_write> o: array<vec4f>;
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
               let i = g.x; let d = u32(o[0].x) + 7u; let e = u32(o[0].y) + 5u;
               let a = i / d; let b = i % d; let c = a / e; let f = a % e; let h = c / d; let k = c % d;
               o[i] = vec4f(f32(b), f32(f), f32(h), f32(k)); }",
            wg,
            Binds::Out,
        ),
        (
            "store 4 x f32",
            "@group(0) @binding(0) var<storage, read_write> o: array<f32>;
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
               let i = g.x; let v = f32(i);
               o[4u * i] = v; o[4u * i + 1u] = v + 1.0; o[4u * i + 2u] = v + 2.0; o[4u * i + 3u] = v + 3.0; }",
            wg,
            Binds::Out,
        ),
        (
            "load 4 x f32 (buffer)",
            "@group(0) @binding(0) var<storage, read_write> o: array<f32>;
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
               let i = g.x;
               let s = o[4u * i] + o[4u * i + 1u] + o[4u * i + 2u] + o[4u * i + 3u];
               if (s == -1.0) { o[0] = s; } }",
            wg,
            Binds::Out,
        ),
        (
            "load 4 x f32 uniform (wid)",
            "@group(0) @binding(0) var<storage, read_write> o: array<f32>;
             @compute @workgroup_size(64) fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) l: u32) {
               let i = w.x % 1000u;
               let s = o[4u * i] + o[4u * i + 1u] + o[4u * i + 2u] + o[4u * i + 3u];
               if (s == -1.0) { o[l] = s; } }",
            wg,
            Binds::Out,
        ),
        (
            "ubo load 4 x f32 per lane",
            "@group(0) @binding(0) var<storage, read_write> o: array<f32>;
             @group(0) @binding(1) var<uniform> u: array<vec4f, 1024>;
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u, @builtin(local_invocation_index) l: u32) {
               let i = g.x % 4096u;
               let s = u[i / 4u][i % 4u] + u[(i + 1u) / 4u][(i + 1u) % 4u] + u[(i + 2u) / 4u][(i + 2u) % 4u] + u[(i + 3u) / 4u][(i + 3u) % 4u];
               if (s == -1.0) { o[l] = s; } }",
            wg,
            Binds::OutUniform,
        ),
        (
            "ubo load vec4 per lane",
            "@group(0) @binding(0) var<storage, read_write> o: array<f32>;
             @group(0) @binding(1) var<uniform> u: array<vec4f, 1024>;
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u, @builtin(local_invocation_index) l: u32) {
               let v = u[g.x % 1024u];
               if (v.x + v.y + v.z + v.w == -1.0) { o[l] = 1.0; } }",
            wg,
            Binds::OutUniform,
        ),
        (
            "workgroup mem load vec4 (wid)",
            "@group(0) @binding(0) var<storage, read_write> o: array<f32>;
             var<workgroup> sh: array<vec4f, 64>;
             @compute @workgroup_size(64) fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) l: u32) {
               sh[l] = vec4f(f32(l));
               workgroupBarrier();
               let v = sh[w.x % 64u];
               if (v.x + v.y + v.z + v.w == -1.0) { o[l] = 1.0; } }",
            wg,
            Binds::Out,
        ),
        (
            "workgroup mem store only",
            "@group(0) @binding(0) var<storage, read_write> o: array<f32>;
             var<workgroup> sh: array<vec4f, 64>;
             @compute @workgroup_size(64) fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) l: u32) {
               sh[l] = vec4f(f32(l));
               workgroupBarrier();
               let v = sh[3];
               if (v.x + v.y + v.z + v.w == -1.0) { o[l] = 1.0; } }",
            wg,
            Binds::Out,
        ),
        (
            "ubo load vec4 (wid)",
            "@group(0) @binding(0) var<storage, read_write> o: array<f32>;
             @group(0) @binding(1) var<uniform> u: array<vec4f, 1024>;
             @compute @workgroup_size(64) fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) l: u32) {
               let v = u[w.x % 1024u];
               if (v.x + v.y + v.z + v.w == -1.0) { o[l] = 1.0; } }",
            wg,
            Binds::OutUniform,
        ),
        (
            "load 4 x f32 uniform (len)",
            "@group(0) @binding(0) var<storage, read_write> o: array<f32>;
             @compute @workgroup_size(64) fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) l: u32) {
               let i = arrayLength(&o) / 8u;
               let s = o[4u * i] + o[4u * i + 1u] + o[4u * i + 2u] + o[4u * i + 3u];
               if (s == -1.0) { o[l] = s; } }",
            wg,
            Binds::Out,
        ),
        (
            "load 4 x f32 uniform (const)",
            "@group(0) @binding(0) var<storage, read_write> o: array<f32>;
             @compute @workgroup_size(64) fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) l: u32) {
               let s = o[4u] + o[5u] + o[6u] + o[7u];
               if (s == -1.0) { o[l] = s; } }",
            wg,
            Binds::Out,
        ),
        (
            "textureLoad rgba32f",
            "@group(0) @binding(0) var t: texture_2d<f32>;
             @group(0) @binding(1) var<storage, read_write> o: array<f32>;
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
               let i = g.x; let v = textureLoad(t, vec2u(i % 1024u, i / 1024u), 0);
               if (v.x + v.y + v.z + v.w == -1.0) { o[0] = 1.0; } }",
            wg,
            Binds::TextureOut,
        ),
        (
            "empty (1 workgroup)",
            "@group(0) @binding(0) var<storage, read_write> o: array<f32>;
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
               if (g.x == 100000u) { o[0] = 1.0; } }",
            1,
            Binds::Out,
        ),
        (
            "small (64 workgroups)",
            SMALL,
            64,
            Binds::Out,
        ),
    ];
    for (name, src, groups, binds) in kernels {
        let pipeline = compute_pipeline(&device, src);
        let texture = wgpu::BindingResource::TextureView(&view);
        let resources = match binds {
            Binds::Texture => vec![texture],
            Binds::TextureOut => vec![texture, out.as_entire_binding()],
            Binds::OutUniform => vec![out.as_entire_binding(), ubo.as_entire_binding()],
            Binds::Out => vec![out.as_entire_binding()],
        };
        let entries: Vec<wgpu::BindGroupEntry> = resources
            .into_iter()
            .enumerate()
            .map(|(i, resource)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource,
            })
            .collect();
        let bg = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let run = |reps: u32| {
            let mut e = device.create_command_encoder(&Default::default());
            {
                let mut p = e.begin_compute_pass(&Default::default());
                p.set_pipeline(&pipeline);
                p.set_bind_group(0, &bg, &[]);
                for _ in 0..reps {
                    p.dispatch_workgroups(*groups, 1, 1);
                }
            }
            queue.submit([e.finish()]);
            device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        };
        report(name, texels, &run);
    }
    // rows of `buf` into the top left of `tex`
    let copy = |e: &mut wgpu::CommandEncoder, width: u32, height: u32| {
        e.copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo {
                buffer: &buf,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(W * 16),
                    rows_per_image: None,
                },
            },
            tex.as_image_copy(),
            wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
        );
    };
    let copy_all = |reps: u32| {
        let mut e = device.create_command_encoder(&Default::default());
        for _ in 0..reps {
            copy(&mut e, W, h);
        }
        queue.submit([e.finish()]);
        device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    };
    report("copy_buffer_to_texture", texels, &copy_all);
    // a small dispatch, then a 64x64-texel copy after it, each in a pass of its own: the cost of
    // ending a pass for a copy, per dispatch
    let small = compute_pipeline(&device, SMALL);
    let bg = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &small.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: out.as_entire_binding(),
        }],
    });
    for with_copy in [false, true] {
        let run = |reps: u32| {
            let mut e = device.create_command_encoder(&Default::default());
            for _ in 0..reps {
                {
                    let mut p = e.begin_compute_pass(&Default::default());
                    p.set_pipeline(&small);
                    p.set_bind_group(0, &bg, &[]);
                    p.dispatch_workgroups(64, 1, 1);
                }
                if with_copy {
                    copy(&mut e, 64, 64);
                }
            }
            queue.submit([e.finish()]);
            device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        };
        let name = if with_copy {
            "pass + 64x64 copy"
        } else {
            "pass, no copy"
        };
        report(name, 4096, &run);
    }
}

/// Median over 5 runs of 10 repetitions; ns per texel (4 floats) and per repetition.
fn report(name: &str, texels: u32, run: &dyn Fn(u32)) {
    run(2);
    let mut t: Vec<f64> = (0..5)
        .map(|_| {
            let s = Instant::now();
            run(10);
            s.elapsed().as_secs_f64() / 10.0
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = t[2];
    println!(
        "{name:28} {:8.3} ms/rep {:7.2} ns/texel",
        m * 1e3,
        m * 1e9 / texels as f64
    );
}
