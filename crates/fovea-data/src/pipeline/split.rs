//! Split strings in the TensorFlow Datasets syntax: `"train"`, `"train[:10%]"`,
//! `"train[10%:25%]"`, `"test[-500:]"`.

use super::{Cardinality, Dataset};
use crate::{Error, Result};
use std::ops::Range;

/// One end of a split's slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitBound {
    /// An element index; negative counts from the end.
    Index(i64),
    /// A percentage of the split (-100..=100); negative counts from the end.
    Percent(i64),
}

/// A parsed split string: the split's name and an optional slice of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitSpec {
    /// The split's name (`train`).
    pub name: String,
    /// The start of the slice (`None`: the beginning).
    pub start: Option<SplitBound>,
    /// The end of the slice, exclusive (`None`: the end).
    pub end: Option<SplitBound>,
}

fn bad(spec: &str, why: impl std::fmt::Display) -> Error {
    Error::format("split", format!("{why} in {spec:?}; expected a name with an optional slice like \"train\", \"train[:10%]\", \"train[10%:25%]\" or \"test[-500:]\""))
}

fn parse_bound(spec: &str, s: &str) -> Result<Option<SplitBound>> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let (num, pct) = match s.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (s, false),
    };
    let v: i64 = num.parse().map_err(|_| bad(spec, format!("{s:?} is not an integer or a percentage")))?;
    if pct {
        if !(-100..=100).contains(&v) {
            return Err(bad(spec, format!("percentage {v}% is outside -100%..=100%")));
        }
        Ok(Some(SplitBound::Percent(v)))
    } else {
        Ok(Some(SplitBound::Index(v)))
    }
}

impl SplitSpec {
    /// Parses a split string.
    ///
    /// # Errors
    /// `Format` naming the problem and the accepted syntax: an empty name, a missing `]`, no
    /// `:` in the slice, a bound that is not an integer or percentage, a percentage beyond 100.
    pub fn parse(spec: &str) -> Result<SplitSpec> {
        let s = spec.trim();
        let (name, slice) = match s.find('[') {
            None => (s, None),
            Some(i) => {
                let rest = s[i + 1..].strip_suffix(']').ok_or_else(|| bad(spec, "the slice does not end with ']'"))?;
                (&s[..i], Some(rest))
            }
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
            return Err(bad(spec, format!("the split name {name:?} is empty or has characters other than letters, digits, '_' and '-'")));
        }
        let (start, end) = match slice {
            None => (None, None),
            Some(sl) => {
                let (a, b) = sl.split_once(':').ok_or_else(|| bad(spec, "the slice has no ':'"))?;
                if b.contains(':') {
                    return Err(bad(spec, "the slice has more than one ':' (steps are not supported)"));
                }
                (parse_bound(spec, a)?, parse_bound(spec, b)?)
            }
        };
        Ok(SplitSpec { name: name.to_string(), start, end })
    }

    /// The element range this slice selects from a split of `n` elements. Percentages round to
    /// the closest index (ties to even, as TFDS's Python `round`); out-of-range bounds clamp
    /// like Python slices.
    pub fn range(&self, n: u64) -> Range<u64> {
        let resolve = |b: Option<SplitBound>, default: u64| -> u64 {
            let v = match b {
                None => return default,
                Some(SplitBound::Index(i)) => i as i128,
                Some(SplitBound::Percent(p)) => (n as f64 * p as f64 / 100.0).round_ties_even() as i128,
            };
            let v = if v < 0 { n as i128 + v } else { v };
            v.clamp(0, n as i128) as u64
        };
        let start = resolve(self.start, 0);
        let end = resolve(self.end, n).max(start);
        start..end
    }
}

impl Dataset {
    /// The part of this dataset a split string's slice selects (`"train[10%:25%]"` → elements
    /// 10% to 25% of the way through). The name is not checked against anything: the caller
    /// picks the dataset by name.
    ///
    /// # Errors
    /// `Format` for a malformed string (see [`SplitSpec::parse`]) or when the dataset's
    /// cardinality is not a known finite number.
    pub fn split(&self, spec: &str) -> Result<Dataset> {
        let parsed = SplitSpec::parse(spec)?;
        let n = match self.cardinality() {
            Cardinality::Finite(n) => n,
            other => {
                return Err(Error::format("split", format!("slicing {spec:?} needs a dataset of known finite cardinality, got {other:?}")))
            }
        };
        let r = parsed.range(n);
        Ok(self.skip(r.start).take(r.end - r.start))
    }
}
