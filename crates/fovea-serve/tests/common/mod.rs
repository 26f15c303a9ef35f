//! Shared by the server tests: model directories in TF Serving's layout, and a minimal HTTP/1.1
//! client on a raw `TcpStream` (enough for one request per connection; no client crate).

#![allow(dead_code)] // each test binary uses a different part

use fovea_core::{set_seed, Device, Tensor};
use fovea_nn::layers::{Conv2D, Dense, GlobalAveragePooling2D};
use fovea_nn::model::functional::{Connect, Functional, Input};
use fovea_nn::model::io::save_model;
use fovea_nn::model::Model;
use fovea_serve::{ServeConfig, Server};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fresh temporary directory, unique per test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fovea-serve-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a LeNet-5 (28×28×1 → 10) made with `seed` as `base/name/version/model.safetensors`.
pub fn save_lenet(base: &Path, name: &str, version: u64, seed: u64) -> fovea_nn::model::Sequential {
    set_seed(seed);
    let net = fovea_vision::applications::lenet5((28, 28, 1), 10).unwrap();
    let dir = base.join(name).join(version.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    // Written beside and renamed, as a deployment would, so the poll never sees half a file.
    let tmp = dir.join("model.safetensors.tmp");
    save_model(&net, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("model.safetensors")).unwrap();
    net
}

/// Saves a small functional image model (8×8×3 → 4) as `base/name/1/model.safetensors`.
pub fn save_functional(base: &Path, name: &str) -> Functional {
    set_seed(7);
    let input = Input::named(&[8, 8, 3], "image");
    let h = Conv2D::new(4, (3, 3)).on(&input).unwrap();
    let h = GlobalAveragePooling2D::new().on(&h).unwrap();
    let out = Dense::new(4).named("scores").unwrap().on(&h).unwrap();
    let net = Functional::new(&[&input], &[&out]).unwrap();
    let dir = base.join(name).join("1");
    std::fs::create_dir_all(&dir).unwrap();
    save_model(&net, dir.join("model.safetensors")).unwrap();
    net
}

/// A server on 127.0.0.1 with an ephemeral port over `base`, after `tune` adjusts the config.
pub fn start(base: &Path, tune: impl FnOnce(&mut ServeConfig)) -> Server {
    let mut config = ServeConfig::new(base);
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    tune(&mut config);
    Server::start(config).unwrap()
}

/// One HTTP exchange: status code and body.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before the whole body is sent.
    let _ = s.write_all(body);
    read_response(&mut s)
}

/// Reads a `Connection: close` response to its end.
pub fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

/// Parses a JSON body, naming it when it is not JSON.
pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// `n` deterministic LeNet inputs in [0, 1] and the JSON of their nested `[n, 28, 28, 1]` array.
pub fn lenet_inputs(n: usize, seed: u64) -> (Tensor, String) {
    let x = Tensor::random_uniform([n, 28, 28, 1], 0.0, 1.0, Some(seed), Device::Cpu).unwrap();
    let v = x.to_vec::<f32>().unwrap();
    let rows: Vec<serde_json::Value> = v
        .chunks(784)
        .map(|img| serde_json::json!(img.chunks(28).map(|r| r.iter().map(|p| vec![*p]).collect::<Vec<_>>()).collect::<Vec<_>>()))
        .collect();
    (x, serde_json::Value::Array(rows).to_string())
}

/// The rows of a JSON array of arrays of numbers, flattened per row.
pub fn rows_of(v: &serde_json::Value) -> Vec<Vec<f32>> {
    fn flat(v: &serde_json::Value, out: &mut Vec<f32>) {
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
            x => out.push(x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")) as f32),
        }
    }
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            flat(r, &mut out);
            out
        })
        .collect()
}

/// The model's own predictions, per row.
pub fn expected<M: Model>(net: &M, x: &Tensor) -> Vec<Vec<f32>> {
    let y = net.predict(x, 64).unwrap();
    let classes = *y.dims().last().unwrap();
    y.to_vec::<f32>().unwrap().chunks(classes).map(<[f32]>::to_vec).collect()
}

/// A u8 `[h, w, 3]` test image as PNG bytes, and the image itself.
pub fn png(h: usize, w: usize) -> (Vec<u8>, Tensor) {
    let px: Vec<u8> = (0..h * w * 3).map(|i| ((i * 37) % 251) as u8).collect();
    let img = Tensor::from_vec(px, vec![h, w, 3], Device::Cpu).unwrap();
    (fovea_vision::image::encode_png(&img).unwrap(), img)
}

/// Asserts two predictions agree to float32 rounding.
pub fn assert_close(got: &[Vec<f32>], want: &[Vec<f32>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.len(), w.len(), "{what}: row length");
        for (a, b) in g.iter().zip(w) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{what}: {a} vs {b}");
        }
    }
}
