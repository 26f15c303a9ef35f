//! Variables: named, shared, mutable holders of a tensor that optimizers update.

use crate::{Error, Result, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// A named tensor that persists across steps (`tf.Variable`). Cloning shares it.
///
/// [`Variable::value`] returns the current value as a leaf tensor that requires a gradient when
/// the variable is trainable; use it in the forward pass and look its gradient up by that tensor.
#[derive(Clone)]
pub struct Variable(Arc<VarInner>);

struct VarInner {
    name: String,
    trainable: AtomicBool,
    value: RwLock<Tensor>,
    constraint: RwLock<Option<Constraint>>,
}

/// A projection an optimizer applies to a variable's value after each update (Keras's
/// `variable.constraint`: max-norm, non-negativity, ...).
pub type Constraint = Arc<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;

impl Variable {
    /// A variable holding `value`.
    ///
    /// # Errors
    /// `DTypeMismatch` when `trainable` is asked of a non-float value.
    pub fn new(name: impl Into<String>, value: Tensor, trainable: bool) -> Result<Self> {
        let value = value.with_requires_grad(trainable)?;
        Ok(Variable(Arc::new(VarInner {
            name: name.into(),
            trainable: AtomicBool::new(trainable),
            value: RwLock::new(value),
            constraint: RwLock::new(None),
        })))
    }

    /// The name (Keras style, e.g. `conv2d_1/kernel`).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Whether optimizers update this variable.
    pub fn trainable(&self) -> bool {
        self.0.trainable.load(Ordering::SeqCst)
    }

    /// Freezes (`false`) or unfreezes the variable.
    ///
    /// # Errors
    /// `DTypeMismatch` when making a non-float variable trainable.
    pub fn set_trainable(&self, trainable: bool) -> Result<()> {
        let mut v = self.0.value.write().expect("variable lock poisoned");
        *v = v.with_requires_grad(trainable)?;
        self.0.trainable.store(trainable, Ordering::SeqCst);
        Ok(())
    }

    /// Sets (or with `None` removes) the constraint optimizers apply after each update.
    pub fn set_constraint(&self, constraint: Option<Constraint>) {
        *self.0.constraint.write().unwrap_or_else(|e| e.into_inner()) = constraint;
    }

    /// The constraint optimizers apply after each update, if any.
    pub fn constraint(&self) -> Option<Constraint> {
        self.0.constraint.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current value (the same tensor, and id, until the next assignment).
    pub fn value(&self) -> Tensor {
        self.0.value.read().expect("variable lock poisoned").clone()
    }

    /// Replaces the value with one of the same shape and dtype.
    ///
    /// # Errors
    /// `ShapeMismatch` / `DTypeMismatch` naming the variable when the new value differs.
    pub fn assign(&self, value: &Tensor) -> Result<()> {
        let mut v = self.0.value.write().expect("variable lock poisoned");
        if value.shape() != v.shape() {
            return Err(Error::ShapeMismatch {
                op: "assign",
                expected: format!("{} for variable {}", v.shape(), self.name()),
                got: value.shape().to_string(),
            });
        }
        if value.dtype() != v.dtype() {
            return Err(Error::dtype("assign", format!("{} for variable {}", v.dtype(), self.name()), value.dtype()));
        }
        *v = value.to(v.device())?.detach().with_requires_grad(self.trainable())?;
        Ok(())
    }

    /// Moves the variable's value to `device` (later assignments keep it there).
    ///
    /// # Errors
    /// `DeviceUnavailable`, or the backend's error when the copy fails; the variable then keeps
    /// its value where it was.
    pub fn set_device(&self, device: crate::Device) -> Result<()> {
        let mut v = self.0.value.write().expect("variable lock poisoned");
        *v = v.to(device)?.detach().with_requires_grad(self.trainable())?;
        Ok(())
    }

    /// `self -= delta`.
    ///
    /// # Errors
    /// As [`Variable::assign`].
    pub fn assign_sub(&self, delta: &Tensor) -> Result<()> {
        let new = crate::no_grad(|| self.value().sub(delta))?;
        self.assign(&new)
    }

    /// The value behind its write lock, for [`crate::ops::optim::apply_update`], which writes
    /// into it in place when nothing else holds it.
    pub(crate) fn value_mut(&self) -> std::sync::RwLockWriteGuard<'_, Tensor> {
        self.0.value.write().expect("variable lock poisoned")
    }
}

impl std::fmt::Debug for Variable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.value();
        write!(f, "Variable(name={:?}, shape={}, dtype={}, trainable={})", self.name(), v.shape(), v.dtype(), self.trainable())
    }
}
