//! `train_test_split` with scikit-learn's semantics: the test size is a fraction (rounded up)
//! or a count, the rows are shuffled with a seed, and a stratified split keeps each class's
//! share in both parts (sklearn's `StratifiedShuffleSplit` allocation, largest remainders first).

use crate::{Error, Result};
use fovea_core::random::Rng;
use fovea_core::{DType, Tensor};

const OP: &str = "train_test_split";

/// How much of the data goes to the test part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TestSize {
    /// A fraction in (0, 1); the test part has `ceil(fraction * n)` rows.
    Fraction(f64),
    /// An exact number of rows, in `1..n`.
    Count(usize),
}

/// The four parts, in sklearn's order: `(x_train, x_test, y_train, y_test)`.
pub type Parts = (Tensor, Tensor, Tensor, Tensor);

fn bad(detail: impl Into<String>) -> Error {
    Error::format(OP, detail)
}

/// The number of test rows for `n` samples.
///
/// # Errors
/// `Format` for a fraction outside (0, 1), a count outside `1..n`, or an empty train part.
pub fn test_count(test_size: TestSize, n: usize) -> Result<usize> {
    let n_test = match test_size {
        TestSize::Fraction(f) if f > 0.0 && f < 1.0 => (f * n as f64).ceil() as usize,
        TestSize::Fraction(f) => return Err(bad(format!("test_size={f} should be a fraction in (0, 1) or a count in 1..{n}"))),
        TestSize::Count(c) if c >= 1 && c < n => c,
        TestSize::Count(c) => {
            return Err(bad(format!("test_size={c} should be a count in 1..{n} (the number of samples) or a fraction in (0, 1)")))
        }
    };
    if n_test >= n {
        return Err(bad(format!("with n_samples={n} and test_size={test_size:?} the train part would be empty; lower test_size")));
    }
    Ok(n_test)
}

/// sklearn's `_approximate_mode`: splits `n_draws` across classes in proportion to `counts`,
/// flooring, then giving the leftover draws to the largest remainders (ties broken at random).
fn approximate_mode(counts: &[usize], n_draws: usize, rng: &mut Rng) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    let continuous: Vec<f64> = counts.iter().map(|&c| c as f64 * n_draws as f64 / total as f64).collect();
    let mut floored: Vec<usize> = continuous.iter().map(|c| c.floor() as usize).collect();
    let mut need = n_draws.saturating_sub(floored.iter().sum());
    let remainder: Vec<f64> = continuous.iter().zip(&floored).map(|(c, &f)| c - f as f64).collect();
    let mut values = remainder.clone();
    values.sort_by(|a, b| b.total_cmp(a));
    values.dedup();
    for v in values {
        if need == 0 {
            break;
        }
        let mut tied: Vec<usize> = (0..counts.len()).filter(|&i| remainder[i] == v).collect();
        rng.shuffle(&mut tied);
        for &i in tied.iter().take(need) {
            floored[i] += 1;
        }
        need -= tied.len().min(need);
    }
    floored
}

/// The integer class of every row of `y`, for stratification.
fn class_ids(y: &Tensor) -> Result<Vec<i64>> {
    if y.rank() != 1 {
        return Err(bad(format!("stratify needs 1-D integer labels, got shape {}", y.shape())));
    }
    match y.dtype() {
        DType::I64 => Ok(y.to_vec::<i64>()?),
        DType::I32 | DType::U8 | DType::Bool => Ok(y.cast(DType::I64)?.to_vec::<i64>()?),
        other => Err(bad(format!("stratify needs integer labels (int64, int32, uint8 or bool), got {other:?}"))),
    }
}

/// Row indices of the train and test parts.
///
/// # Errors
/// As [`train_test_split`].
pub fn split_indices(labels: Option<&[i64]>, n: usize, test_size: TestSize, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    let n_test = test_count(test_size, n)?;
    let n_train = n - n_test;
    let mut rng = Rng::new(seed);
    let Some(labels) = labels else {
        let mut perm: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut perm);
        let test = perm[..n_test].to_vec();
        return Ok((perm[n_test..].to_vec(), test));
    };
    let mut classes: Vec<i64> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let members: Vec<Vec<usize>> = classes.iter().map(|c| (0..n).filter(|&i| labels[i] == *c).collect()).collect();
    let counts: Vec<usize> = members.iter().map(Vec::len).collect();
    if let Some((c, _)) = classes.iter().zip(&counts).find(|(_, &k)| k < 2) {
        return Err(bad(format!(
            "the least populated class in y ({c}) has only 1 member, which is too few to stratify; every class needs at least 2"
        )));
    }
    for (part, size) in [("train", n_train), ("test", n_test)] {
        if size < classes.len() {
            return Err(bad(format!(
                "the {part} part has {size} rows, fewer than the {} classes, so it cannot hold every class",
                classes.len()
            )));
        }
    }
    let n_i = approximate_mode(&counts, n_train, &mut rng);
    let left: Vec<usize> = counts.iter().zip(&n_i).map(|(c, t)| c - t).collect();
    let t_i = approximate_mode(&left, n_test, &mut rng);
    let (mut train, mut test) = (Vec::with_capacity(n_train), Vec::with_capacity(n_test));
    for (k, rows) in members.iter().enumerate() {
        let mut rows = rows.clone();
        rng.shuffle(&mut rows);
        train.extend_from_slice(&rows[..n_i[k]]);
        test.extend_from_slice(&rows[n_i[k]..n_i[k] + t_i[k]]);
    }
    rng.shuffle(&mut train);
    rng.shuffle(&mut test);
    Ok((train, test))
}

/// Splits `x` and `y` (rows along axis 0) into shuffled train and test parts
/// (`sklearn.model_selection.train_test_split(x, y, test_size=.., random_state=seed,
/// stratify=y if stratify else None)`). The same seed always gives the same split.
///
/// With `stratify`, each class keeps its share: 60/40 labels split 0.3 give a test part with
/// two rows of the first class for every one of the second.
///
/// # Errors
/// `Format` when `x` and `y` disagree on the number of rows or are scalars; a test size that
/// leaves either part empty; with `stratify`, labels that are not 1-D integers, a class with a
/// single member, or a part with fewer rows than there are classes.
pub fn train_test_split(x: &Tensor, y: &Tensor, test_size: TestSize, seed: u64, stratify: bool) -> Result<Parts> {
    if x.rank() == 0 || y.rank() == 0 || x.dims()[0] != y.dims()[0] {
        return Err(bad(format!("x and y need the same number of rows (axis 0), got shapes {} and {}", x.shape(), y.shape())));
    }
    let n = x.dims()[0];
    let labels = if stratify { Some(class_ids(y)?) } else { None };
    let (train, test) = split_indices(labels.as_deref(), n, test_size, seed)?;
    let take = |t: &Tensor, rows: &[usize]| -> Result<Tensor> {
        let idx = Tensor::from_vec(rows.iter().map(|&r| r as i64).collect::<Vec<_>>(), vec![rows.len()], t.device())?;
        Ok(t.detach().index_select(0, &idx)?)
    };
    Ok((take(x, &train)?, take(x, &test)?, take(y, &train)?, take(y, &test)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::Device;

    fn data(labels: &[i64]) -> (Tensor, Tensor) {
        // Row i of x is [i, 10 i], so every row says which sample it is.
        let x: Vec<f32> = (0..labels.len()).flat_map(|i| [i as f32, 10.0 * i as f32]).collect();
        (
            Tensor::from_vec(x, vec![labels.len(), 2], Device::Cpu).unwrap(),
            Tensor::from_vec(labels.to_vec(), vec![labels.len()], Device::Cpu).unwrap(),
        )
    }

    #[test]
    fn stratified_split_keeps_class_shares_and_rows_together() {
        let labels: Vec<i64> = [0; 6].into_iter().chain([1; 4]).collect();
        let (x, y) = data(&labels);
        let (xtr, xte, ytr, yte) = train_test_split(&x, &y, TestSize::Fraction(0.3), 42, true).unwrap();
        assert_eq!((xtr.dims(), xte.dims()), (&[7, 2][..], &[3, 2][..]));
        // 7 train rows of shares 0.6/0.4 → 4.2/2.8 → 4 and 3 (largest remainder); 2 and 1 left.
        let count = |t: &Tensor, c: i64| t.to_vec::<i64>().unwrap().iter().filter(|&&l| l == c).count();
        assert_eq!((count(&ytr, 0), count(&ytr, 1), count(&yte, 0), count(&yte, 1)), (4, 3, 2, 1));
        let rows = xtr.to_vec::<f32>().unwrap();
        let mut seen: Vec<usize> = rows.chunks(2).map(|r| r[0] as usize).collect();
        for (r, l) in rows.chunks(2).zip(ytr.to_vec::<i64>().unwrap()) {
            assert_eq!((r[1], labels[r[0] as usize]), (10.0 * r[0], l));
        }
        seen.extend(xte.to_vec::<f32>().unwrap().chunks(2).map(|r| r[0] as usize));
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>(), "every row lands in exactly one part");
        // Reproducible per seed, and the seed matters.
        let again = train_test_split(&x, &y, TestSize::Fraction(0.3), 42, true).unwrap();
        assert_eq!(again.0.to_vec::<f32>().unwrap(), rows);
        let other: Vec<Vec<f32>> =
            (0..5).map(|s| train_test_split(&x, &y, TestSize::Fraction(0.3), s, true).unwrap().0.to_vec().unwrap()).collect();
        assert!(other.iter().any(|o| *o != rows));
    }

    #[test]
    fn fractions_round_up_and_counts_are_exact() {
        assert_eq!(test_count(TestSize::Fraction(0.25), 10).unwrap(), 3);
        assert_eq!(test_count(TestSize::Fraction(0.2), 10).unwrap(), 2);
        assert_eq!(test_count(TestSize::Count(4), 10).unwrap(), 4);
        let (x, y) = data(&[0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]);
        let (xtr, xte, _, yte) = train_test_split(&x, &y, TestSize::Count(4), 7, false).unwrap();
        assert_eq!((xtr.dims()[0], xte.dims()[0], yte.dims()[0]), (7, 4, 4));
    }

    #[test]
    fn bad_sizes_and_labels_say_why() {
        let (x, y) = data(&[0, 0, 1, 1, 2]);
        let e = |r: Result<Parts>| r.unwrap_err().to_string();
        assert!(e(train_test_split(&x, &y, TestSize::Fraction(1.0), 0, false)).contains("test_size=1 should be a fraction in (0, 1)"));
        assert!(e(train_test_split(&x, &y, TestSize::Count(5), 0, false)).contains("test_size=5 should be a count in 1..5"));
        assert!(e(train_test_split(&x, &y, TestSize::Fraction(0.99), 0, false)).contains("the train part would be empty"));
        assert!(e(train_test_split(&x, &y, TestSize::Count(2), 0, true)).contains("class in y (2) has only 1 member"));
        let (x, y) = data(&[0, 0, 1, 1, 2, 2]);
        let msg = e(train_test_split(&x, &y, TestSize::Count(2), 0, true));
        assert!(msg.starts_with("train_test_split: the test part has 2 rows, fewer than the 3 classes"), "{msg}");
        let y5 = Tensor::from_vec(vec![0i64; 5], vec![5], Device::Cpu).unwrap();
        assert!(e(train_test_split(&x, &y5, TestSize::Count(1), 0, false)).contains("got shapes [6, 2] and [5]"));
        let yf = y.cast(DType::F32).unwrap();
        assert!(e(train_test_split(&x, &yf, TestSize::Count(3), 0, true)).contains("stratify needs integer labels"));
    }
}
