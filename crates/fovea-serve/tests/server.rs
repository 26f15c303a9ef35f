//! The REST API over real HTTP on 127.0.0.1: TF Serving's status, metadata and predict
//! answers, predictions equal to the model's own, error codes, batching, version pickup and
//! graceful shutdown.

mod common;

use base64::Engine as _;
use common::*;
use fovea_core::DType;
use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[test]
fn status_metadata_and_predictions_match_the_model() {
    let base = temp_dir("basic");
    let net = save_lenet(&base, "lenet", 1, 1);
    let server = start(&base, |_| {});
    let addr = server.addr();

    let (code, body) = http(addr, "GET", "/v1/models/lenet", b"");
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["model_version_status"][0]["version"], "1", "{body}");
    assert_eq!(v["model_version_status"][0]["state"], "AVAILABLE");
    assert_eq!(v["model_version_status"][0]["status"]["error_code"], "OK");
    assert_eq!(http(addr, "GET", "/v1/models/lenet/versions/1", b"").0, 200);

    let (code, body) = http(addr, "GET", "/v1/models/lenet/metadata", b"");
    assert_eq!(code, 200, "{body}");
    let sig = &json(&body)["metadata"]["signature_def"]["signature_def"]["serving_default"];
    let input = &sig["inputs"]["input"];
    assert_eq!(input["dtype"], "DT_FLOAT", "{body}");
    let dims: Vec<&str> = input["tensor_shape"]["dim"].as_array().unwrap().iter().map(|d| d["size"].as_str().unwrap()).collect();
    assert_eq!(dims, ["-1", "28", "28", "1"]);
    let outputs = sig["outputs"].as_object().unwrap();
    let out = outputs.values().next().unwrap();
    let dims: Vec<&str> = out["tensor_shape"]["dim"].as_array().unwrap().iter().map(|d| d["size"].as_str().unwrap()).collect();
    assert_eq!(dims, ["-1", "10"], "{body}");

    let (x, instances) = lenet_inputs(3, 11);
    let want = expected(&net, &x);
    // Row format.
    let (code, body) = http(addr, "POST", "/v1/models/lenet:predict", format!("{{\"instances\": {instances}}}").as_bytes());
    assert_eq!(code, 200, "{body}");
    assert_close(&rows_of(&json(&body)["predictions"]), &want, "row format");
    // Columnar format, with the version named and the signature given.
    let req = format!("{{\"signature_name\": \"serving_default\", \"inputs\": {instances}}}");
    let (code, body) = http(addr, "POST", "/v1/models/lenet/versions/1:predict", req.as_bytes());
    assert_eq!(code, 200, "{body}");
    assert_close(&rows_of(&json(&body)["outputs"]), &want, "columnar format");
    // Named inputs in both formats.
    let rows: Vec<serde_json::Value> = json(&instances).as_array().unwrap().iter().map(|r| serde_json::json!({ "input": r })).collect();
    let req = serde_json::json!({ "instances": rows }).to_string();
    let (code, body) = http(addr, "POST", "/v1/models/lenet:predict", req.as_bytes());
    assert_close(&rows_of(&json(&body)["predictions"]), &want, &format!("named rows ({code})"));
    let (code, body) = http(addr, "POST", "/v1/models/lenet:predict", format!("{{\"inputs\": {{\"input\": {instances}}}}}").as_bytes());
    assert_close(&rows_of(&json(&body)["outputs"]), &want, &format!("named columns ({code})"));
    assert_eq!(server.metrics().requests("predict", 200), 4);
    server.shutdown().unwrap();
}

#[test]
fn b64_images_are_decoded_resized_and_scaled_like_fovea_predict() {
    let base = temp_dir("b64");
    let net = save_functional(&base, "tiny");
    let server = start(&base, |_| {});
    let (bytes, img) = png(16, 12);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    // What `fovea predict` feeds the model for this file: resized to 8×8, pixels / 255.
    let x =
        fovea_vision::image::resize(&img, (8, 8), fovea_vision::image::ResizeMethod::Bilinear, false).unwrap().div_scalar(255.0).unwrap();
    let x = x.cast(DType::F32).unwrap().reshape(&[1, 8, 8, 3]).unwrap();
    let want = expected(&net, &fovea_core::Tensor::concat(&[&x, &x], 0).unwrap());

    let req = format!("{{\"instances\": [{{\"b64\": \"{b64}\"}}, {{\"b64\": \"{b64}\"}}]}}");
    let (code, body) = http(server.addr(), "POST", "/v1/models/tiny:predict", req.as_bytes());
    assert_eq!(code, 200, "{body}");
    assert_close(&rows_of(&json(&body)["predictions"]), &want, "b64 rows");
    // Columnar: one image as the whole input, under the input's name.
    let req = format!("{{\"inputs\": {{\"image\": {{\"b64\": \"{b64}\"}}}}}}");
    let (code, body) = http(server.addr(), "POST", "/v1/models/tiny:predict", req.as_bytes());
    assert_eq!(code, 200, "{body}");
    assert_close(&rows_of(&json(&body)["outputs"]), &want[..1], "b64 column");
    // Not an image.
    let (code, body) = http(server.addr(), "POST", "/v1/models/tiny:predict", b"{\"instances\": [{\"b64\": \"aGVsbG8=\"}]}");
    assert_eq!(code, 400, "{body}");
    assert!(json(&body)["error"].as_str().unwrap().contains("image 0"), "{body}");
}

#[test]
fn errors_are_json_with_the_right_status_codes() {
    let base = temp_dir("errors");
    save_lenet(&base, "lenet", 1, 1);
    let server = start(&base, |c| c.max_body_bytes = 200_000);
    let addr = server.addr();
    let err = |method: &str, path: &str, body: &[u8], want: u16| {
        let (code, text) = http(addr, method, path, body);
        assert_eq!(code, want, "{method} {path}: {text}");
        json(&text)["error"].as_str().unwrap_or_else(|| panic!("no error message: {text}")).to_string()
    };
    assert!(err("GET", "/v1/models/nope", b"", 404).contains("nope"));
    assert!(err("POST", "/v1/models/nope:predict", b"{}", 404).contains("nope"));
    assert!(err("GET", "/v1/models/lenet/versions/7", b"", 404).contains("version 1 serves"));
    err("GET", "/v2/other", b"", 404);
    err("GET", "/v1/models/lenet:predict", b"", 405);
    assert!(err("POST", "/v1/models/lenet:predict", b"{\"instances\": [1, 2", 400).contains("malformed"));
    assert!(err("POST", "/v1/models/lenet:predict", b"{\"rows\": []}", 400).contains("\"instances\" or \"inputs\""));
    let m = err("POST", "/v1/models/lenet:predict", b"{\"instances\": [[1, 2, 3]]}", 400);
    assert!(m.contains("has shape [-1, 28, 28, 1], got [1, 3] (expected [28, 28, 1] per instance)"), "{m}");
    let m = err("POST", "/v1/models/lenet:predict", b"{\"instances\": [[\"a\"]]}", 400);
    assert!(m.contains("DT_FLOAT") && m.contains("string"), "{m}");
    let m = err("POST", "/v1/models/lenet:predict", b"{\"instances\": [[1, 2], [3]]}", 400);
    assert!(m.contains("ragged"), "{m}");
    let m = err("POST", "/v1/models/lenet:predict", b"{\"instances\": [{\"pixels\": [1]}]}", 400);
    assert!(m.contains("\"pixels\"") && m.contains("\"input\""), "{m}");
    let big = format!("{{\"instances\": [{}]}}", vec!["0.5"; 100_000].join(","));
    assert!(err("POST", "/v1/models/lenet:predict", big.as_bytes(), 413).contains("200000"));
    // After all that, the server still answers.
    let (_, instances) = lenet_inputs(1, 3);
    let (code, body) = http(addr, "POST", "/v1/models/lenet:predict", format!("{{\"instances\": {instances}}}").as_bytes());
    assert_eq!(code, 200, "{body}");
}

#[test]
fn a_full_queue_answers_503_and_the_rest_succeed() {
    let base = temp_dir("queue");
    save_lenet(&base, "lenet", 1, 1);
    let server = start(&base, |c| {
        c.max_queue = 1;
        c.max_batch_size = 1;
    });
    let addr = server.addr();
    // 16 clients at once, each with 256 rows: the model is far slower than the queue fills.
    let (_, instances) = lenet_inputs(256, 5);
    let body = Arc::new(format!("{{\"instances\": {instances}}}"));
    let barrier = Arc::new(Barrier::new(16));
    let codes: Vec<(u16, String)> = (0..16)
        .map(|_| {
            let (body, barrier) = (body.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                http(addr, "POST", "/v1/models/lenet:predict", body.as_bytes())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let busy: Vec<&(u16, String)> = codes.iter().filter(|(c, _)| *c == 503).collect();
    assert!(!busy.is_empty(), "no 503 among {:?}", codes.iter().map(|c| c.0).collect::<Vec<_>>());
    assert!(json(&busy[0].1)["error"].as_str().unwrap().contains("queue is full"));
    assert!(codes.iter().all(|(c, _)| *c == 200 || *c == 503), "{:?}", codes.iter().map(|c| c.0).collect::<Vec<_>>());
    assert!(codes.iter().any(|(c, _)| *c == 200));
}

#[test]
fn concurrent_requests_are_batched_into_one_forward_pass() {
    let base = temp_dir("batch");
    let net = save_lenet(&base, "lenet", 1, 2);
    // A long timeout, so that requests arriving together surely meet in one batch.
    let server = start(&base, |c| c.batching_timeout = Duration::from_millis(200));
    let addr = server.addr();
    let clients = 12;
    let barrier = Arc::new(Barrier::new(clients));
    type Rows = Vec<Vec<f32>>;
    let results: Vec<(Rows, Rows)> = (0..clients)
        .map(|i| {
            let (x, instances) = lenet_inputs(1, 100 + i as u64);
            let want = expected(&net, &x);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let (code, body) = http(addr, "POST", "/v1/models/lenet:predict", format!("{{\"instances\": {instances}}}").as_bytes());
                assert_eq!(code, 200, "{body}");
                (rows_of(&json(&body)["predictions"]), want)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    // Each client got its own row back, not a neighbour's.
    for (got, want) in &results {
        assert_close(got, want, "batched row");
    }
    let (code, text) = http(addr, "GET", "/monitoring/prometheus/metrics", b"");
    assert_eq!(code, 200);
    let value = |prefix: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (ones, count) = (value("fovea_serve_batch_size_bucket{le=\"1\"}"), value("fovea_serve_batch_size_count"));
    assert!(count < clients as f64 && ones < count, "every batch held one row: {ones} of {count} batches\n{text}");
    assert_eq!(value("fovea_serve_batch_size_sum"), clients as f64, "{text}");
    assert!(text.contains("fovea_serve_requests_total{endpoint=\"predict\",code=\"200\"} 12"), "{text}");
    assert!(text.contains("# TYPE fovea_serve_request_duration_seconds histogram"), "{text}");
}

#[test]
fn a_new_version_is_picked_up_without_failing_requests_in_flight() {
    let base = temp_dir("versions");
    save_lenet(&base, "lenet", 1, 1);
    let server = start(&base, |c| c.poll_interval = Duration::from_millis(50));
    let addr = server.addr();
    let (x, instances) = lenet_inputs(2, 9);
    let body = Arc::new(format!("{{\"instances\": {instances}}}"));
    // A client keeps predicting while the new version arrives.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let (body, stop) = (body.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut codes = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                codes.push(http(addr, "POST", "/v1/models/lenet:predict", body.as_bytes()).0);
            }
            codes
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let v2 = save_lenet(&base, "lenet", 2, 2);
    let start = Instant::now();
    while json(&http(addr, "GET", "/v1/models/lenet", b"").1)["model_version_status"][0]["version"] != "2" {
        assert!(start.elapsed() < Duration::from_secs(20), "version 2 was not picked up");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Release);
    let codes = hammer.join().unwrap();
    assert!(!codes.is_empty() && codes.iter().all(|&c| c == 200), "{codes:?}");
    let (code, out) = http(addr, "POST", "/v1/models/lenet:predict", body.as_bytes());
    assert_eq!(code, 200);
    assert_close(&rows_of(&json(&out)["predictions"]), &expected(&v2, &x), "version 2");
    assert_eq!(http(addr, "GET", "/v1/models/lenet/versions/1", b"").0, 404);
    assert_eq!(http(addr, "GET", "/v1/models/lenet/versions/2/metadata", b"").0, 200);
}

#[test]
fn graceful_shutdown_finishes_the_request_in_flight() {
    let base = temp_dir("shutdown");
    let net = save_lenet(&base, "lenet", 1, 1);
    let server = start(&base, |_| {});
    let addr = server.addr();
    let (x, instances) = lenet_inputs(1, 4);
    let body = format!("{{\"instances\": {instances}}}").into_bytes();
    // Headers and half the body now, the rest after shutdown has begun.
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!("POST /v1/models/lenet:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..body.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stopper = std::thread::spawn(move || server.shutdown());
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(&body[body.len() / 2..]).unwrap();
    let (code, out) = read_response(&mut s);
    assert_eq!(code, 200, "{out}");
    assert_close(&rows_of(&json(&out)["predictions"]), &expected(&net, &x), "in-flight request");
    stopper.join().unwrap().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "still accepting connections after shutdown");
}

#[test]
fn a_slow_request_times_out_with_504() {
    let base = temp_dir("timeout");
    save_lenet(&base, "lenet", 1, 1);
    // 1 ms cannot hold parsing and a forward pass of 256 LeNet-5 rows.
    let server = start(&base, |c| c.request_timeout = Duration::from_millis(1));
    let (_, instances) = lenet_inputs(256, 8);
    let (code, body) = http(server.addr(), "POST", "/v1/models/lenet:predict", format!("{{\"instances\": {instances}}}").as_bytes());
    assert_eq!(code, 504, "{body}");
    assert!(json(&body)["error"].as_str().unwrap().contains("timed out after 1 ms"), "{body}");
}

#[test]
fn a_base_path_of_versions_is_one_model_named_by_model_name() {
    // TF Serving's `--model_base_path=/models/digits --model_name=digits`.
    let base = temp_dir("single");
    save_lenet(&base, "digits", 3, 1);
    let server = start(&base.join("digits"), |c| c.model_name = Some("mnist".into()));
    let (code, body) = http(server.addr(), "GET", "/v1/models/mnist", b"");
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["model_version_status"][0]["version"], "3");
    assert_eq!(http(server.addr(), "GET", "/v1/models/digits", b"").0, 404);
}
