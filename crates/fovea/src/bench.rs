//! `fovea bench`: Fovea's side of the end-to-end benchmark (training and inference images/s
//! and peak memory on random data), one JSON line per workload so that `bench/` scripts can
//! set PyTorch's and TensorFlow's numbers beside it.
//!
//! Each workload runs in its own child process (`fovea bench --only NAME`), so its peak
//! resident memory (`VmHWM`) is its own. Within a workload: one warm-up window, then
//! [`WINDOWS`] timed windows of at least [`WINDOW`] each; the median window is the result.

use fovea::core::{profile, Device, Tensor};
use fovea::nn::losses::Loss;
use fovea::nn::mixed_precision::{with_policy, Policy};
use fovea::nn::model::Model;
use fovea::nn::optimizers::Optimizer;
use fovea::vision::applications::{fashion_mnist_cnn, lenet5, resnet20, resnet50, AppOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `fovea bench`'s flags.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Run only this workload, in this process (default: every workload, each in its own
    /// process so that its peak memory is its own).
    #[arg(long)]
    only: Option<String>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print the workloads' names and stop.
    #[arg(long)]
    list: bool,
    /// After the timed windows, record [`PROFILED_STEPS`] more steps of the workload (each
    /// layer's forward pass, each backward op, each optimizer update) and write them to this
    /// file in Chrome's trace format (open it in Perfetto). Needs `--only`.
    #[arg(long, value_name = "FILE", requires = "only")]
    profile: Option<PathBuf>,
}

/// The steps `--profile` records: enough to see a steady step, few enough for a small trace.
pub const PROFILED_STEPS: usize = 3;

/// Timed windows per workload.
pub const WINDOWS: usize = 5;

/// The shortest window.
const WINDOW: Duration = Duration::from_millis(1000);

/// One workload: a model, training or inference, and a batch size.
pub struct Workload {
    /// The key of its JSON line, e.g. `lenet5_train_b32`.
    pub name: &'static str,
    model: ModelKind,
    train: bool,
    batch: usize,
    /// The Keras dtype policy the model is built under (mixed bf16 rows of the core issue).
    policy: Policy,
}

#[derive(Clone, Copy)]
enum ModelKind {
    Lenet5,
    FashionCnn,
    Resnet20,
    Resnet50,
}

/// The workloads of the end-to-end benchmark issue, in its table's order, then the model zoo's
/// ResNet-50 inference at 224×224, then the mixed-bfloat16 rows of the device-ready core issue.
pub const WORKLOADS: &[Workload] = &[
    Workload { name: "lenet5_train_b32", model: ModelKind::Lenet5, train: true, batch: 32, policy: F32 },
    Workload { name: "lenet5_train_b128", model: ModelKind::Lenet5, train: true, batch: 128, policy: F32 },
    Workload { name: "fashion_cnn_train_b128", model: ModelKind::FashionCnn, train: true, batch: 128, policy: F32 },
    Workload { name: "resnet20_train_b128", model: ModelKind::Resnet20, train: true, batch: 128, policy: F32 },
    Workload { name: "lenet5_infer_b1", model: ModelKind::Lenet5, train: false, batch: 1, policy: F32 },
    Workload { name: "lenet5_infer_b256", model: ModelKind::Lenet5, train: false, batch: 256, policy: F32 },
    Workload { name: "resnet20_infer_b1", model: ModelKind::Resnet20, train: false, batch: 1, policy: F32 },
    Workload { name: "resnet20_infer_b128", model: ModelKind::Resnet20, train: false, batch: 128, policy: F32 },
    Workload { name: "resnet50_infer_b1", model: ModelKind::Resnet50, train: false, batch: 1, policy: F32 },
    Workload { name: "resnet50_infer_b8", model: ModelKind::Resnet50, train: false, batch: 8, policy: F32 },
    Workload { name: "resnet20_train_b128_bf16", model: ModelKind::Resnet20, train: true, batch: 128, policy: BF16 },
    Workload { name: "resnet50_infer_b1_bf16", model: ModelKind::Resnet50, train: false, batch: 1, policy: BF16 },
    Workload { name: "resnet50_infer_b8_bf16", model: ModelKind::Resnet50, train: false, batch: 8, policy: BF16 },
];

const F32: Policy = Policy::Float32;
const BF16: Policy = Policy::MixedBFloat16;

/// The workload called `name`.
///
/// # Errors
/// An unknown name, listing the known ones.
pub fn workload(name: &str) -> Result<&'static Workload, String> {
    WORKLOADS.iter().find(|w| w.name == name).ok_or_else(|| {
        format!("unknown workload {name:?}, expected one of {}", WORKLOADS.iter().map(|w| w.name).collect::<Vec<_>>().join(", "))
    })
}

/// Runs `step` (which processes `batch` images) in windows and returns the median images/s.
fn images_per_second(batch: usize, mut step: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    let mut window = || -> Result<f64, String> {
        let (start, mut steps) = (Instant::now(), 0usize);
        while start.elapsed() < WINDOW || steps == 0 {
            step()?;
            steps += 1;
        }
        Ok((steps * batch) as f64 / start.elapsed().as_secs_f64())
    };
    window()?; // warm-up: buffers, thread pool, first-call allocations
    let mut rates = (0..WINDOWS).map(|_| window()).collect::<Result<Vec<_>, _>>()?;
    rates.sort_by(f64::total_cmp);
    Ok(rates[WINDOWS / 2])
}

/// The process's peak resident memory in MiB, from `/proc/self/status` (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs one workload in this process and returns its JSON line; with `profile`, then records
/// [`PROFILED_STEPS`] steps as a Chrome trace in that file (outside the timed windows, so the
/// measured rate is unaffected).
///
/// # Errors
/// Model construction, a failing step or an unwritable trace file, as text.
pub fn run(w: &Workload, profile: Option<&std::path::Path>) -> Result<String, String> {
    let err = |e: fovea::nn::Error| e.to_string();
    fovea::core::set_seed(0);
    let (input, classes): ([usize; 3], usize) = match w.model {
        ModelKind::Lenet5 | ModelKind::FashionCnn => ([28, 28, 1], 10),
        ModelKind::Resnet20 => ([32, 32, 3], 10),
        ModelKind::Resnet50 => ([224, 224, 3], 1000),
    };
    let model: Box<dyn Model> = with_policy(w.policy, || -> Result<Box<dyn Model>, String> {
        Ok(match w.model {
            ModelKind::Lenet5 => Box::new(lenet5((input[0], input[1], input[2]), classes).map_err(err)?),
            ModelKind::FashionCnn => Box::new(fashion_mnist_cnn((input[0], input[1], input[2]), classes).map_err(err)?),
            ModelKind::Resnet20 => Box::new(resnet20(&AppOptions { classes, ..AppOptions::default() }).map_err(err)?),
            ModelKind::Resnet50 => Box::new(resnet50(&AppOptions::default()).map_err(err)?),
        })
    })?;
    let optimizer = match w.model {
        ModelKind::FashionCnn => Optimizer::from_name("nadam"),
        _ => Optimizer::from_name("adam"),
    }
    .map_err(err)?;
    model.compile(optimizer, Loss::from_name("sparse_categorical_crossentropy").map_err(err)?, &["accuracy"]).map_err(err)?;
    let dims = [w.batch, input[0], input[1], input[2]];
    let x = Tensor::random_uniform(dims, 0.0, 1.0, Some(1), Device::Cpu).map_err(|e| e.to_string())?;
    let labels: Vec<i64> = (0..w.batch as i64).map(|i| i % classes as i64).collect();
    let y = Tensor::from_vec(labels, [w.batch], Device::Cpu).map_err(|e| e.to_string())?;
    let step = || -> Result<(), String> {
        if w.train {
            model.train_on_batch(&x, &y).map(drop).map_err(err)
        } else {
            fovea::core::no_grad(|| model.call(std::slice::from_ref(&x), false)).map(drop).map_err(err)
        }
    };
    let rate = images_per_second(w.batch, &step)?;
    if let Some(file) = profile {
        profile::start();
        let stepped = (0..PROFILED_STEPS).try_for_each(|_| profile::span("step", || w.name.to_string(), step));
        let trace = profile::chrome_trace(&profile::stop());
        stepped?;
        fovea::core::io::write_atomic(file, trace.as_bytes()).map_err(|e| format!("--profile {}: {e}", file.display()))?;
    }
    let params: usize = model.weights().iter().map(|v| v.value().numel()).sum();
    let rss = peak_rss_mib().map_or("null".to_string(), |m| format!("{m:.1}"));
    Ok(format!(
        "{{\"kind\": \"result\", \"bench\": \"fovea\", \"name\": \"{}\", \"images_per_s\": {rate:.1}, \"peak_rss_mib\": {rss}, \"batch\": {}, \"params\": {params}, \"threads\": {}}}",
        w.name,
        w.batch,
        rayon::current_num_threads()
    ))
}

/// `fovea bench`: one workload here, or each in a child process.
pub fn run_command(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let BenchArgs { only, threads, list, profile } = args;
    if list {
        WORKLOADS.iter().for_each(|w| println!("{}", w.name));
        return Ok(());
    }
    if threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    if let Some(name) = only {
        let w = workload(&name)?;
        if let Some(file) = &profile {
            crate::model_file::check_writable("--profile", file)?;
        }
        rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().map_err(|e| e.to_string())?;
        println!("{}", fovea::core::on_pool(|| run(w, profile.as_deref()))?);
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    println!("{{\"kind\": \"meta\", \"bench\": \"fovea\", \"threads\": {threads}, \"windows\": {}}}", WINDOWS);
    for w in WORKLOADS {
        let out = std::process::Command::new(&exe).args(["bench", "--only", w.name, "--threads", &threads.to_string()]).output()?;
        if !out.status.success() {
            return Err(format!("workload {}: {}", w.name, String::from_utf8_lossy(&out.stderr).trim()).into());
        }
        let line = String::from_utf8_lossy(&out.stdout);
        print!("{line}");
        eprintln!("{:<26} {}", w.name, line.trim());
    }
    Ok(())
}
