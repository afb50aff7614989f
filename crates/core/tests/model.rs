//! Forward passes against naive host implementations, activation sites and capture.

mod common;
use common::{assert_close, linear, random_classes};
use glassbox_core::acts;
use glassbox_core::model::{Activation, Architecture, Model};
use glassbox_core::tensor::{from_vec, infer_device, to_vec};

fn host(model: &Model, name: &str) -> Vec<f32> {
    to_vec(model.params.values[model.params.index(name).unwrap()].clone())
}

#[test]
fn mlp_forward_matches_naive_and_sites_are_consistent() {
    let dev = infer_device();
    let arch = Architecture::Mlp { dims: vec![5, 7, 4, 3], activation: Activation::Tanh, bias: true, embed: None };
    let m = Model::init(arch, 3, &dev).unwrap();
    let n = 6;
    let x: Vec<f32> = (0..n * 5).map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0).collect();
    let mut h = x.clone();
    let mut dims = vec![5, 7, 4, 3];
    let names = ["layers.0", "layers.1", "head"];
    let mut pres = Vec::new();
    for (l, name) in names.iter().enumerate() {
        let w = host(&m, &format!("{name}.weight"));
        let b = host(&m, &format!("{name}.bias"));
        h = linear(&h, n, &w, Some(&b), dims[l], dims[l + 1]);
        if l < 2 {
            pres.push(h.clone());
            h = h.iter().map(|v| v.tanh()).collect();
        }
    }
    dims.clear();
    let sites: Vec<String> = ["logits", "layers.0.pre", "layers.1.post"].iter().map(|s| s.to_string()).collect();
    let (out, found) = m.forward_sites(from_vec(x.clone(), [n, 5], &dev), &sites).unwrap();
    let out = to_vec(out);
    assert_close(&out, &h, 1e-5, "logits");
    assert_eq!(found.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["logits", "layers.0.pre", "layers.1.post"]);
    assert_close(&to_vec(found[0].value.clone()), &out, 0.0, "logits site");
    assert_close(&to_vec(found[1].value.clone()), &pres[0], 1e-5, "layers.0.pre");
    let post1: Vec<f32> = pres[1].iter().map(|v| v.tanh()).collect();
    assert_close(&to_vec(found[2].value.clone()), &post1, 1e-5, "layers.1.post");
}

#[test]
fn bilinear_forward_matches_naive_with_biases() {
    let dev = infer_device();
    let arch = Architecture::Bilinear { d_in: 6, d_hidden: 4, d_out: 3, bias: true, embed: true };
    let m = Model::init(arch, 9, &dev).unwrap();
    let n = 5;
    let x: Vec<f32> = (0..n * 6).map(|i| (i as f32 * 0.37).sin()).collect();
    let e = linear(&x, n, &host(&m, "embed.weight"), None, 6, 4);
    let l = linear(&e, n, &host(&m, "layers.0.w.weight"), Some(&host(&m, "layers.0.w.bias")), 4, 4);
    let r = linear(&e, n, &host(&m, "layers.0.v.weight"), Some(&host(&m, "layers.0.v.bias")), 4, 4);
    let g: Vec<f32> = l.iter().zip(&r).map(|(a, b)| a * b).collect();
    let logits = linear(&g, n, &host(&m, "head.weight"), None, 4, 3);
    let sites: Vec<String> = m.site_names();
    assert_eq!(sites, ["embed", "layers.0.left", "layers.0.right", "layers.0.post", "logits"]);
    let (out, found) = m.forward_sites(from_vec(x, [n, 6], &dev), &sites).unwrap();
    assert_close(&to_vec(out), &logits, 1e-5, "logits");
    for (site, want) in found.iter().zip([&e, &l, &r, &g]) {
        assert_close(&to_vec(site.value.clone()), want, 1e-5, &site.name);
    }
}

#[test]
fn cnn_forward_matches_naive_convolution() {
    let dev = infer_device();
    let arch = Architecture::Cnn { image: [1, 4, 4], channels: vec![2], kernel: 3, hidden: 3, d_out: 2 };
    let m = Model::init(arch, 1, &dev).unwrap();
    let x: Vec<f32> = (0..16).map(|i| (i as f32 * 0.7).cos()).collect();
    let (w, b) = (host(&m, "convs.0.weight"), host(&m, "convs.0.bias"));
    // conv 3x3, padding 1, then relu, then 2x2 max pool -> [2, 2, 2]
    let mut pooled = vec![f32::NEG_INFINITY; 8];
    for c in 0..2 {
        for i in 0..4 {
            for j in 0..4 {
                let mut s = b[c];
                for di in 0..3 {
                    for dj in 0..3 {
                        let (ii, jj) = (i as i32 + di as i32 - 1, j as i32 + dj as i32 - 1);
                        if (0..4).contains(&ii) && (0..4).contains(&jj) {
                            s += w[c * 9 + di * 3 + dj] * x[(ii * 4 + jj) as usize];
                        }
                    }
                }
                let p = &mut pooled[c * 4 + (i / 2) * 2 + j / 2];
                *p = p.max(s.max(0.0));
            }
        }
    }
    let fc = linear(&pooled, 1, &host(&m, "fc.weight"), Some(&host(&m, "fc.bias")), 8, 3);
    let fc: Vec<f32> = fc.iter().map(|v| v.max(0.0)).collect();
    let logits = linear(&fc, 1, &host(&m, "head.weight"), Some(&host(&m, "head.bias")), 3, 2);
    let sites = vec!["convs.0.pool".to_string()];
    let (out, found) = m.forward_sites(from_vec(x, [1, 16], &dev), &sites).unwrap();
    assert_close(&to_vec(out), &logits, 1e-5, "cnn logits");
    assert_eq!(found[0].shape, vec![2, 2, 2]);
    assert_close(&to_vec(found[0].value.clone()), &pooled, 1e-5, "pool site");
}

#[test]
fn siren_uses_sin_of_w0_times_preactivation() {
    let dev = infer_device();
    let arch = Architecture::Siren { dims: vec![2, 32, 32, 1], w0: 30.0 };
    let m = Model::init(arch, 5, &dev).unwrap();
    let x = vec![0.25f32, -0.5];
    let sites = vec!["layers.0.pre".to_string(), "layers.0.post".to_string()];
    let (_, found) = m.forward_sites(from_vec(x, [1, 2], &dev), &sites).unwrap();
    let pre = to_vec(found[0].value.clone());
    let want: Vec<f32> = pre.iter().map(|p| (30.0 * p).sin()).collect();
    assert_close(&to_vec(found[1].value.clone()), &want, 1e-5, "siren post");
    // first-layer init is U(-1/fan_in, 1/fan_in) with fan_in = 2
    assert!(host(&m, "layers.0.weight").iter().all(|w| w.abs() <= 0.5));
    let bound = (6.0f32 / 32.0).sqrt() / 30.0;
    assert!(host(&m, "layers.1.weight").iter().all(|w| w.abs() <= bound));
}

#[test]
fn unknown_site_lists_valid_names() {
    let m = Model::init(Architecture::Mlp { dims: vec![3, 4, 2], activation: Activation::Relu, bias: true, embed: None }, 0, &infer_device()).unwrap();
    let err = m.check_sites(&["layers.7.post".to_string()]).unwrap_err().to_string();
    assert!(err.contains("unknown activation site 'layers.7.post'"), "{err}");
    assert!(err.contains("layers.0.pre, layers.0.post, logits"), "{err}");
}

#[test]
fn captured_activations_equal_the_forward_pass_exactly() {
    let dev = infer_device();
    let data = random_classes(37, 6, 3, 4);
    let m = Model::init(Architecture::Mlp { dims: vec![6, 8, 3], activation: Activation::Gelu, bias: true, embed: None }, 2, &dev).unwrap();
    let sites = m.site_names();
    // batch size 10 does not divide 37: the last partial batch must be handled
    let got = acts::capture(&m, &data, &sites, 10, None).unwrap();
    assert_eq!(got.len(), 3);
    // bit-exact against the forward pass over the same batches
    for start in (0..37).step_by(10) {
        let end = (start + 10).min(37);
        let x = from_vec(data.inputs[start * 6..end * 6].to_vec(), [end - start, 6], &dev);
        let (out, found) = m.forward_sites(x, &sites).unwrap();
        for (g, f) in got.iter().zip(&found) {
            let w = f.shape[0];
            assert_eq!(g.shape, [37, w]);
            assert_eq!(g.data[start * w..end * w], to_vec(f.value.clone())[..], "site {} rows {start}..{end}", g.name);
        }
        assert_eq!(got[2].data[start * 3..end * 3], to_vec(out)[..]);
    }
    // and equal up to float summation order to one full-batch pass
    let (out, _) = m.forward_sites(from_vec(data.inputs.clone(), [37, 6], &dev), &sites).unwrap();
    assert_close(&got[2].data, &to_vec(out), 1e-6, "logits vs full batch");
}

#[test]
fn same_seed_same_weights_different_seed_different() {
    let dev = infer_device();
    let arch = Architecture::Mlp { dims: vec![4, 5, 2], activation: Activation::Relu, bias: true, embed: None };
    let a = Model::init(arch.clone(), 1, &dev).unwrap().params.to_host();
    let b = Model::init(arch.clone(), 1, &dev).unwrap().params.to_host();
    let c = Model::init(arch, 2, &dev).unwrap().params.to_host();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

/// ∂(Σ site·u)/∂x from InputGradients against central differences of the same score, for a
/// smooth MLP, the bilinear model and a CNN (away from ReLU kinks the CNN is piecewise smooth).
#[test]
fn input_gradients_along_a_site_direction_match_finite_differences() {
    use glassbox_core::model::InputGradients;
    let dev = infer_device();
    let cases = [
        (Architecture::Mlp { dims: vec![6, 5, 4, 3], activation: Activation::Tanh, bias: true, embed: None }, "layers.1.post"),
        (Architecture::Bilinear { d_in: 6, d_hidden: 5, d_out: 3, bias: true, embed: true }, "layers.0.post"),
        (Architecture::Cnn { image: [1, 4, 4], channels: vec![2], kernel: 3, hidden: 5, d_out: 3 }, "fc.post"),
    ];
    for (arch, site) in cases {
        let model = Model::init(arch, 5, &dev).unwrap();
        let d_in = model.arch.input_dim();
        let (_, sites) = model.forward_sites(from_vec(vec![0.0; d_in], [1, d_in], &dev), &[site.to_string()]).unwrap();
        let width = sites[0].value.dims()[1];
        let u: Vec<f32> = (0..width).map(|i| ((i * 7 % 5) as f32 - 2.0) / 2.0).collect();
        let x: Vec<f32> = (0..2 * d_in).map(|i| ((i * 13 % 17) as f32 - 8.0) / 9.0).collect();
        let (scores, grad) = InputGradients::new(&model).along(x.clone(), 2, site, &u).unwrap();
        let score = |x: Vec<f32>| -> f64 {
            let (_, s) = model.forward_sites(from_vec(x, [2, d_in], &dev), &[site.to_string()]).unwrap();
            to_vec(s[0].value.clone()).chunks(width).map(|r| r.iter().zip(&u).map(|(a, b)| (a * b) as f64).sum::<f64>()).sum()
        };
        assert!((scores.iter().map(|&s| s as f64).sum::<f64>() - score(x.clone())).abs() < 1e-4, "{site}: scores");
        // Small steps for the CNN, so that no step crosses a ReLU or max-pool switch.
        let h = if site == "fc.post" { 1e-3f32 } else { 1e-2 };
        for i in 0..x.len() {
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (score(up) - score(down)) / (2.0 * h as f64);
            assert!((fd - grad[i] as f64).abs() <= 5e-3 * (1.0 + fd.abs()), "{site}: input {i}: autodiff {} vs finite difference {fd}", grad[i]);
        }
    }
    let model = Model::init(Architecture::Mlp { dims: vec![3, 2, 2], activation: Activation::Relu, bias: true, embed: None }, 0, &dev).unwrap();
    assert!(InputGradients::new(&model).along(vec![0.0; 3], 1, "layers.0.post", &[1.0]).is_err(), "a direction of the wrong width is an error");
}
