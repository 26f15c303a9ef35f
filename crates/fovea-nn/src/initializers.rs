//! Weight initializers with Keras's names, defaults and fan rules.
//!
//! Fans follow Keras: a dense kernel `[in, out]` has fan_in = in and fan_out = out; a conv
//! kernel `[..., in, out]` multiplies both by the receptive field (the product of the leading
//! spatial sizes); a vector has fan_in = fan_out = its length.

use crate::{Error, Result};
use fovea_core::{random::Rng, Device, Tensor};
use serde::{Deserialize, Serialize};

/// Which fan a variance-scaling initializer divides by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FanMode {
    /// Inputs per unit.
    FanIn,
    /// Outputs per unit.
    FanOut,
    /// Their mean.
    FanAvg,
}

/// The distribution of a variance-scaling initializer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Normal truncated at two standard deviations (std corrected for the truncation).
    TruncatedNormal,
    /// Plain normal.
    UntruncatedNormal,
    /// Uniform on `[-limit, limit]` with the same variance.
    Uniform,
}

/// An initializer, serialised with Keras's snake_case names.
///
/// Deserialising accepts what Keras writes as well as Fovea's own form (see
/// [`Initializer::from_config`]), so every layer config benefits.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "class_name", rename_all = "snake_case")]
pub enum Initializer {
    /// Uniform on ±√(6 / (fan_in + fan_out)) — Keras's default for kernels.
    GlorotUniform,
    /// Truncated normal with std √(2 / (fan_in + fan_out)).
    GlorotNormal,
    /// Truncated normal with std √(2 / fan_in).
    HeNormal,
    /// Uniform on ±√(6 / fan_in).
    HeUniform,
    /// Truncated normal with std √(1 / fan_in).
    LecunNormal,
    /// Uniform on ±√(3 / fan_in).
    LecunUniform,
    /// Normal with the given mean and std (Keras default 0, 0.05).
    RandomNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        stddev: f64,
    },
    /// Uniform on `[minval, maxval)` (Keras default ±0.05).
    RandomUniform {
        /// Lower bound.
        minval: f64,
        /// Upper bound.
        maxval: f64,
    },
    /// Normal truncated at two standard deviations (Keras default 0, 0.05).
    TruncatedNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation before truncation.
        stddev: f64,
    },
    /// The general form behind Glorot, He and LeCun.
    VarianceScaling {
        /// Multiplier of the variance.
        scale: f64,
        /// Which fan to divide by.
        mode: FanMode,
        /// The sampling distribution.
        distribution: Distribution,
    },
    /// A (semi-)orthogonal matrix over the last axis, times `gain`.
    Orthogonal {
        /// Multiplier.
        gain: f64,
    },
    /// All zeros — Keras's default for biases.
    Zeros,
    /// All ones.
    Ones,
    /// Every element equal to `value`.
    Constant {
        /// The value.
        value: f64,
    },
}

/// Keras's correction so that a normal truncated at ±2σ has the requested std.
const TRUNCATION_STD: f64 = 0.879_625_661_034_239_8;

/// `(fan_in, fan_out)` of a weight shape, as Keras computes them.
pub fn fans(shape: &[usize]) -> (f64, f64) {
    match shape.len() {
        0 => (1.0, 1.0),
        1 => (shape[0] as f64, shape[0] as f64),
        n => {
            let receptive: usize = shape[..n - 2].iter().product();
            ((receptive * shape[n - 2]) as f64, (receptive * shape[n - 1]) as f64)
        }
    }
}

impl Initializer {
    /// Looks an initializer up by its Keras name (`"glorot_uniform"`, `"he_normal"`, ...),
    /// with Keras's default parameters.
    ///
    /// # Errors
    /// `Config` for an unknown name, listing the known ones.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "glorot_uniform" => Initializer::GlorotUniform,
            "glorot_normal" => Initializer::GlorotNormal,
            "he_normal" => Initializer::HeNormal,
            "he_uniform" => Initializer::HeUniform,
            "lecun_normal" => Initializer::LecunNormal,
            "lecun_uniform" => Initializer::LecunUniform,
            "random_normal" => Initializer::RandomNormal { mean: 0.0, stddev: 0.05 },
            "random_uniform" => Initializer::RandomUniform { minval: -0.05, maxval: 0.05 },
            "truncated_normal" => Initializer::TruncatedNormal { mean: 0.0, stddev: 0.05 },
            "uniform" => Initializer::RandomUniform { minval: -0.05, maxval: 0.05 },
            "normal" => Initializer::RandomNormal { mean: 0.0, stddev: 0.05 },
            "variance_scaling" => Initializer::VarianceScaling { scale: 1.0, mode: FanMode::FanIn, distribution: Distribution::TruncatedNormal },
            // Keras 3's class is `OrthogonalInitializer`.
            "orthogonal" | "orthogonal_initializer" => Initializer::Orthogonal { gain: 1.0 },
            "zeros" | "zero" => Initializer::Zeros,
            "ones" | "one" => Initializer::Ones,
            "constant" => Initializer::Constant { value: 0.0 },
            other => {
                return Err(Error::Config(format!(
                    "unknown initializer {other:?}; known: glorot_uniform, glorot_normal, he_normal, he_uniform, lecun_normal, lecun_uniform, random_normal, random_uniform, truncated_normal, variance_scaling, orthogonal, zeros, ones, constant (or their Keras class names, e.g. GlorotUniform)"
                )))
            }
        })
    }

    /// Reads an initializer in any form Keras or Fovea writes: a name (`"he_normal"`,
    /// `"HeNormal"`), Fovea's `{"class_name": "random_normal", "mean": 0.0, ...}`, or Keras's
    /// `{"class_name": "RandomNormal", "config": {"mean": 0.0, ...}}`. Parameters left out take
    /// Keras's defaults; `seed` is ignored because Fovea seeds each layer itself.
    ///
    /// # Errors
    /// `Config` for an unknown class, a parameter of the wrong type, or a value that is neither
    /// a string nor an object.
    pub fn from_config(v: &serde_json::Value) -> Result<Self> {
        use serde_json::Value;
        let (class, params) = match v {
            Value::String(s) => (s.as_str(), None),
            Value::Object(o) => {
                let class = o
                    .get("class_name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::Config(format!("initializer {v} has no \"class_name\"")))?;
                // Keras nests the parameters under "config"; Fovea writes them beside the class.
                (class, Some(o.get("config").and_then(Value::as_object).unwrap_or(o)))
            }
            other => {
                return Err(Error::Config(format!("expected an initializer name or {{\"class_name\", \"config\"}} object, got {other}")))
            }
        };
        let mut init = Self::from_name(&crate::names::snake_case(class))?;
        let Some(p) = params else { return Ok(init) };
        let num = |key: &str, default: f64| -> Result<f64> {
            match p.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(x) => x.as_f64().ok_or_else(|| Error::Config(format!("initializer {class}: {key:?} must be a number, got {x}"))),
            }
        };
        let text = |key: &str| -> Result<Option<String>> {
            match p.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(x) => Err(Error::Config(format!("initializer {class}: {key:?} must be a string, got {x}"))),
            }
        };
        match &mut init {
            Initializer::RandomNormal { mean, stddev } | Initializer::TruncatedNormal { mean, stddev } => {
                *mean = num("mean", *mean)?;
                *stddev = num("stddev", *stddev)?;
            }
            Initializer::RandomUniform { minval, maxval } => {
                *minval = num("minval", *minval)?;
                *maxval = num("maxval", *maxval)?;
            }
            Initializer::VarianceScaling { scale, mode, distribution } => {
                *scale = num("scale", *scale)?;
                if let Some(m) = text("mode")? {
                    *mode = serde_json::from_value(Value::String(m.clone()))
                        .map_err(|_| Error::Config(format!("initializer {class}: unknown mode {m:?}; known: fan_in, fan_out, fan_avg")))?;
                }
                if let Some(d) = text("distribution")? {
                    // Keras 2's "normal" meant the truncated normal (Keras 3 maps it the same way).
                    let d = if d == "normal" { "truncated_normal".to_string() } else { d };
                    *distribution = serde_json::from_value(Value::String(d.clone())).map_err(|_| {
                        Error::Config(format!(
                            "initializer {class}: unknown distribution {d:?}; known: truncated_normal, untruncated_normal, uniform"
                        ))
                    })?;
                }
            }
            Initializer::Orthogonal { gain } => *gain = num("gain", *gain)?,
            Initializer::Constant { value } => *value = num("value", *value)?,
            _ => {}
        }
        Ok(init)
    }

    /// The equivalent variance-scaling form, for the named families.
    fn as_variance_scaling(&self) -> Option<(f64, FanMode, Distribution)> {
        use Distribution::*;
        use FanMode::*;
        Some(match self {
            Initializer::GlorotUniform => (1.0, FanAvg, Uniform),
            Initializer::GlorotNormal => (1.0, FanAvg, TruncatedNormal),
            Initializer::HeNormal => (2.0, FanIn, TruncatedNormal),
            Initializer::HeUniform => (2.0, FanIn, Uniform),
            Initializer::LecunNormal => (1.0, FanIn, TruncatedNormal),
            Initializer::LecunUniform => (1.0, FanIn, Uniform),
            Initializer::VarianceScaling { scale, mode, distribution } => (*scale, *mode, *distribution),
            _ => return None,
        })
    }

    /// A new f32 tensor of `shape` drawn with `seed` (the same seed gives the same tensor).
    ///
    /// # Errors
    /// `Config` for invalid parameters (negative std, min > max, non-positive scale).
    pub fn sample(&self, shape: &[usize], seed: u64, device: Device) -> Result<Tensor> {
        if let Some((scale, mode, distribution)) = self.as_variance_scaling() {
            if scale <= 0.0 {
                return Err(Error::Config(format!("variance_scaling needs scale > 0, got {scale}")));
            }
            let (fan_in, fan_out) = fans(shape);
            let fan = match mode {
                FanMode::FanIn => fan_in,
                FanMode::FanOut => fan_out,
                FanMode::FanAvg => (fan_in + fan_out) / 2.0,
            };
            let variance = scale / fan.max(1.0);
            return Ok(match distribution {
                Distribution::TruncatedNormal => {
                    Tensor::truncated_normal(shape.to_vec(), 0.0, variance.sqrt() / TRUNCATION_STD, Some(seed), device)?
                }
                Distribution::UntruncatedNormal => Tensor::random_normal(shape.to_vec(), 0.0, variance.sqrt(), Some(seed), device)?,
                Distribution::Uniform => {
                    let limit = (3.0 * variance).sqrt();
                    Tensor::random_uniform(shape.to_vec(), -limit, limit, Some(seed), device)?
                }
            });
        }
        let shape_v = shape.to_vec();
        Ok(match self {
            Initializer::RandomNormal { mean, stddev } => Tensor::random_normal(shape_v, *mean, *stddev, Some(seed), device)?,
            Initializer::RandomUniform { minval, maxval } => Tensor::random_uniform(shape_v, *minval, *maxval, Some(seed), device)?,
            Initializer::TruncatedNormal { mean, stddev } => Tensor::truncated_normal(shape_v, *mean, *stddev, Some(seed), device)?,
            Initializer::Orthogonal { gain } => orthogonal(shape, *gain, seed, device)?,
            Initializer::Zeros => Tensor::zeros(shape_v, fovea_core::DType::F32, device)?,
            Initializer::Ones => Tensor::ones(shape_v, fovea_core::DType::F32, device)?,
            Initializer::Constant { value } => Tensor::full(shape_v, *value, fovea_core::DType::F32, device)?,
            _ => unreachable!("variance-scaling families handled above"),
        })
    }
}

impl<'de> Deserialize<'de> for Initializer {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        Initializer::from_config(&serde_json::Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// Keras's orthogonal initializer: flatten to `[rows, cols]` with cols = the last axis, take Q of
/// the QR decomposition of a normal matrix (signs fixed by R's diagonal), transpose if wide.
fn orthogonal(shape: &[usize], gain: f64, seed: u64, device: Device) -> Result<Tensor> {
    if shape.len() < 2 {
        return Err(Error::Config(format!("orthogonal needs a weight of rank >= 2, got shape {shape:?}")));
    }
    let cols = shape[shape.len() - 1];
    let rows: usize = shape[..shape.len() - 1].iter().product();
    let (m, n) = (rows.max(cols), rows.min(cols)); // QR of a tall m×n matrix
    let mut rng = Rng::new(seed);
    // Column-major tall matrix, orthonormalised by modified Gram–Schmidt in f64.
    let mut a: Vec<Vec<f64>> = (0..n).map(|_| (0..m).map(|_| rng.normal()).collect()).collect();
    for j in 0..n {
        let (done, rest) = a.split_at_mut(j);
        let col = &mut rest[0];
        for prev in done.iter() {
            let dot: f64 = col.iter().zip(prev).map(|(x, y)| x * y).sum();
            for (v, p) in col.iter_mut().zip(prev) {
                *v -= dot * p;
            }
        }
        let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
        // Gram–Schmidt's R has a positive diagonal, which is Keras's sign convention already.
        for v in col.iter_mut() {
            *v /= norm;
        }
    }
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            // Tall (rows >= cols): Q is rows×cols; wide: Qᵀ.
            let v = if rows >= cols { a[c][r] } else { a[r][c] };
            out[r * cols + c] = (gain * v) as f32;
        }
    }
    Ok(Tensor::from_vec(out, shape.to_vec(), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(t: &Tensor) -> (f64, f64, f64) {
        let v = t.to_vec::<f32>().unwrap();
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        let max = v.iter().map(|&x| (x as f64).abs()).fold(0.0, f64::max);
        (mean, var.sqrt(), max)
    }

    #[test]
    fn fans_follow_keras() {
        assert_eq!(fans(&[784, 10]), (784.0, 10.0));
        assert_eq!(fans(&[5, 5, 3, 10]), (75.0, 250.0));
        assert_eq!(fans(&[7]), (7.0, 7.0));
    }

    #[test]
    fn variance_scaling_families_have_the_right_spread() {
        let shape = [3, 3, 64, 128]; // fan_in 576, fan_out 1152
        let d = Device::Cpu;
        let (_, std, max) = stats(&Initializer::GlorotUniform.sample(&shape, 1, d).unwrap());
        let limit = (6.0f64 / (576.0 + 1152.0)).sqrt();
        assert!(max <= limit && (std - limit / 3f64.sqrt()).abs() < 0.02 * limit, "glorot_uniform std {std}");
        let (mean, std, max) = stats(&Initializer::HeNormal.sample(&shape, 2, d).unwrap());
        let target = (2.0f64 / 576.0).sqrt();
        assert!(mean.abs() < 0.01 * target * 10.0 && (std - target).abs() < 0.03 * target, "he_normal std {std} vs {target}");
        assert!(max <= 2.0 * target / TRUNCATION_STD + 1e-6);
        let (_, std, _) = stats(&Initializer::LecunUniform.sample(&shape, 3, d).unwrap());
        assert!((std - (1.0f64 / 576.0).sqrt()).abs() < 0.03 * (1.0f64 / 576.0).sqrt());
        // Same seed, same weights.
        assert_eq!(
            Initializer::GlorotNormal.sample(&shape, 9, d).unwrap().to_vec::<f32>().unwrap(),
            Initializer::GlorotNormal.sample(&shape, 9, d).unwrap().to_vec::<f32>().unwrap()
        );
    }

    #[test]
    fn orthogonal_is_orthonormal() {
        for shape in [[6usize, 4], [4, 6]] {
            let w = Initializer::Orthogonal { gain: 1.0 }.sample(&shape, 5, Device::Cpu).unwrap();
            // The smaller Gram matrix is the identity.
            let g = if shape[0] >= shape[1] { w.matmul_t(&w, true, false).unwrap() } else { w.matmul_t(&w, false, true).unwrap() };
            let n = shape[0].min(shape[1]);
            let eye = Tensor::eye(n, Device::Cpu).unwrap();
            fovea_core::testing::assert_tensor_close("gram", &g, &eye, 0.0, 1e-5);
        }
    }

    #[test]
    fn names_and_errors() {
        assert_eq!(Initializer::from_name("he_uniform").unwrap(), Initializer::HeUniform);
        let e = Initializer::from_name("xavier").unwrap_err().to_string();
        assert!(e.contains("unknown initializer \"xavier\"") && e.contains("glorot_uniform"), "{e}");
        let c = Initializer::Constant { value: 0.5 }.sample(&[2], 0, Device::Cpu).unwrap();
        assert_eq!(c.to_vec::<f32>().unwrap(), vec![0.5, 0.5]);
        let json = serde_json::to_string(&Initializer::HeNormal).unwrap();
        assert_eq!(json, r#"{"class_name":"he_normal"}"#);
        assert!(Initializer::Orthogonal { gain: 1.0 }.sample(&[3], 0, Device::Cpu).is_err());
    }

    #[test]
    fn serde_reads_keras_and_fovea_forms() {
        let read = |j: &str| serde_json::from_str::<Initializer>(j);
        // What Keras 3's `get_config` writes, module and registered_name included.
        let keras = r#"{"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null}"#;
        assert_eq!(read(keras).unwrap(), Initializer::GlorotUniform);
        assert_eq!(read(r#"{"class_name": "Zeros", "config": {}}"#).unwrap(), Initializer::Zeros);
        assert_eq!(
            read(r#"{"class_name": "RandomNormal", "config": {"mean": 0.5, "stddev": 2.0, "seed": 7}}"#).unwrap(),
            Initializer::RandomNormal { mean: 0.5, stddev: 2.0 }
        );
        assert_eq!(
            read(r#"{"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_out", "distribution": "normal"}}"#).unwrap(),
            Initializer::VarianceScaling { scale: 2.0, mode: FanMode::FanOut, distribution: Distribution::TruncatedNormal }
        );
        assert_eq!(
            read(r#"{"class_name": "OrthogonalInitializer", "config": {"gain": 3.0}}"#).unwrap(),
            Initializer::Orthogonal { gain: 3.0 }
        );
        assert_eq!(read(r#"{"class_name": "Constant", "config": {"value": 0.25}}"#).unwrap(), Initializer::Constant { value: 0.25 });
        // Plain names, lowercase or Keras class spelling.
        assert_eq!(read(r#""he_normal""#).unwrap(), Initializer::HeNormal);
        assert_eq!(read(r#""LecunUniform""#).unwrap(), Initializer::LecunUniform);
        // Fovea's own form still round-trips, with every parameterised variant.
        for init in [
            Initializer::TruncatedNormal { mean: 0.1, stddev: 0.2 },
            Initializer::RandomUniform { minval: -1.0, maxval: 2.0 },
            Initializer::VarianceScaling { scale: 0.5, mode: FanMode::FanAvg, distribution: Distribution::Uniform },
            Initializer::Constant { value: 3.0 },
            Initializer::Ones,
        ] {
            assert_eq!(read(&serde_json::to_string(&init).unwrap()).unwrap(), init);
        }
        let e = read(r#"{"class_name": "Identity", "config": {}}"#).unwrap_err().to_string();
        assert!(e.contains("unknown initializer \"identity\""), "{e}");
        let e = read(r#"{"class_name": "RandomNormal", "config": {"stddev": "big"}}"#).unwrap_err().to_string();
        assert!(e.contains("\"stddev\" must be a number"), "{e}");
    }
}
