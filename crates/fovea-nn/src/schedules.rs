//! Learning-rate schedules with Keras's formulas, evaluated at the optimizer's step count.

use serde::{Deserialize, Serialize};

/// A learning rate: a constant or a function of the step (`keras.optimizers.schedules`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class_name", rename_all = "snake_case")]
pub enum LearningRate {
    /// A fixed rate.
    Constant {
        /// The rate.
        value: f64,
    },
    /// `initial · rate^(step / decay_steps)`, the exponent floored when `staircase`.
    ExponentialDecay {
        /// Rate at step 0.
        initial_learning_rate: f64,
        /// Steps per decay period.
        decay_steps: f64,
        /// Factor per period.
        decay_rate: f64,
        /// Decay in discrete jumps.
        staircase: bool,
    },
    /// `values[i]` while `step <= boundaries[i]`, and the last value after the last boundary.
    PiecewiseConstantDecay {
        /// Step boundaries, increasing.
        boundaries: Vec<f64>,
        /// One more value than boundaries.
        values: Vec<f64>,
    },
    /// `initial / (1 + decay_rate · step / decay_steps)` (floored when `staircase`).
    InverseTimeDecay {
        /// Rate at step 0.
        initial_learning_rate: f64,
        /// Steps per unit of decay.
        decay_steps: f64,
        /// Decay per unit.
        decay_rate: f64,
        /// Decay in discrete jumps.
        staircase: bool,
    },
    /// Linear warmup from `initial` to `warmup_target` over `warmup_steps`, then cosine decay
    /// to `alpha ·` the peak over `decay_steps` (Keras 3's `CosineDecay`).
    CosineDecay {
        /// Rate at step 0.
        initial_learning_rate: f64,
        /// Steps of the cosine part.
        decay_steps: f64,
        /// Final fraction of the peak rate.
        alpha: f64,
        /// Peak rate after warmup (`None`: no warmup).
        warmup_target: Option<f64>,
        /// Steps of the linear warmup.
        warmup_steps: f64,
    },
    /// `(initial − end) · (1 − step / decay_steps)^power + end`, the step clipped at
    /// `decay_steps`; with `cycle`, `decay_steps` grows to the next multiple of itself past the
    /// step instead (Keras's `PolynomialDecay`; `power` 1 is linear decay).
    PolynomialDecay {
        /// Rate at step 0.
        initial_learning_rate: f64,
        /// Steps to reach the end rate.
        decay_steps: f64,
        /// The rate at the end of the decay.
        end_learning_rate: f64,
        /// The polynomial's power.
        power: f64,
        /// Restart the decay every `decay_steps` (from a rate that decays less each time).
        cycle: bool,
    },
}

impl From<f64> for LearningRate {
    fn from(value: f64) -> Self {
        LearningRate::Constant { value }
    }
}

impl LearningRate {
    /// The rate at `step` (0-based count of updates already applied).
    pub fn at(&self, step: u64) -> f64 {
        let s = step as f64;
        match self {
            LearningRate::Constant { value } => *value,
            LearningRate::ExponentialDecay { initial_learning_rate, decay_steps, decay_rate, staircase } => {
                let p = s / decay_steps;
                initial_learning_rate * decay_rate.powf(if *staircase { p.floor() } else { p })
            }
            LearningRate::PiecewiseConstantDecay { boundaries, values } => {
                let i = boundaries.iter().position(|&b| s <= b).unwrap_or(boundaries.len());
                values[i.min(values.len() - 1)]
            }
            LearningRate::InverseTimeDecay { initial_learning_rate, decay_steps, decay_rate, staircase } => {
                let p = s / decay_steps;
                initial_learning_rate / (1.0 + decay_rate * if *staircase { p.floor() } else { p })
            }
            LearningRate::CosineDecay { initial_learning_rate, decay_steps, alpha, warmup_target, warmup_steps } => {
                let peak = warmup_target.unwrap_or(*initial_learning_rate);
                if warmup_target.is_some() && s < *warmup_steps {
                    return initial_learning_rate + (peak - initial_learning_rate) * s / warmup_steps;
                }
                let t = ((s - if warmup_target.is_some() { *warmup_steps } else { 0.0 }) / decay_steps).clamp(0.0, 1.0);
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                peak * ((1.0 - alpha) * cosine + alpha)
            }
            LearningRate::PolynomialDecay { initial_learning_rate, decay_steps, end_learning_rate, power, cycle } => {
                let (steps, s) = if *cycle {
                    // Keras: step 0 counts as the first period.
                    let periods = if s == 0.0 { 1.0 } else { (s / decay_steps).ceil() };
                    (decay_steps * periods, s)
                } else {
                    (*decay_steps, s.min(*decay_steps))
                };
                (initial_learning_rate - end_learning_rate) * (1.0 - s / steps).powf(*power) + end_learning_rate
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_keras() {
        let e = LearningRate::ExponentialDecay { initial_learning_rate: 0.1, decay_steps: 10.0, decay_rate: 0.5, staircase: false };
        assert!((e.at(10) - 0.05).abs() < 1e-12 && (e.at(5) - 0.1 * 0.5f64.sqrt()).abs() < 1e-12);
        let st = LearningRate::ExponentialDecay { initial_learning_rate: 0.1, decay_steps: 10.0, decay_rate: 0.5, staircase: true };
        assert_eq!(st.at(19), 0.05);
        // SPEC §2.1 #18: drop ×10 at 33% and 66% of 300 steps.
        let p = LearningRate::PiecewiseConstantDecay { boundaries: vec![100.0, 200.0], values: vec![1.0, 0.1, 0.01] };
        assert_eq!((p.at(0), p.at(100), p.at(101), p.at(200), p.at(201)), (1.0, 1.0, 0.1, 0.1, 0.01));
        let i = LearningRate::InverseTimeDecay { initial_learning_rate: 1.0, decay_steps: 1.0, decay_rate: 0.5, staircase: false };
        assert_eq!(i.at(2), 0.5);
        let c = LearningRate::CosineDecay {
            initial_learning_rate: 0.0,
            decay_steps: 100.0,
            alpha: 0.1,
            warmup_target: Some(1.0),
            warmup_steps: 10.0,
        };
        assert_eq!(c.at(5), 0.5);
        assert!((c.at(10) - 1.0).abs() < 1e-12 && (c.at(60) - 0.55).abs() < 1e-12 && (c.at(500) - 0.1).abs() < 1e-12);
    }

    /// Values from `keras.optimizers.schedules.PolynomialDecay` (TensorFlow 2.21), written by
    /// `tools/fixtures/gen_schedule_fixtures.py`.
    #[test]
    fn polynomial_decay_matches_keras() {
        let cases: serde_json::Value = serde_json::from_str(include_str!("../tests/fixtures/polynomial_decay.json")).unwrap();
        let cases = cases.as_array().unwrap();
        assert!(cases.len() >= 4);
        for case in cases {
            let schedule = LearningRate::PolynomialDecay {
                initial_learning_rate: case["initial_learning_rate"].as_f64().unwrap(),
                decay_steps: case["decay_steps"].as_f64().unwrap(),
                end_learning_rate: case["end_learning_rate"].as_f64().unwrap(),
                power: case["power"].as_f64().unwrap(),
                cycle: case["cycle"].as_bool().unwrap(),
            };
            for (step, want) in case["values"].as_array().unwrap().iter().enumerate() {
                let (got, want) = (schedule.at(step as u64), want.as_f64().unwrap());
                assert!((got - want).abs() <= 1e-6 * want.abs().max(1e-3), "{case}: step {step}: {got} vs Keras {want}");
            }
        }
    }
}
