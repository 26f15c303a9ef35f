//! Parameter budgets: a model rebuilt from a config it did not write itself (a JSON spec, a
//! model file, a Keras config) may declare any sizes, and `units: 1000000000` would otherwise
//! abort the process in weight allocation. Every weight is created through
//! [`LayerBase::add_weight`](crate::layer::LayerBase::add_weight), which charges its element
//! count to the budgets in force on this thread *before* sampling anything.
//!
//! Two budgets are used:
//! - building from a config is limited to [`max_params`] parameters ([`DEFAULT_MAX_PARAMS`],
//!   2^31 — 8 GiB of f32 weights — unless [`ENV_VAR`] says otherwise);
//! - loading a model file is limited to the number of values the file stores, so an
//!   architecture that declares more than the file holds is refused before it is built.
//!
//! Whatever the budget, a weight whose size overflows or exceeds `isize::MAX` bytes is a
//! `Config` error rather than a capacity-overflow panic.
//!
//! ```
//! use fovea_nn::budget::with_param_budget;
//! use fovea_nn::layers::Dense;
//! use fovea_nn::model::Sequential;
//!
//! let err = with_param_budget(1000, "the test's limit", || {
//!     let m = Sequential::with_input_shape(&[100]);
//!     m.add(Dense::new(1_000_000_000))?;
//!     m.build_for(&[100])
//! })
//! .unwrap_err();
//! assert!(err.to_string().contains("dense/kernel: shape [100, 1000000000]"), "{err}");
//! ```

use crate::{Error, Result};
use std::cell::RefCell;

/// The environment variable that overrides [`DEFAULT_MAX_PARAMS`]: a positive whole number of
/// parameters (underscores allowed, e.g. `4_000_000_000`).
pub const ENV_VAR: &str = "FOVEA_MAX_PARAMS";

/// The most parameters a model built from a config may have when [`ENV_VAR`] is unset: 2^31,
/// 8 GiB of f32 weights — ten times VGG-16, far below what a typo such as
/// `units: 1000000000` asks for.
pub const DEFAULT_MAX_PARAMS: u64 = 1 << 31;

struct Budget {
    limit: u64,
    used: u64,
    /// What the limit is, for messages: "the limit for models built from a config (...)".
    what: String,
}

thread_local! {
    /// A stack: a model file's budget encloses the config limit of the models it rebuilds.
    static BUDGETS: RefCell<Vec<Budget>> = const { RefCell::new(Vec::new()) };
}

/// The parameter limit for models built from a config: [`ENV_VAR`] when set, else
/// [`DEFAULT_MAX_PARAMS`].
///
/// # Errors
/// `Config` when the variable is set but is not a positive whole number.
pub fn max_params() -> Result<u64> {
    match std::env::var(ENV_VAR) {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_MAX_PARAMS),
        Ok(v) => parse_max_params(&v),
        Err(std::env::VarError::NotUnicode(v)) => parse_max_params(&v.to_string_lossy()),
    }
}

fn parse_max_params(v: &str) -> Result<u64> {
    v.trim()
        .replace('_', "")
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| Error::Config(format!("{ENV_VAR}: expected a positive whole number of parameters such as 2147483648, got {v:?}")))
}

/// Runs `f` with at most `limit` parameters available to the weights it creates on this
/// thread (on top of any enclosing budget); `what` names the limit in the error a weight that
/// does not fit gets.
///
/// # Errors
/// Those of `f`, including `Config` from a weight past the limit.
pub fn with_param_budget<R>(limit: u64, what: &str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            BUDGETS.with(|b| b.borrow_mut().pop());
        }
    }
    BUDGETS.with(|b| b.borrow_mut().push(Budget { limit, used: 0, what: what.to_string() }));
    let _pop = Pop;
    f()
}

/// [`with_param_budget`] with [`max_params`]: what every model built from a config runs under.
///
/// # Errors
/// As [`max_params`] and [`with_param_budget`].
pub fn with_config_limit<R>(f: impl FnOnce() -> Result<R>) -> Result<R> {
    let limit = max_params()?;
    with_param_budget(limit, &format!("the limit of {limit} parameters for a model built from a config (set {ENV_VAR} to raise it)"), f)
}

/// Charges a new weight `name` of `shape` (f32) to every budget in force, before anything is
/// allocated for it.
///
/// # Errors
/// `Config` naming the weight and its shape when its size overflows, exceeds `isize::MAX`
/// bytes, or does not fit a budget.
pub(crate) fn charge(name: &str, shape: &[usize]) -> Result<()> {
    let n = fovea_core::checked_bytes(shape, std::mem::size_of::<f32>())
        .map(|_| fovea_core::checked_numel(shape).expect("checked_bytes checked the product"))
        .ok_or_else(|| Error::Config(format!("{name}: shape {shape:?} is too large to allocate (its size overflows)")))?;
    BUDGETS.with(|b| {
        let mut budgets = b.borrow_mut();
        for budget in budgets.iter() {
            if budget.used.saturating_add(n as u64) > budget.limit {
                return Err(Error::Config(format!(
                    "{name}: shape {shape:?} ({n} parameters) would bring the model to {} parameters, past {}",
                    budget.used.saturating_add(n as u64),
                    budget.what
                )));
            }
        }
        for budget in budgets.iter_mut() {
            budget.used += n as u64;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_parses() {
        assert_eq!(parse_max_params("4_000_000_000").unwrap(), 4_000_000_000);
        assert_eq!(parse_max_params(" 12 ").unwrap(), 12);
        let e = parse_max_params("8GiB").unwrap_err().to_string();
        assert!(e.contains("FOVEA_MAX_PARAMS: expected a positive whole number") && e.contains("\"8GiB\""), "{e}");
        assert!(parse_max_params("0").is_err());
    }

    #[test]
    fn budgets_nest_and_pop() {
        with_param_budget(10, "outer", || {
            charge("a", &[2, 3])?;
            let e = with_param_budget(100, "inner", || charge("b", &[5])).unwrap_err().to_string();
            assert!(e.contains("b: shape [5] (5 parameters) would bring the model to 11 parameters, past outer"), "{e}");
            charge("c", &[4])
        })
        .unwrap();
        // Nothing in force any more: only the allocation limit applies.
        charge("free", &[1 << 20]).unwrap();
        let e = charge("w", &[1 << 40, 1 << 30]).unwrap_err().to_string();
        assert!(e.contains("w: shape [1099511627776, 1073741824] is too large to allocate"), "{e}");
        let e = charge("w", &[1 << 62]).unwrap_err().to_string();
        assert!(e.contains("too large to allocate"), "{e}");
    }
}
