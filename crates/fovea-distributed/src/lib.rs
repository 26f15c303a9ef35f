//! Synchronous data-parallel training on MPI: Fovea's `MultiWorkerMirroredStrategy`.
//!
//! Launch one process per replica with `mpirun` (`mpirun -np 4 my_trainer`, or with a hostfile
//! for several machines); each process builds and compiles the same model, hands it to the
//! strategy, then calls `fit` as usual:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use fovea_distributed::MultiWorkerMirroredStrategy;
//! # let (model, x, y): (fovea_nn::model::Sequential, fovea_core::Tensor, fovea_core::Tensor) = todo!();
//! use fovea_nn::model::{FitOptions, Model};
//! let strategy = MultiWorkerMirroredStrategy::new()?;
//! // ... build and compile `model` ...
//! strategy.distribute(&model)?;
//! // batch_size is the global batch: each of the N replicas trains on batch_size / N rows.
//! model.fit(&x, &y, FitOptions { batch_size: 64, ..Default::default() })?;
//! # Ok(()) }
//! ```
//!
//! What `fit` then does is in [`fovea_nn::model::replicas`]: replica 0's weights are copied to
//! every replica, each global batch is split across replicas, gradients are averaged with
//! all-reduce in buckets, the epoch's logs are averaged, and only replica 0 prints. Give the
//! callbacks that write files (TensorBoard, checkpoints, CSV) to the chief only
//! ([`MultiWorkerMirroredStrategy::is_chief`]); those that decide (early stopping) see the same
//! averaged logs on every replica and may run everywhere.
//!
//! MPI needs the `mpi` feature (OpenMPI's `libopenmpi-dev` and `libclang-dev` at build time);
//! without it [`MultiWorkerMirroredStrategy::new`] says how to get it.

#[cfg(feature = "mpi")]
mod transport;

use fovea_nn::model::replicas::{self, Collective};
use fovea_nn::model::Model;
use std::sync::Arc;

/// What can go wrong when starting or using the strategy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// This build has no MPI.
    #[error("this build has no MPI: rebuild with the `distributed` feature of fovea (`cargo build --release -p fovea --features distributed`), which needs OpenMPI and libclang (`apt-get install openmpi-bin libopenmpi-dev libclang-dev`)")]
    NotBuilt,
    /// MPI was initialized already in this process (one strategy per process).
    #[error("MPI is already initialized in this process: create one MultiWorkerMirroredStrategy per process and share it")]
    AlreadyInitialized,
    /// The transport failed or its thread is gone.
    #[error("MPI transport: {0}")]
    Transport(String),
    /// From the model.
    #[error(transparent)]
    Nn(#[from] fovea_nn::Error),
}

/// Keras's `MultiWorkerMirroredStrategy`: synchronous data parallelism with one replica per
/// MPI process.
pub struct MultiWorkerMirroredStrategy {
    collective: Arc<dyn Collective>,
    #[cfg(feature = "mpi")]
    transport: Arc<transport::MpiCollective>,
}

impl MultiWorkerMirroredStrategy {
    /// Joins the MPI job this process was launched in (a job of one without `mpirun`).
    ///
    /// # Errors
    /// [`Error::NotBuilt`] without the `mpi` feature; [`Error::AlreadyInitialized`] for a second
    /// strategy in one process.
    pub fn new() -> Result<Self, Error> {
        #[cfg(feature = "mpi")]
        {
            let transport = Arc::new(transport::MpiCollective::start()?);
            Ok(MultiWorkerMirroredStrategy { collective: transport.clone(), transport })
        }
        #[cfg(not(feature = "mpi"))]
        {
            Err(Error::NotBuilt)
        }
    }

    /// How many replicas train together (Keras's `num_replicas_in_sync`).
    pub fn num_replicas_in_sync(&self) -> usize {
        self.collective.world_size()
    }

    /// This process's replica index (its MPI rank).
    pub fn rank(&self) -> usize {
        self.collective.rank()
    }

    /// Whether this is replica 0, the one that prints and writes files.
    pub fn is_chief(&self) -> bool {
        self.rank() == 0
    }

    /// Makes `model`'s `fit` data parallel across the replicas (see the crate docs).
    ///
    /// # Errors
    /// When the model is not compiled.
    pub fn distribute<M: Model + ?Sized>(&self, model: &M) -> Result<(), Error> {
        Ok(replicas::distribute(model, self.collective.clone())?)
    }

    /// The collective operations, for custom training loops.
    pub fn collective(&self) -> Arc<dyn Collective> {
        self.collective.clone()
    }

    /// Ends every process of the job with `code`: what a replica does on an error it cannot
    /// recover from, since the others would otherwise wait for it forever.
    pub fn abort(&self, code: i32) -> ! {
        #[cfg(feature = "mpi")]
        self.transport.abort(code);
        #[cfg(not(feature = "mpi"))]
        std::process::exit(code)
    }
}

#[cfg(all(test, not(feature = "mpi")))]
mod tests {
    #[test]
    fn without_mpi_the_strategy_says_how_to_get_it() {
        let Err(err) = super::MultiWorkerMirroredStrategy::new() else { panic!("this build has no MPI") };
        assert!(err.to_string().contains("--features distributed") && err.to_string().contains("libopenmpi-dev"), "{err}");
    }
}
