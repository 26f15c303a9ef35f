//! `Dataset.batch` that copies each element into the batch as it arrives. Stacking a whole
//! group at the end reads every element back from memory: by then a batch of 224×224 images
//! (19 MiB) has long left the caches, and the copy took a tenth of an image pipeline's time.
//! Copied on arrival, an element is still in the shared cache. The result, the error items and
//! their order are those of stacking the group at the end: anything unusual (a structure or
//! shape that differs, a tensor off the CPU or one that needs a gradient) falls back to
//! [`stack`] on the kept elements.

use super::element::stack;
use super::{Element, ElementIter};
use crate::Result;
use fovea_core::{Device, HostData, Tensor};

/// One group being batched.
struct Batcher {
    /// The group's elements (cheap clones), for the fallback and the structure.
    elems: Vec<Element>,
    /// One growing buffer per leaf of the first element while the fast copy applies.
    leaves: Option<Vec<HostData>>,
    capacity: usize,
}

impl Batcher {
    fn new(capacity: usize) -> Self {
        Batcher { elems: Vec::with_capacity(capacity), leaves: None, capacity }
    }

    fn len(&self) -> usize {
        self.elems.len()
    }

    fn push(&mut self, e: Element) {
        match self.elems.first() {
            None => self.leaves = first_buffers(&e, self.capacity),
            Some(first) => {
                if !matches_first(first, &e) {
                    self.leaves = None;
                }
            }
        }
        if let Some(bufs) = &mut self.leaves {
            for (buf, leaf) in bufs.iter_mut().zip(e.leaves()) {
                // matches_first checked that every leaf is in host memory.
                if let Ok(src) = leaf.host_data() {
                    append(buf, src);
                }
            }
        }
        self.elems.push(e);
    }

    /// The batch of the elements pushed so far; the batcher is empty again afterwards.
    fn finish(&mut self) -> Result<Element> {
        let elems = std::mem::take(&mut self.elems);
        let Some(bufs) = self.leaves.take() else {
            return stack(&elems);
        };
        let first = &elems[0];
        let tensors = bufs
            .into_iter()
            .zip(first.leaves())
            .map(|(buf, leaf)| {
                let mut dims = vec![elems.len()];
                dims.extend_from_slice(leaf.dims());
                Ok(Tensor::from_host(buf, dims, Device::Cpu)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(first.rebuild(&mut tensors.into_iter()))
    }
}

/// Empty buffers with room for `capacity` copies of each leaf of `e`, or `None` when a leaf
/// needs the general path.
fn first_buffers(e: &Element, capacity: usize) -> Option<Vec<HostData>> {
    e.leaves()
        .into_iter()
        .map(|t| {
            if t.device() != Device::Cpu || t.requires_grad() {
                return None;
            }
            let n = capacity * t.shape().numel();
            Some(match t.host_data().ok()? {
                HostData::F32(_) => {
                    // A pooled buffer: batches are large and made again every step.
                    let mut v = fovea_core::buffer_pool::for_overwrite(n);
                    v.clear();
                    HostData::F32(v)
                }
                HostData::U8(_) => HostData::U8(Vec::with_capacity(n)),
                HostData::I64(_) => HostData::I64(Vec::with_capacity(n)),
                HostData::I32(_) => HostData::I32(Vec::with_capacity(n)),
                HostData::Bool(_) => HostData::Bool(Vec::with_capacity(n)),
                HostData::F16(_) => HostData::F16(Vec::with_capacity(n)),
                HostData::BF16(_) => HostData::BF16(Vec::with_capacity(n)),
            })
        })
        .collect()
}

/// Whether `e` can be appended after `first`: same structure, and each leaf of the same dtype
/// and shape, on the CPU and without a gradient.
fn matches_first(first: &Element, e: &Element) -> bool {
    first.same_structure(e)
        && first.leaves().iter().zip(e.leaves()).all(|(a, b)| {
            a.dims() == b.dims() && a.dtype() == b.dtype() && b.device() == Device::Cpu && !b.requires_grad() && b.host_data().is_ok()
        })
}

fn append(buf: &mut HostData, src: &HostData) {
    match (buf, src) {
        (HostData::F32(b), HostData::F32(s)) => b.extend_from_slice(s),
        (HostData::U8(b), HostData::U8(s)) => b.extend_from_slice(s),
        (HostData::I64(b), HostData::I64(s)) => b.extend_from_slice(s),
        (HostData::I32(b), HostData::I32(s)) => b.extend_from_slice(s),
        (HostData::Bool(b), HostData::Bool(s)) => b.extend_from_slice(s),
        (HostData::F16(b), HostData::F16(s)) => b.extend_from_slice(s),
        (HostData::BF16(b), HostData::BF16(s)) => b.extend_from_slice(s),
        // matches_first compared the dtypes; unreachable, and harmless: the length check in
        // Tensor::from_host would report it.
        _ => {}
    }
}

/// A group of elements being made into one batch.
pub(crate) trait Group: Send {
    fn push(&mut self, e: Element);
    fn len(&self) -> usize;
    /// The batch of the elements pushed so far; the group is empty again afterwards.
    fn finish(&mut self) -> Result<Element>;
}

impl Group for Batcher {
    fn push(&mut self, e: Element) {
        Batcher::push(self, e)
    }

    fn len(&self) -> usize {
        Batcher::len(self)
    }

    fn finish(&mut self) -> Result<Element> {
        Batcher::finish(self)
    }
}

/// The epoch iterator of `batch`: see [`grouped`].
pub(crate) fn batches(input: ElementIter, size: usize, drop_remainder: bool) -> ElementIter {
    grouped(input, size, drop_remainder, Batcher::new(size.max(1)))
}

/// Groups of `size` elements made by `group`, the last shorter one kept unless
/// `drop_remainder`. An `Err` input item is passed on at once, and the group goes on filling.
pub(crate) fn grouped(mut input: ElementIter, size: usize, drop_remainder: bool, mut group: impl Group + 'static) -> ElementIter {
    let size = size.max(1);
    let mut done = false;
    Box::new(std::iter::from_fn(move || {
        while !done && group.len() < size {
            match input.next() {
                Some(Ok(e)) => group.push(e),
                Some(Err(e)) => return Some(Err(e)),
                None => done = true,
            }
        }
        if group.len() == 0 || (group.len() < size && drop_remainder) {
            return None;
        }
        Some(group.finish())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(v: f32) -> Tensor {
        Tensor::from_vec(vec![v; 6], [2, 3], Device::Cpu).unwrap()
    }

    fn sample(i: i64) -> Element {
        Element::dict([
            ("image", Element::from(image(i as f32))),
            ("label", Element::from(Tensor::from_vec(vec![i], [1], Device::Cpu).unwrap())),
            (
                "raw",
                Element::from((
                    Tensor::from_vec(vec![i as u8; 2], [2], Device::Cpu).unwrap(),
                    Tensor::from_vec(vec![i % 2 == 0], [1], Device::Cpu).unwrap(),
                )),
            ),
        ])
    }

    fn batch_of(elems: &[Element]) -> Result<Element> {
        let mut b = Batcher::new(elems.len().max(1));
        elems.iter().for_each(|e| b.push(e.clone()));
        b.finish()
    }

    fn same(a: &Element, b: &Element) {
        assert_eq!(a.signature(), b.signature());
        for (x, y) in a.leaves().into_iter().zip(b.leaves()) {
            assert_eq!(x.host_data().unwrap(), y.host_data().unwrap());
        }
    }

    /// Every dtype and nesting gives what stacking the whole group gives, and the batcher can
    /// be reused for the next group.
    #[test]
    fn copying_on_arrival_equals_stacking() {
        let elems: Vec<Element> = (0..5).map(sample).collect();
        let mut b = Batcher::new(3);
        for group in elems.chunks(3) {
            group.iter().for_each(|e| b.push(e.clone()));
            assert!(b.leaves.is_some(), "the fast copy applies");
            same(&b.finish().unwrap(), &stack(group).unwrap());
        }
    }

    /// A differing shape or structure, or a leaf that needs a gradient, takes the general path
    /// with its exact result or error.
    #[test]
    fn unusual_groups_fall_back_to_stacking() {
        let odd = Element::from(Tensor::from_vec(vec![1.0f32; 4], [4], Device::Cpu).unwrap());
        let a = Element::from(image(1.0));
        let err = |r: Result<Element>| r.unwrap_err().to_string();
        assert_eq!(err(batch_of(&[a.clone(), odd.clone()])), err(stack(&[a.clone(), odd])));
        let pair = Element::from((image(2.0), image(3.0)));
        assert_eq!(err(batch_of(&[a.clone(), pair.clone()])), err(stack(&[a.clone(), pair])));
        let tracked = Element::from(image(4.0).with_requires_grad(true).unwrap());
        let batched = batch_of(&[tracked.clone(), a.clone()]).unwrap();
        assert!(batched.tensor().unwrap().requires_grad(), "the gradient path is kept");
        same(&batched, &stack(&[tracked, a]).unwrap());
    }
}
