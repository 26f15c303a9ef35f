//! The model zoo (`keras.applications` and the classic architectures of the seeds).

mod lenet;

pub use lenet::lenet5;
