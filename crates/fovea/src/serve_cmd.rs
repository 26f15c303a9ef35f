//! `fovea serve`: TF Serving's REST API over Fovea model files (crate fovea-serve). Parsed
//! before clap's `Command`, like `generate`, because the command exists only in binaries built
//! with the `serve` feature, and a binary without it should say how to get it.

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Runs `fovea serve ...` when `argv` asks for it; `None` for every other command.
pub fn dispatch(argv: &[String]) -> Option<AnyResult<()>> {
    if argv.get(1).map(String::as_str) != Some("serve") {
        return None;
    }
    Some(serve(argv))
}

/// `fovea serve` for the completion scripts: its options when this build has the server.
pub fn completion_command() -> clap::Command {
    #[cfg(feature = "serve")]
    return <ServeArgs as clap::CommandFactory>::command().name("serve");
    #[cfg(not(feature = "serve"))]
    clap::Command::new("serve").about("Serve models over TensorFlow Serving's REST API (needs the `serve` feature)")
}

#[cfg(not(feature = "serve"))]
fn serve(_argv: &[String]) -> AnyResult<()> {
    Err("this fovea binary was built without the `serve` feature (the HTTP server's dependencies are optional); \
         rebuild with `cargo build --release -p fovea --features serve`"
        .into())
}

#[cfg(feature = "serve")]
fn serve(argv: &[String]) -> AnyResult<()> {
    use clap::Parser;
    let args = ServeArgs::parse_from(std::iter::once("fovea serve".to_string()).chain(argv.iter().skip(2).cloned()));
    let mut config = fovea_serve::ServeConfig::new(&args.model_base_path);
    config.model_name = args.model_name;
    config.addr = std::net::SocketAddr::new(args.host, args.port);
    config.max_batch_size = args.max_batch_size;
    config.batching_timeout = std::time::Duration::from_micros(args.batching_timeout_micros);
    config.max_queue = args.max_queue;
    config.max_body_bytes = args.max_body_bytes;
    config.request_timeout = std::time::Duration::from_millis(args.request_timeout_ms);
    config.poll_interval = std::time::Duration::from_millis(args.poll_interval_ms);
    Ok(fovea_serve::run(config)?)
}

/// Serve models over TensorFlow Serving's REST API (GET /v1/models/NAME, .../metadata,
/// POST /v1/models/NAME:predict, GET /monitoring/prometheus/metrics) until SIGTERM or Ctrl-C.
#[cfg(feature = "serve")]
#[derive(clap::Parser)]
struct ServeArgs {
    /// Models as BASE/NAME/VERSION/model.safetensors (or BASE/VERSION/model.safetensors for one
    /// model named by --model-name); the highest version of each serves, and new version
    /// directories are picked up while serving.
    #[arg(long, value_name = "BASE")]
    model_base_path: std::path::PathBuf,
    /// Serve only this model (default: every directory under BASE).
    #[arg(long, value_name = "NAME")]
    model_name: Option<String>,
    /// The REST API port (TF Serving's is 8501).
    #[arg(long, default_value_t = 8501)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    host: std::net::IpAddr,
    /// Most instances per forward pass.
    #[arg(long, default_value_t = 32)]
    max_batch_size: usize,
    /// Longest a batch waits for more requests after its first, in microseconds (it runs at
    /// once when no other request is arriving).
    #[arg(long, default_value_t = 5000)]
    batching_timeout_micros: u64,
    /// Most requests waiting for the model; more are answered 503.
    #[arg(long, default_value_t = 256)]
    max_queue: usize,
    /// Largest request body in bytes; larger ones are answered 413.
    #[arg(long, default_value_t = 64 << 20)]
    max_body_bytes: usize,
    /// Longest a request may take, in milliseconds (504 after).
    #[arg(long, default_value_t = 30_000)]
    request_timeout_ms: u64,
    /// How often BASE is scanned for new versions, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    poll_interval_ms: u64,
}
