//! Keras-style unique layer names: the first `Dense` is `dense`, the next `dense_1`, ...

use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    /// Name counters of this thread: models are built on one thread, and per-thread counters
    /// keep concurrently built models (and test threads) from renumbering each other.
    static COUNTERS: RefCell<HashMap<String, usize>> = RefCell::new(HashMap::new());
}

/// A fresh name from a base (`dense`, `conv2d`, ...), unique on this thread until
/// [`clear_session`] (Keras's `backend.clear_session()`).
pub fn unique_name(base: &str) -> String {
    COUNTERS.with(|c| {
        let mut counters = c.borrow_mut();
        let n = counters.entry(base.to_string()).or_insert(0);
        let name = if *n == 0 { base.to_string() } else { format!("{base}_{n}") };
        *n += 1;
        name
    })
}

/// Resets the name counters, so the next `Dense` is called `dense` again.
pub fn clear_session() {
    COUNTERS.with(|c| c.borrow_mut().clear());
}

/// Keras's snake_case of a class name: `Conv2D` → `conv2d`, `BatchNormalization` →
/// `batch_normalization`, `MaxPooling2D` → `max_pooling2d`.
pub fn snake_case(class_name: &str) -> String {
    let chars: Vec<char> = class_name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_matches_keras() {
        assert_eq!(snake_case("Conv2D"), "conv2d");
        assert_eq!(snake_case("BatchNormalization"), "batch_normalization");
        assert_eq!(snake_case("MaxPooling2D"), "max_pooling2d");
        assert_eq!(snake_case("GlobalAveragePooling2D"), "global_average_pooling2d");
        assert_eq!(snake_case("Dense"), "dense");
        assert_eq!(snake_case("ReLU"), "re_lu");
        assert_eq!(snake_case("PReLU"), "p_re_lu");
    }

    #[test]
    fn names_count_per_base() {
        let base = "names_count_per_base_test";
        assert_eq!(unique_name(base), base);
        assert_eq!(unique_name(base), format!("{base}_1"));
        assert_eq!(unique_name(base), format!("{base}_2"));
    }
}
