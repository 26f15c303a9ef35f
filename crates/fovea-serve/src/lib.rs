//! `fovea serve`: a REST server that speaks TensorFlow Serving's API, so that existing TF
//! Serving clients work unchanged with Fovea models.
//!
//! - `GET /v1/models/{name}[/versions/{v}]` — version status;
//! - `GET /v1/models/{name}[/versions/{v}]/metadata` — the `serving_default` signature;
//! - `POST /v1/models/{name}[/versions/{v}]:predict` — `{"instances": [...]}` →
//!   `{"predictions": [...]}` or `{"inputs": ...}` → `{"outputs": ...}`, with `{"b64": "..."}`
//!   PNG/JPEG images decoded and scaled as `fovea predict` scales image files;
//! - `GET /monitoring/prometheus/metrics` — Prometheus text.
//!
//! Models load from `BASE/{name}/{version}/model.safetensors` ([`store`]); requests are batched
//! dynamically onto one inference thread ([`batcher`]); errors are `{"error": "..."}` with a
//! 4xx/5xx code, and nothing a client sends can stop the server.

#![warn(missing_docs)]

pub mod batcher;
pub mod http;
pub mod metrics;
pub mod request;
pub mod store;

use batcher::{BatchConfig, Batcher};
use http::AppState;
use metrics::Metrics;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use store::ModelStore;

/// The server's settings; [`ServeConfig::new`] gives TF Serving's defaults.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// `BASE` of `BASE/{name}/{version}/model.safetensors`.
    pub model_base_path: PathBuf,
    /// Serve only this model (or name the single model when `BASE` holds versions directly).
    pub model_name: Option<String>,
    /// Where to listen; port 0 picks a free one (see [`Server::addr`]).
    pub addr: SocketAddr,
    /// Most rows per forward pass.
    pub max_batch_size: usize,
    /// Longest a batch waits for more rows.
    pub batching_timeout: Duration,
    /// Most requests waiting for the model before answering 503.
    pub max_queue: usize,
    /// Largest request body (413 above).
    pub max_body_bytes: usize,
    /// Longest a request may take (504 after).
    pub request_timeout: Duration,
    /// How often the base path is scanned for new versions.
    pub poll_interval: Duration,
}

impl ServeConfig {
    /// Defaults: port 8501 on all interfaces, batches of up to 32 rows waiting at most 5 ms,
    /// 256 queued requests, 64 MiB bodies, 30 s per request, a poll every second.
    pub fn new(model_base_path: impl Into<PathBuf>) -> Self {
        ServeConfig {
            model_base_path: model_base_path.into(),
            model_name: None,
            addr: SocketAddr::from(([0, 0, 0, 0], 8501)),
            max_batch_size: 32,
            batching_timeout: Duration::from_micros(5000),
            max_queue: 256,
            max_body_bytes: 64 << 20,
            request_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting is out of range, or the base path is missing.
    #[error("{0}")]
    Config(String),
    /// Binding the port or starting a thread failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running server (its own thread and runtime), for embedding and tests.
pub struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Loads the models and starts serving; returns once the port is bound.
    ///
    /// # Errors
    /// [`ServeError`] for bad settings, a missing base path, or a port that cannot be bound.
    pub fn start(config: ServeConfig) -> Result<Server, ServeError> {
        let (state, stop_poll) = prepare(&config)?;
        let runtime = runtime()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(config.addr))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::Builder::new().name("fovea-serve-http".into()).spawn(move || {
            let r = runtime.block_on(serve(listener, st, async {
                let _ = rx.await;
            }));
            stop_poll.store(true, Ordering::Release);
            r
        })?;
        Ok(Server { addr, state, shutdown: Some(tx), thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics (tests read them directly as well as over HTTP).
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits for that.
    ///
    /// # Errors
    /// An I/O error from the server loop.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(std::io::Error::other("the server thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Serves until SIGTERM or Ctrl-C, then lets in-flight requests finish: the `fovea serve`
/// command. Progress lines go to stderr.
///
/// # Errors
/// As [`Server::start`].
pub fn run(config: ServeConfig) -> Result<(), ServeError> {
    let (state, stop_poll) = prepare(&config)?;
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        eprintln!("fovea serve: listening on http://{} (REST API: /v1/models/{{name}})", listener.local_addr()?);
        serve(listener, state, shutdown_signal()).await
    });
    stop_poll.store(true, Ordering::Release);
    eprintln!("fovea serve: stopped");
    Ok(result?)
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("fovea-serve-io").build()
}

/// Checks the settings, loads what the base path holds, and starts the inference and poll
/// threads. Returns the poll thread's stop flag.
fn prepare(config: &ServeConfig) -> Result<(Arc<AppState>, Arc<AtomicBool>), ServeError> {
    if config.max_batch_size == 0 || config.max_queue == 0 || config.max_body_bytes == 0 {
        return Err(ServeError::Config(format!(
            "--max-batch-size, --max-queue and --max-body-bytes must be at least 1, got {}, {} and {}",
            config.max_batch_size, config.max_queue, config.max_body_bytes
        )));
    }
    if !config.model_base_path.is_dir() {
        return Err(ServeError::Config(format!("--model-base-path {}: no such directory", config.model_base_path.display())));
    }
    let store = Arc::new(ModelStore::new(&config.model_base_path, config.model_name.clone()));
    for line in store.poll()? {
        eprintln!("fovea serve: {line}");
    }
    if store.names().is_empty() {
        eprintln!(
            "fovea serve: no model versions under {} yet (expected NAME/VERSION/model.safetensors); watching for them",
            config.model_base_path.display()
        );
    }
    let metrics = Arc::new(Metrics::new());
    let batch =
        BatchConfig { max_batch_size: config.max_batch_size, batching_timeout: config.batching_timeout, max_queue: config.max_queue };
    let batcher = Batcher::start(batch, metrics.clone())?;
    let stop = Arc::new(AtomicBool::new(false));
    let (poll_store, poll_stop, interval) = (store.clone(), stop.clone(), config.poll_interval);
    std::thread::Builder::new().name("fovea-serve-poll".into()).spawn(move || {
        while !poll_stop.load(Ordering::Acquire) {
            std::thread::sleep(interval);
            match poll_store.poll() {
                Ok(lines) => lines.iter().for_each(|l| eprintln!("fovea serve: {l}")),
                Err(e) => eprintln!("fovea serve: cannot read {}: {e}", poll_store.base().display()),
            }
        }
    })?;
    let state = AppState { store, batcher, metrics, max_body_bytes: config.max_body_bytes, request_timeout: config.request_timeout };
    Ok((Arc::new(state), stop))
}

async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Every path goes to one handler, which answers unknown ones with JSON errors; the body
    // limit is the handler's too, so that a 413 is JSON as well.
    let app = axum::Router::new().fallback(http::handle).with_state(state);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    eprintln!("fovea serve: shutting down; finishing requests in flight");
}
