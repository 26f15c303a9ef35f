//! The REST API: TF Serving's paths, answered by one handler that parses the path itself, so
//! that every answer — unknown paths and methods included — is TF Serving's
//! `{"error": "..."}` JSON.

use crate::batcher::{Batcher, Job, SubmitError};
use crate::metrics::Metrics;
use crate::request::{parse_predict, write_response};
use crate::store::{ModelStore, Servable};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What every handler shares.
pub struct AppState {
    /// The models.
    pub store: Arc<ModelStore>,
    /// The queue to the inference thread.
    pub batcher: Batcher,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest a request may take, read to response.
    pub request_timeout: Duration,
}

fn json_response(code: StatusCode, body: Vec<u8>) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    json_response(code, json!({ "error": msg.into() }).to_string().into_bytes())
}

/// Which endpoint a path is, for the metrics' labels.
fn endpoint(path: &str) -> &'static str {
    if path == "/monitoring/prometheus/metrics" {
        "metrics"
    } else if !path.starts_with("/v1/models/") {
        "other"
    } else if path.ends_with(":predict") {
        "predict"
    } else if path.ends_with("/metadata") {
        "metadata"
    } else {
        "status"
    }
}

/// Answers every request: routes it, bounds its time, and counts it.
pub async fn handle(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let start = Instant::now();
    let label = endpoint(req.uri().path());
    let timeout = st.request_timeout;
    let resp = match tokio::time::timeout(timeout, route(&st, req)).await {
        Ok(r) => r,
        Err(_) => error(StatusCode::GATEWAY_TIMEOUT, format!("request timed out after {} ms", timeout.as_millis())),
    };
    st.metrics.record_request(label, resp.status().as_u16(), start.elapsed());
    resp
}

/// A parsed `/v1/models/...` path.
#[derive(Debug)]
struct ModelPath<'a> {
    name: &'a str,
    version: Option<u64>,
    /// `""`, `"metadata"` or `":predict"` (or another `:verb`).
    action: &'a str,
}

fn parse_model_path(rest: &str) -> Result<ModelPath<'_>, String> {
    let (path, verb) = match rest.rfind(':') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let mut parts = path.split('/');
    let name = parts.next().filter(|n| !n.is_empty()).ok_or("missing model name in /v1/models/{name}")?;
    let mut version = None;
    let mut action = verb;
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (None, ..) => {}
        (Some("metadata"), None, ..) if verb.is_empty() => action = "metadata",
        (Some("versions"), Some(v), rest, None) => {
            version = Some(v.parse::<u64>().map_err(|_| format!("version {v:?} is not a number"))?);
            match rest {
                None => {}
                Some("metadata") if verb.is_empty() => action = "metadata",
                Some(other) => return Err(format!("unknown path element {other:?}")),
            }
        }
        _ => return Err(format!("unknown path /v1/models/{rest}")),
    }
    Ok(ModelPath { name, version, action })
}

async fn route(st: &AppState, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path == "/monitoring/prometheus/metrics" {
        if req.method() != Method::GET {
            return error(StatusCode::METHOD_NOT_ALLOWED, "the metrics are read with GET");
        }
        let text = st.metrics.render(st.batcher.queued());
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response();
    }
    let Some(rest) = path.strip_prefix("/v1/models/") else {
        return error(StatusCode::NOT_FOUND, format!("unknown path {path}; the API is under /v1/models/"));
    };
    let mp = match parse_model_path(rest) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::NOT_FOUND, e),
    };
    let (method, action) = (req.method().clone(), mp.action);
    let want = if action == ":predict" { Method::POST } else { Method::GET };
    if action.starts_with(':') && action != ":predict" {
        return error(StatusCode::BAD_REQUEST, format!("{action} is not supported; this server answers :predict"));
    }
    if method != want {
        return error(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed here; use {want}"));
    }
    let servable = match st.store.get(mp.name, mp.version) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::NOT_FOUND, e.0),
    };
    match action {
        "" => status(&servable),
        "metadata" => metadata(&servable),
        _ => predict(st, servable, req.into_body()).await,
    }
}

fn status(s: &Servable) -> Response {
    let body = json!({ "model_version_status": [{
        "version": s.version.to_string(),
        "state": "AVAILABLE",
        "status": { "error_code": "OK", "error_message": "" },
    }]});
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

fn tensor_info(name: &str, dims: &[usize]) -> serde_json::Value {
    let dim: Vec<serde_json::Value> =
        std::iter::once(-1i64).chain(dims.iter().map(|&d| d as i64)).map(|d| json!({ "size": d.to_string(), "name": "" })).collect();
    json!({ "dtype": "DT_FLOAT", "tensor_shape": { "dim": dim, "unknown_rank": false }, "name": format!("{name}:0") })
}

fn metadata(s: &Servable) -> Response {
    let body = json!({
        "model_spec": { "name": s.name, "signature_name": "", "version": s.version.to_string() },
        "metadata": { "signature_def": { "signature_def": { "serving_default": {
            "inputs": { &s.input_name: tensor_info(&s.input_name, &s.input_dims) },
            "outputs": { &s.output_name: tensor_info(&s.output_name, &s.output_dims) },
            "method_name": "tensorflow/serving/predict",
        }}}},
    });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

/// Whether a body-read error is the length limit (413) rather than a broken connection.
fn is_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.to_string().contains("length limit exceeded") {
            return true;
        }
        cur = err.source();
    }
    false
}

async fn predict(st: &AppState, servable: Arc<Servable>, body: Body) -> Response {
    let too_big = || {
        error(StatusCode::PAYLOAD_TOO_LARGE, format!("request body exceeds the limit of {} bytes (--max-body-bytes)", st.max_body_bytes))
    };
    // Counted from the first byte read until queued: the batcher waits for such requests.
    let reading = st.batcher.reading();
    let bytes = match axum::body::to_bytes(body, st.max_body_bytes).await {
        Ok(b) => b,
        Err(e) if is_length_limit(&e) => return too_big(),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("could not read the request body: {e}")),
    };
    let parsed = match parse_predict(&bytes, &servable) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    drop(bytes);
    let (tx, rx) = oneshot::channel();
    let (format, rows) = (parsed.format, parsed.rows);
    let job = Job { servable: servable.clone(), rows, input: parsed.data, reply: tx };
    match st.batcher.submit(job) {
        Ok(()) => {}
        Err(SubmitError::Full) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "server busy: the request queue is full (--max-queue); retry later")
        }
        Err(SubmitError::Closed) => return error(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down"),
    }
    drop(reading);
    match rx.await {
        Ok(Ok(out)) => json_response(StatusCode::OK, write_response(format, &out, rows, &servable.output_dims)),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("inference failed: {e}")),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "inference failed: the inference thread dropped the request"),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_model_path;

    #[test]
    fn model_paths_parse_as_tf_serving_writes_them() {
        let p = parse_model_path("lenet/versions/3:predict").unwrap();
        assert_eq!((p.name, p.version, p.action), ("lenet", Some(3), ":predict"));
        let p = parse_model_path("lenet/metadata").unwrap();
        assert_eq!((p.name, p.version, p.action), ("lenet", None, "metadata"));
        let p = parse_model_path("lenet/versions/2/metadata").unwrap();
        assert_eq!((p.name, p.version, p.action), ("lenet", Some(2), "metadata"));
        assert!(parse_model_path("lenet/versions/x").unwrap_err().contains("not a number"));
        assert!(parse_model_path("lenet/labels/a/b").is_err());
    }
}
