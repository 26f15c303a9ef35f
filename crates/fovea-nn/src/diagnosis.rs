//! Error analysis as the seeds' practice chapter does it: the errors of human-level
//! performance, the training set, a held-out part of the training distribution ("train-dev"),
//! the dev set and the test set side by side, where each gap between neighbours names a
//! problem: avoidable bias, variance, data mismatch, or a dev set the tuning has overfitted.
//!
//! ```
//! use fovea_nn::diagnosis::{ErrorAnalysis, Problem};
//! // The seed's "high variance" example: 1.5% training error, 30% on train-dev.
//! let a = ErrorAnalysis { human: 1.0, train: 1.5, train_dev: Some(30.0), dev: Some(31.0), test: None };
//! assert_eq!(a.problems(5.0), vec![Problem::Variance]);
//! ```

use std::fmt;

/// One row per stage, errors in one unit throughout (percent or fraction). Stages not measured
/// are `None`: without a train-dev set, variance and mismatch show as one gap (training ↔ dev).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorAnalysis {
    /// Human-level (or best achievable) error, the proxy for the Bayes error.
    pub human: f64,
    /// Error on the training set.
    pub train: f64,
    /// Error on "train-dev": held-out examples from the training distribution.
    pub train_dev: Option<f64>,
    /// Error on the dev (validation) set, drawn from the target distribution.
    pub dev: Option<f64>,
    /// Error on the test set, from the same distribution as dev.
    pub test: Option<f64>,
}

/// What a gap between two neighbouring errors means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Human-level ↔ training: the model underfits.
    AvoidableBias,
    /// Training ↔ train-dev (or ↔ dev without train-dev): the model does not generalize.
    Variance,
    /// Train-dev ↔ dev: the target distribution differs from the training one.
    DataMismatch,
    /// Dev ↔ test: the choices tuned on the dev set do not carry over.
    DevOverfitting,
}

impl Problem {
    /// The chapter's remedies, in the order it suggests trying them.
    pub fn remedies(self) -> &'static str {
        match self {
            Problem::AvoidableBias => "a bigger model, longer training or a better optimizer, another architecture",
            Problem::Variance => "more data, regularization (L2, dropout, batch norm), data augmentation, a smaller model",
            Problem::DataMismatch => "make the training data more like the target (collect or synthesize it), then analyse the dev errors",
            Problem::DevOverfitting => "a bigger dev set (merge dev and test, shuffle and split again)",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Problem::AvoidableBias => "avoidable bias",
            Problem::Variance => "variance",
            Problem::DataMismatch => "data mismatch",
            Problem::DevOverfitting => "overfitting the dev set",
        })
    }
}

/// A gap between two measured stages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    /// The stages it lies between.
    pub between: (&'static str, &'static str),
    /// The later error minus the earlier one.
    pub size: f64,
    /// What it means.
    pub problem: Problem,
}

impl ErrorAnalysis {
    /// The gaps between neighbouring measured stages, in the table's order.
    pub fn gaps(&self) -> Vec<Gap> {
        let mut gaps = vec![Gap { between: ("human", "train"), size: self.train - self.human, problem: Problem::AvoidableBias }];
        let mut last = ("train", self.train);
        if let Some(td) = self.train_dev {
            gaps.push(Gap { between: ("train", "train-dev"), size: td - self.train, problem: Problem::Variance });
            last = ("train-dev", td);
        }
        if let Some(dev) = self.dev {
            let problem = if self.train_dev.is_some() { Problem::DataMismatch } else { Problem::Variance };
            gaps.push(Gap { between: (last.0, "dev"), size: dev - last.1, problem });
            if let Some(test) = self.test {
                gaps.push(Gap { between: ("dev", "test"), size: test - dev, problem: Problem::DevOverfitting });
            }
        }
        gaps
    }

    /// The problems whose gap exceeds `tolerance`, the largest gap first.
    pub fn problems(&self, tolerance: f64) -> Vec<Problem> {
        let mut gaps: Vec<Gap> = self.gaps().into_iter().filter(|g| g.size > tolerance).collect();
        gaps.sort_by(|a, b| b.size.total_cmp(&a.size));
        gaps.into_iter().map(|g| g.problem).collect()
    }
}

/// The chapter's table: each stage's error, then each gap and what it means.
impl fmt::Display for ErrorAnalysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stages = [
            ("human", Some(self.human)),
            ("train", Some(self.train)),
            ("train-dev", self.train_dev),
            ("dev", self.dev),
            ("test", self.test),
        ];
        for (name, error) in stages {
            if let Some(e) = error {
                writeln!(f, "{name:<10} {e:>8.2}")?;
            }
        }
        for g in self.gaps() {
            writeln!(f, "{:<21} {:>+8.2}  {}", format!("{} -> {}", g.between.0, g.between.1), g.size, g.problem)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds' worked examples (SPEC §2.1 row 48), human-level error 1%, completed with the
    /// stages the text leaves out at values that add no gap of their own.
    #[test]
    fn the_seed_examples_get_the_seed_diagnoses() {
        let row =
            |train, train_dev, dev, test| ErrorAnalysis { human: 1.0, train, train_dev: Some(train_dev), dev: Some(dev), test: Some(test) };
        let cases = [
            (row(15.0, 16.0, 16.5, 17.0), vec![Problem::AvoidableBias]),
            (row(1.5, 30.0, 31.0, 31.5), vec![Problem::Variance]),
            (row(20.0, 40.0, 41.0, 41.5), vec![Problem::Variance, Problem::AvoidableBias]),
            (row(1.5, 2.0, 15.0, 15.5), vec![Problem::DataMismatch]),
            (row(1.5, 1.8, 2.0, 15.0), vec![Problem::DevOverfitting]),
        ];
        for (analysis, expected) in cases {
            assert_eq!(analysis.problems(2.0), expected, "{analysis}");
        }
    }

    #[test]
    fn without_train_dev_the_dev_gap_is_variance() {
        let a = ErrorAnalysis { human: 0.5, train: 1.0, train_dev: None, dev: Some(11.0), test: None };
        let gaps = a.gaps();
        assert_eq!(gaps.len(), 2);
        assert_eq!((gaps[1].between, gaps[1].problem), (("train", "dev"), Problem::Variance));
        assert!((gaps[1].size - 10.0).abs() < 1e-12);
        assert_eq!(a.problems(1.0), vec![Problem::Variance]);
        let table = a.to_string();
        assert!(table.contains("train -> dev") && table.contains("+10.00  variance") && !table.contains("test"), "{table}");
        assert!(Problem::Variance.remedies().contains("regularization"));
    }
}
