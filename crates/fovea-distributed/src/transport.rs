//! The MPI transport: one thread owns MPI (initialized with `MPI_THREAD_FUNNELED`, so only it
//! calls MPI) and serves the training threads' requests in order. `fit` runs its steps on the
//! compute pool's threads; funnelling every call through one thread keeps MPI's threading
//! contract without `unsafe`, and lets it reduce one gradient bucket while the next is packed.

use crate::Error;
use fovea_nn::model::replicas::{Collective, PendingSum};
use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::environment::Threading;
use mpi::topology::Communicator;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;

/// One request to the MPI thread, with where to send its answer.
enum Job {
    SumF32(Vec<f32>, Sender<Vec<f32>>),
    SumF64(Vec<f64>, Sender<Vec<f64>>),
    BroadcastF32(Vec<f32>, Sender<Vec<f32>>),
    BroadcastU64(u64, Sender<u64>),
    Abort(i32),
}

/// [`Collective`] over `MPI_COMM_WORLD`.
pub(crate) struct MpiCollective {
    rank: usize,
    world: usize,
    jobs: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl MpiCollective {
    /// Starts the MPI thread and joins the job.
    pub(crate) fn start() -> Result<Self, Error> {
        let (jobs, inbox) = channel::<Job>();
        let (ready, started) = channel::<Result<(usize, usize), Error>>();
        let thread = std::thread::Builder::new()
            .name("fovea-mpi".into())
            .spawn(move || serve(inbox, ready))
            .map_err(|e| Error::Transport(format!("cannot start the MPI thread: {e}")))?;
        let (rank, world) = started.recv().map_err(|_| Error::Transport("the MPI thread ended while starting".into()))??;
        Ok(MpiCollective { rank, world, jobs: Mutex::new(Some(jobs)), thread: Mutex::new(Some(thread)) })
    }

    fn send(&self, job: Job) -> fovea_nn::Result<()> {
        let guard = self.jobs.lock().expect("MPI job queue lock");
        let jobs = guard.as_ref().ok_or_else(|| transport_error("the MPI thread has stopped"))?;
        jobs.send(job).map_err(|_| transport_error("the MPI thread has stopped"))
    }

    /// Ends every process of the job (`MPI_Abort`).
    pub(crate) fn abort(&self, code: i32) -> ! {
        let _ = self.send(Job::Abort(code));
        // The MPI thread takes the process down; should it be gone already, exit here.
        std::thread::sleep(std::time::Duration::from_secs(5));
        std::process::exit(code)
    }
}

fn transport_error(msg: &str) -> fovea_nn::Error {
    fovea_nn::Error::Config(format!("MPI transport: {msg}"))
}

fn answer<T>(reply: Receiver<T>) -> fovea_nn::Result<T> {
    reply.recv().map_err(|_| transport_error("the MPI thread stopped during a collective"))
}

/// The MPI thread: initializes MPI, answers requests until every sender is gone, then
/// finalizes (dropping the universe).
fn serve(inbox: Receiver<Job>, ready: Sender<Result<(usize, usize), Error>>) {
    let Some((universe, _level)) = mpi::initialize_with_threading(Threading::Funneled) else {
        let _ = ready.send(Err(Error::AlreadyInitialized));
        return;
    };
    let world = universe.world();
    let _ = ready.send(Ok((world.rank() as usize, world.size() as usize)));
    let root = world.process_at_rank(0);
    for job in inbox {
        // A requester that went away (its thread failed) no longer needs the answer, but the
        // collective itself has run, so the replicas stay in step.
        match job {
            Job::SumF32(values, reply) => {
                let mut sum = vec![0f32; values.len()];
                world.all_reduce_into(&values[..], &mut sum[..], SystemOperation::sum());
                let _ = reply.send(sum);
            }
            Job::SumF64(values, reply) => {
                let mut sum = vec![0f64; values.len()];
                world.all_reduce_into(&values[..], &mut sum[..], SystemOperation::sum());
                let _ = reply.send(sum);
            }
            Job::BroadcastF32(mut values, reply) => {
                root.broadcast_into(&mut values[..]);
                let _ = reply.send(values);
            }
            Job::BroadcastU64(mut value, reply) => {
                root.broadcast_into(&mut value);
                let _ = reply.send(value);
            }
            Job::Abort(code) => world.abort(code),
        }
    }
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world
    }

    fn start_all_reduce_sum_f32(&self, values: Vec<f32>) -> fovea_nn::Result<PendingSum> {
        let (reply, answer_at) = channel();
        self.send(Job::SumF32(values, reply))?;
        Ok(PendingSum::new(move || answer(answer_at)))
    }

    fn all_reduce_sum_f64(&self, values: Vec<f64>) -> fovea_nn::Result<Vec<f64>> {
        let (reply, answer_at) = channel();
        self.send(Job::SumF64(values, reply))?;
        answer(answer_at)
    }

    fn broadcast_f32(&self, values: Vec<f32>) -> fovea_nn::Result<Vec<f32>> {
        let (reply, answer_at) = channel();
        self.send(Job::BroadcastF32(values, reply))?;
        answer(answer_at)
    }

    fn broadcast_u64(&self, value: u64) -> fovea_nn::Result<u64> {
        let (reply, answer_at) = channel();
        self.send(Job::BroadcastU64(value, reply))?;
        answer(answer_at)
    }
}

impl Drop for MpiCollective {
    fn drop(&mut self) {
        // Closing the queue ends the MPI thread, which finalizes MPI on its way out.
        self.jobs.lock().expect("MPI job queue lock").take();
        if let Some(thread) = self.thread.lock().expect("MPI thread lock").take() {
            let _ = thread.join();
        }
    }
}
