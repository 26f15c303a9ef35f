//! Rebuilding the preprocessing layers from Keras 3 configs, and registering them with
//! fovea-nn so models holding them load like any other.
//!
//! Parsing is strict, as Keras's is: an unknown key is an error (Keras raises "Unrecognized
//! keyword arguments"), a required key (`height`, `scale`, `factor`, ...) must be present, and
//! an optional one may be absent or `null` and takes Keras's default.

use super::{
    CenterCrop, Coefficient, Factor, Normalization, RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation,
    RandomTranslation, RandomZoom, Rescaling, Resizing,
};
use fovea_nn::layer::LayerRef;
use fovea_nn::{Error, Result};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The Keras class names of the eleven preprocessing layers.
pub const CLASS_NAMES: [&str; 11] = [
    "Rescaling",
    "Normalization",
    "Resizing",
    "CenterCrop",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomBrightness",
];

/// Keys every Keras layer accepts; `name` and `trainable` are applied by fovea-nn's registry,
/// the input-shape hints are read by the model that holds the layer.
const BASE_KEYS: &[&str] = &["name", "trainable", "dtype", "batch_input_shape", "batch_shape", "input_shape"];

/// A layer config being read: checks its keys up front, then hands out typed entries.
struct Cfg<'a> {
    class: &'static str,
    map: &'a Map<String, Value>,
}

impl<'a> Cfg<'a> {
    /// Checks that `c` is an object whose keys are all among `keys` (plus the base keys and,
    /// for image layers, `data_format`), and that its dtype and data format are ones Fovea
    /// runs.
    fn new(class: &'static str, c: &'a Value, keys: &[&str], image: bool) -> Result<Self> {
        let map = c.as_object().ok_or_else(|| Error::Config(format!("{class} config: expected a JSON object, got {c}")))?;
        let known = |k: &str| keys.contains(&k) || BASE_KEYS.contains(&k) || (image && k == "data_format");
        if let Some(k) = map.keys().find(|k| !known(k)) {
            let mut expected: Vec<&str> = keys.iter().chain(BASE_KEYS).copied().collect();
            if image {
                expected.push("data_format");
            }
            return Err(Error::Config(format!("{class} config: unknown key {k:?} (expected some of {expected:?})")));
        }
        let cfg = Cfg { class, map };
        if let Some(f) = cfg.opt_str("data_format")? {
            if f != "channels_last" {
                return Err(cfg.bad("data_format", "\"channels_last\" (Fovea is channels-last throughout)", &json_str(f)));
            }
        }
        match map.get("dtype") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "float32" => {}
            Some(v @ Value::Object(o)) => {
                let name = o.get("config").and_then(|c| c.get("name")).and_then(Value::as_str);
                if name != Some("float32") {
                    return Err(cfg.bad("dtype", "the float32 policy", v));
                }
            }
            Some(v) => return Err(cfg.bad("dtype", "\"float32\"", v)),
        }
        Ok(cfg)
    }

    fn bad(&self, key: &str, expected: &str, got: &Value) -> Error {
        Error::Config(format!("{} config: expected {key:?} to be {expected}, got {got}", self.class))
    }

    /// The entry, `None` when absent or `null`.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn required(&self, key: &str) -> Result<&'a Value> {
        self.get(key).ok_or_else(|| Error::Config(format!("{} config: missing required key {key:?}", self.class)))
    }

    fn size(&self, key: &str) -> Result<usize> {
        let v = self.required(key)?;
        v.as_u64().filter(|&n| n > 0).map(|n| n as usize).ok_or_else(|| self.bad(key, "a positive integer", v))
    }

    fn f32_or(&self, key: &str, default: f32) -> Result<f32> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_f64().map(|x| x as f32).ok_or_else(|| self.bad(key, "a number", v)),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.bad(key, "true or false", v)),
        }
    }

    fn opt_str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| self.bad(key, "a string", v)),
        }
    }

    fn str_or(&self, key: &str, default: &'a str) -> Result<&'a str> {
        Ok(self.opt_str(key)?.unwrap_or(default))
    }

    fn seed(&self) -> Result<Option<u64>> {
        match self.get("seed") {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| self.bad("seed", "a non-negative integer or null", v)),
        }
    }

    fn factor(&self, key: &str) -> Result<Factor> {
        Factor::from_json(self.class, key, self.required(key)?)
    }

    fn opt_factor(&self, key: &str) -> Result<Option<Factor>> {
        self.get(key).map(|v| Factor::from_json(self.class, key, v)).transpose()
    }

    fn pair_or(&self, key: &str, default: (f32, f32)) -> Result<(f32, f32)> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.as_array().map(Vec::as_slice) {
                Some([a, b]) if a.is_number() && b.is_number() => {
                    Ok((a.as_f64().unwrap_or(f64::NAN) as f32, b.as_f64().unwrap_or(f64::NAN) as f32))
                }
                _ => Err(self.bad(key, "a pair of numbers", v)),
            },
        }
    }

    /// A number or a flat list of numbers (also Keras's `{"class_name": "__numpy__"}` form,
    /// which it writes for numpy arrays).
    fn numbers(&self, key: &str, v: &Value) -> Result<Coefficient> {
        let v = match v {
            Value::Object(o) if o.get("class_name").and_then(Value::as_str) == Some("__numpy__") => {
                o.get("config").and_then(|c| c.get("value")).ok_or_else(|| self.bad(key, "a numpy value", v))?
            }
            other => other,
        };
        match v {
            Value::Number(n) => Ok(Coefficient::Scalar(n.as_f64().unwrap_or(f64::NAN) as f32)),
            Value::Array(a) => a
                .iter()
                .map(|x| x.as_f64().map(|x| x as f32))
                .collect::<Option<Vec<f32>>>()
                .map(Coefficient::PerChannel)
                .ok_or_else(|| self.bad(key, "a number or a flat list of numbers", v)),
            other => Err(self.bad(key, "a number or a flat list of numbers", other)),
        }
    }
}

fn json_str(s: &str) -> Value {
    Value::String(s.to_string())
}

const IMAGE_RESAMPLE_KEYS: &[&str] = &["fill_mode", "interpolation", "seed", "fill_value"];

fn rescaling(c: &Value) -> Result<LayerRef> {
    let cfg = Cfg::new("Rescaling", c, &["scale", "offset"], false)?;
    let scale = cfg.numbers("scale", cfg.required("scale")?)?;
    let offset = match cfg.get("offset") {
        None => Coefficient::Scalar(0.0),
        Some(v) => cfg.numbers("offset", v)?,
    };
    Ok(Arc::new(Rescaling::per_channel(scale, offset)?))
}

fn normalization(c: &Value) -> Result<LayerRef> {
    let cfg = Cfg::new("Normalization", c, &["axis", "invert", "mean", "variance"], false)?;
    // Keras: absent means the default -1; an explicit null means no kept axis (one statistic).
    let axis: Vec<isize> = match cfg.map.get("axis") {
        None => vec![-1],
        Some(Value::Null) => vec![],
        Some(Value::Number(n)) => vec![n.as_i64().ok_or_else(|| cfg.bad("axis", "an integer", &Value::Number(n.clone())))? as isize],
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| cfg.bad("axis", "an integer, a list of integers or null", v))?,
    };
    let layer = Normalization::new(&axis).invert(cfg.bool_or("invert", false)?);
    let stat =
        |key: &str| -> Result<Option<Vec<f32>>> { cfg.get(key).map(|v| cfg.numbers(key, v).map(|c| c.values().to_vec())).transpose() };
    Ok(Arc::new(match (stat("mean")?, stat("variance")?) {
        (Some(m), Some(v)) => layer.with_stats(&m, &v)?,
        (None, None) => layer,
        (m, _) => {
            let (given, missing) = if m.is_some() { ("mean", "variance") } else { ("variance", "mean") };
            return Err(Error::Config(format!(
                "Normalization config: {given:?} is given but {missing:?} is not; expected both or neither"
            )));
        }
    }))
}

fn resizing(c: &Value) -> Result<LayerRef> {
    let keys = ["height", "width", "interpolation", "crop_to_aspect_ratio", "pad_to_aspect_ratio", "fill_mode", "fill_value", "antialias"];
    let cfg = Cfg::new("Resizing", c, &keys, true)?;
    let (crop, pad) = (cfg.bool_or("crop_to_aspect_ratio", false)?, cfg.bool_or("pad_to_aspect_ratio", false)?);
    if crop && pad {
        return Err(Error::Config(
            "Resizing config: only one of \"crop_to_aspect_ratio\" and \"pad_to_aspect_ratio\" can be true, got both".into(),
        ));
    }
    Ok(Arc::new(
        Resizing::new(cfg.size("height")?, cfg.size("width")?)?
            .interpolation(cfg.str_or("interpolation", "bilinear")?)?
            .crop_to_aspect_ratio(crop)
            .pad_to_aspect_ratio(pad)
            .fill_mode(cfg.str_or("fill_mode", "constant")?)?
            .fill_value(cfg.f32_or("fill_value", 0.0)?)
            .antialias(cfg.bool_or("antialias", false)?),
    ))
}

fn center_crop(c: &Value) -> Result<LayerRef> {
    let cfg = Cfg::new("CenterCrop", c, &["height", "width"], true)?;
    Ok(Arc::new(CenterCrop::new(cfg.size("height")?, cfg.size("width")?)?))
}

fn random_crop(c: &Value) -> Result<LayerRef> {
    let cfg = Cfg::new("RandomCrop", c, &["height", "width", "seed"], true)?;
    Ok(Arc::new(RandomCrop::new(cfg.size("height")?, cfg.size("width")?)?.maybe_seed(cfg.seed()?)))
}

fn random_flip(c: &Value) -> Result<LayerRef> {
    let cfg = Cfg::new("RandomFlip", c, &["mode", "seed"], true)?;
    Ok(Arc::new(RandomFlip::new(cfg.str_or("mode", "horizontal_and_vertical")?)?.maybe_seed(cfg.seed()?)))
}

/// The `fill_mode`, `interpolation` and `fill_value` builders the three geometric layers share.
macro_rules! resampled {
    ($cfg:expr, $layer:expr) => {
        $layer
            .fill_mode($cfg.str_or("fill_mode", "reflect")?)?
            .interpolation($cfg.str_or("interpolation", "bilinear")?)?
            .fill_value($cfg.f32_or("fill_value", 0.0)?)
            .maybe_seed($cfg.seed()?)
    };
}

fn random_rotation(c: &Value) -> Result<LayerRef> {
    let cfg = Cfg::new("RandomRotation", c, &[&["factor"], IMAGE_RESAMPLE_KEYS].concat(), true)?;
    Ok(Arc::new(resampled!(cfg, RandomRotation::new(cfg.factor("factor")?)?)))
}

fn random_zoom(c: &Value) -> Result<LayerRef> {
    let cfg = Cfg::new("RandomZoom", c, &[&["height_factor", "width_factor"], IMAGE_RESAMPLE_KEYS].concat(), true)?;
    Ok(Arc::new(resampled!(cfg, RandomZoom::new(cfg.factor("height_factor")?, cfg.opt_factor("width_factor")?)?)))
}

fn random_translation(c: &Value) -> Result<LayerRef> {
    let cfg = Cfg::new("RandomTranslation", c, &[&["height_factor", "width_factor"], IMAGE_RESAMPLE_KEYS].concat(), true)?;
    Ok(Arc::new(resampled!(cfg, RandomTranslation::new(cfg.factor("height_factor")?, cfg.factor("width_factor")?)?)))
}

fn random_contrast(c: &Value) -> Result<LayerRef> {
    let cfg = Cfg::new("RandomContrast", c, &["factor", "value_range", "seed"], true)?;
    Ok(Arc::new(
        RandomContrast::new(cfg.factor("factor")?)?.value_range(cfg.pair_or("value_range", (0.0, 255.0))?)?.maybe_seed(cfg.seed()?),
    ))
}

fn random_brightness(c: &Value) -> Result<LayerRef> {
    let cfg = Cfg::new("RandomBrightness", c, &["factor", "value_range", "seed"], true)?;
    Ok(Arc::new(
        RandomBrightness::new(cfg.factor("factor")?)?.value_range(cfg.pair_or("value_range", (0.0, 255.0))?)?.maybe_seed(cfg.seed()?),
    ))
}

// Each class registers itself with fovea-nn's registry: model files, configs and Keras imports
// holding these layers load in any program that links fovea-vision, with no set-up call.
fovea_nn::register_layer_class!("Rescaling", rescaling);
fovea_nn::register_layer_class!("Normalization", normalization);
fovea_nn::register_layer_class!("Resizing", resizing);
fovea_nn::register_layer_class!("CenterCrop", center_crop);
fovea_nn::register_layer_class!("RandomCrop", random_crop);
fovea_nn::register_layer_class!("RandomFlip", random_flip);
fovea_nn::register_layer_class!("RandomRotation", random_rotation);
fovea_nn::register_layer_class!("RandomZoom", random_zoom);
fovea_nn::register_layer_class!("RandomTranslation", random_translation);
fovea_nn::register_layer_class!("RandomContrast", random_contrast);
fovea_nn::register_layer_class!("RandomBrightness", random_brightness);
