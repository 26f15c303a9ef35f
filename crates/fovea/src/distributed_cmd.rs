//! `fovea train --distributed`: one replica per process under `mpirun`
//! (`mpirun -np 4 fovea train lenet5 --distributed`, or with `--hostfile` across machines).
//! The strategy lives for the whole command; `end` finalizes MPI after a success and aborts
//! the job after a failure, since the other replicas would otherwise wait for this one forever.

#[cfg(feature = "distributed")]
use std::sync::Mutex;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

#[cfg(feature = "distributed")]
static STRATEGY: Mutex<Option<fovea_distributed::MultiWorkerMirroredStrategy>> = Mutex::new(None);

/// This process's place in the job: `(rank, replicas)`, `(0, 1)` without `--distributed`.
///
/// # Errors
/// `--distributed` in a build without the `distributed` feature, or MPI failing to start.
pub fn start(distributed: bool) -> AnyResult<(usize, usize)> {
    if !distributed {
        return Ok((0, 1));
    }
    #[cfg(feature = "distributed")]
    {
        let strategy = fovea_distributed::MultiWorkerMirroredStrategy::new()?;
        let place = (strategy.rank(), strategy.num_replicas_in_sync());
        *STRATEGY.lock().map_err(|_| "the strategy lock is poisoned")? = Some(strategy);
        Ok(place)
    }
    #[cfg(not(feature = "distributed"))]
    Err("--distributed: this fovea was built without the `distributed` feature; rebuild with `cargo build --release -p fovea --features distributed` (needs `apt-get install openmpi-bin libopenmpi-dev libclang-dev`) and launch with `mpirun -np N fovea train ... --distributed`".into())
}

/// Makes a compiled model's `fit` data parallel when the job has started (a no-op otherwise).
///
/// # Errors
/// When the model is not compiled.
pub fn distribute<M: fovea::nn::model::Model>(net: &M) -> AnyResult<()> {
    #[cfg(feature = "distributed")]
    if let Some(strategy) = STRATEGY.lock().map_err(|_| "the strategy lock is poisoned")?.as_ref() {
        strategy.distribute(net)?;
    }
    let _ = net;
    Ok(())
}

/// Finalizes MPI after a success; after a failure (already reported) aborts every replica.
pub fn end(succeeded: bool) {
    #[cfg(feature = "distributed")]
    if let Some(strategy) = STRATEGY.lock().ok().and_then(|mut s| s.take()) {
        if !succeeded {
            strategy.abort(1);
        }
    }
    let _ = succeeded;
}
