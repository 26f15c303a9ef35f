//! The `tf.data` analogue: values and order of every transformation, determinism, threads,
//! caching and errors.

use fovea_core::{Device, Tensor};
use fovea_data::pipeline::{Cardinality, Dataset, Element, Parallelism, SplitBound, SplitSpec, AUTOTUNE};
use fovea_data::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn t(v: &[f32], dims: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), dims.to_vec(), Device::Cpu).unwrap()
}

fn ti(v: &[i64], dims: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), dims.to_vec(), Device::Cpu).unwrap()
}

/// `0.0, 1.0, ..., n-1` as a dataset of scalars.
fn scalars(n: usize) -> Dataset {
    let v: Vec<f32> = (0..n).map(|i| i as f32).collect();
    Dataset::from_tensor_slices(t(&v, &[n])).unwrap()
}

/// Every element's single value (elements must be scalar tensors).
fn values(ds: &Dataset) -> Vec<f32> {
    ds.iter().map(|e| e.unwrap().tensor().unwrap().to_scalar::<f32>().unwrap()).collect()
}

fn err_text(r: Result<Element, Error>) -> String {
    match r {
        Ok(e) => panic!("expected an error, got {}", e.signature()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn from_tensor_slices_tuples_and_nesting() {
    let x = t(&[0., 1., 2., 3., 4., 5.], &[3, 2]);
    let y = ti(&[7, 8, 9], &[3]);
    let z = t(&[10., 11., 12.], &[3, 1]);
    let ds = Dataset::from_tensor_slices(Element::from((x, Element::from((y, z))))).unwrap();
    assert_eq!(ds.cardinality(), Cardinality::Finite(3));
    let elems = ds.collect().unwrap();
    assert_eq!(elems.len(), 3);
    let e = &elems[1];
    assert_eq!(e.get(0).unwrap().tensor().unwrap().to_vec::<f32>().unwrap(), vec![2., 3.]);
    assert_eq!(e.get(0).unwrap().tensor().unwrap().dims(), &[2]);
    let inner = e.get(1).unwrap();
    assert_eq!(inner.get(0).unwrap().tensor().unwrap().to_vec::<i64>().unwrap(), vec![8]);
    assert_eq!(inner.get(0).unwrap().tensor().unwrap().rank(), 0);
    assert_eq!(inner.get(1).unwrap().tensor().unwrap().to_vec::<f32>().unwrap(), vec![11.]);
    assert_eq!(e.signature(), "(float32[2], (int64[], float32[1]))");
}

#[test]
fn from_tensor_slices_errors() {
    let msg = Dataset::from_tensor_slices((t(&[1., 2., 3.], &[3]), t(&[1., 2.], &[2]))).unwrap_err().to_string();
    assert!(msg.contains("from_tensor_slices") && msg.contains("same size of axis 0"), "{msg}");
    assert!(msg.contains("(float32[3], float32[2])"), "{msg}");
    let msg = Dataset::from_tensor_slices(Tensor::scalar(1.0, Device::Cpu).unwrap()).unwrap_err().to_string();
    assert!(msg.contains("rank >= 1") && msg.contains("scalar"), "{msg}");
}

#[test]
fn from_generator_runs_fresh_each_epoch_and_zip_stops_at_shortest() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let g = Dataset::from_generator(move || {
        c.fetch_add(1, Ordering::SeqCst);
        (0..4).map(|i| Ok(Element::from(t(&[i as f32 * 10.], &[]))))
    });
    assert_eq!(g.cardinality(), Cardinality::Unknown);
    assert_eq!(values(&g), vec![0., 10., 20., 30.]);
    assert_eq!(values(&g), vec![0., 10., 20., 30.]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let z = Dataset::zip(vec![scalars(3), g.clone()]).unwrap();
    let pairs: Vec<(f32, f32)> = z
        .iter()
        .map(|e| {
            let e = e.unwrap();
            (e.get(0).unwrap().tensor().unwrap().to_scalar().unwrap(), e.get(1).unwrap().tensor().unwrap().to_scalar().unwrap())
        })
        .collect();
    assert_eq!(pairs, vec![(0., 0.), (1., 10.), (2., 20.)]);
    assert_eq!(Dataset::zip(vec![scalars(3), scalars(5)]).unwrap().cardinality(), Cardinality::Finite(3));
    assert_eq!(Dataset::zip(vec![scalars(3), g]).unwrap().cardinality(), Cardinality::Unknown);
    assert_eq!(Dataset::zip(vec![scalars(3).repeat(None), scalars(2).repeat(None)]).unwrap().cardinality(), Cardinality::Infinite);
    assert!(Dataset::zip(vec![]).unwrap_err().to_string().contains("at least one dataset"));
}

#[test]
fn shuffle_is_a_seeded_permutation_that_changes_each_epoch() {
    let ds = scalars(20).shuffle(20, Some(42));
    let e1 = values(&ds);
    let e2 = values(&ds);
    let mut sorted = e1.clone();
    sorted.sort_by(f32::total_cmp);
    assert_eq!(sorted, values(&scalars(20)));
    assert_ne!(e1, values(&scalars(20)), "a full-buffer shuffle of 20 left the order unchanged");
    assert_ne!(e1, e2, "reshuffle_each_iteration: the second epoch has the same order");
    // A rebuilt pipeline with the same seed replays the same sequence of epochs.
    let again = scalars(20).shuffle(20, Some(42));
    assert_eq!(values(&again), e1);
    assert_eq!(values(&again), e2);
    // A different seed gives a different order.
    assert_ne!(values(&scalars(20).shuffle(20, Some(43))), e1);
    // Without reshuffling every epoch repeats the first.
    let fixed = scalars(20).shuffle_with(20, Some(42), false);
    assert_eq!(values(&fixed), values(&fixed));
    // Without a seed the global seed makes it reproducible.
    fovea_core::set_seed(5);
    let a = values(&scalars(20).shuffle(20, None));
    fovea_core::set_seed(5);
    assert_eq!(values(&scalars(20).shuffle(20, None)), a);
}

#[test]
fn shuffle_buffer_limits_how_far_elements_move() {
    // With a buffer of 3, the k-th output is drawn from the first k+3 inputs: element i cannot
    // come out before position i - 2.
    for seed in 0..20 {
        let out = values(&scalars(30).shuffle(3, Some(seed)));
        for (pos, &v) in out.iter().enumerate() {
            assert!(v as usize <= pos + 2, "seed {seed}: element {v} at position {pos}");
        }
    }
    // A buffer of 1 is the identity.
    assert_eq!(values(&scalars(10).shuffle(1, Some(3))), values(&scalars(10)));
}

#[test]
fn map_and_filter() {
    let ds = scalars(6).map(|e| Ok(Element::from(e.tensor()?.mul_scalar(2.0)?))).filter(|e| Ok(e.tensor()?.to_scalar::<f32>()? > 3.0));
    assert_eq!(values(&ds), vec![4., 6., 8., 10.]);
    assert_eq!(ds.cardinality(), Cardinality::Unknown);
    assert_eq!(scalars(6).map(Ok).cardinality(), Cardinality::Finite(6));
}

#[test]
fn map_errors_come_out_as_err_items_and_the_stream_goes_on() {
    let ds = scalars(4).map(|e| {
        let v = e.tensor()?.to_scalar::<f32>()?;
        if v == 2.0 {
            Err(fovea_core::Error::invalid("my_fn", "cannot handle 2").into())
        } else {
            Ok(e)
        }
    });
    let items: Vec<_> = ds.iter().collect();
    assert_eq!(items.len(), 4);
    assert!(items[0].is_ok() && items[1].is_ok() && items[3].is_ok());
    let msg = err_text(items.into_iter().nth(2).unwrap());
    assert!(msg.contains("my_fn") && msg.contains("cannot handle 2"), "{msg}");
    assert!(ds.collect().is_err());
}

#[test]
fn batch_keeps_or_drops_the_remainder() {
    let ds = scalars(7).batch(3, false);
    assert_eq!(ds.cardinality(), Cardinality::Finite(3));
    let b = ds.collect().unwrap();
    assert_eq!(b.len(), 3);
    assert_eq!(b[0].tensor().unwrap().dims(), &[3]);
    assert_eq!(b[1].tensor().unwrap().to_vec::<f32>().unwrap(), vec![3., 4., 5.]);
    assert_eq!(b[2].tensor().unwrap().to_vec::<f32>().unwrap(), vec![6.]);
    let d = scalars(7).batch(3, true);
    assert_eq!(d.cardinality(), Cardinality::Finite(2));
    assert_eq!(d.collect().unwrap().len(), 2);

    // Tuples batch component by component.
    let pairs = Dataset::from_tensor_slices((t(&[0., 1., 2., 3.], &[2, 2]), ti(&[5, 6], &[2]))).unwrap().batch(2, false);
    let b = pairs.collect().unwrap();
    assert_eq!(b[0].get(0).unwrap().tensor().unwrap().dims(), &[2, 2]);
    assert_eq!(b[0].get(1).unwrap().tensor().unwrap().to_vec::<i64>().unwrap(), vec![5, 6]);
    // Unbatch undoes it.
    let u = pairs.unbatch().collect().unwrap();
    assert_eq!(u.len(), 2);
    assert_eq!(u[1].get(0).unwrap().tensor().unwrap().to_vec::<f32>().unwrap(), vec![2., 3.]);
    assert_eq!(values(&scalars(7).batch(3, false).unbatch()), values(&scalars(7)));
}

#[test]
fn batch_of_mismatched_shapes_is_an_err_item() {
    let ds = Dataset::from_elements(vec![t(&[1., 2.], &[2]).into(), t(&[1., 2., 3.], &[3]).into()]).batch(2, false);
    let msg = err_text(ds.iter().next().unwrap());
    assert!(
        msg.contains("batch") && msg.contains("element 1") && msg.contains("[3]") && msg.contains("[2]") && msg.contains("padded_batch"),
        "{msg}"
    );
    // Different structures too.
    let ds = Dataset::from_elements(vec![t(&[1.], &[1]).into(), (t(&[1.], &[1]), t(&[1.], &[1])).into()]).batch(2, false);
    let msg = err_text(ds.iter().next().unwrap());
    assert!(msg.contains("structure"), "{msg}");
}

#[test]
fn padded_batch_pads_to_the_longest_or_to_given_shapes() {
    let seqs: Vec<Element> = vec![t(&[1.], &[1]).into(), t(&[2., 2., 2.], &[3]).into(), t(&[3., 3.], &[2]).into()];
    let ds = Dataset::from_elements(seqs.clone()).padded_batch(2, None, -1.0, false);
    let b = ds.collect().unwrap();
    assert_eq!(b[0].tensor().unwrap().dims(), &[2, 3]);
    assert_eq!(b[0].tensor().unwrap().to_vec::<f32>().unwrap(), vec![1., -1., -1., 2., 2., 2.]);
    assert_eq!(b[1].tensor().unwrap().dims(), &[1, 2]);
    assert_eq!(b[1].tensor().unwrap().to_vec::<f32>().unwrap(), vec![3., 3.]);

    let fixed = Dataset::from_elements(seqs.clone()).padded_batch(3, Some(vec![vec![Some(4)]]), 0.0, false).collect().unwrap();
    assert_eq!(fixed[0].tensor().unwrap().dims(), &[3, 4]);
    assert_eq!(fixed[0].tensor().unwrap().to_vec::<f32>().unwrap(), vec![1., 0., 0., 0., 2., 2., 2., 0., 3., 3., 0., 0.]);

    let msg = err_text(Dataset::from_elements(seqs).padded_batch(3, Some(vec![vec![Some(2)]]), 0.0, false).iter().next().unwrap());
    assert!(msg.contains("size 3 on axis 0") && msg.contains("padded size 2"), "{msg}");
}

#[test]
fn parallel_map_keeps_order_with_four_slow_workers() {
    let threads = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let seen = threads.clone();
    let ds = scalars(24).map_parallel(
        move |e| {
            let v = e.tensor()?.to_scalar::<f32>()?;
            seen.lock().unwrap().insert(std::thread::current().id());
            // Early elements are the slowest, so they finish last on a free-running pool.
            std::thread::sleep(Duration::from_millis(((24.0 - v) * 2.0) as u64));
            Ok(Element::from(t(&[v * v], &[])))
        },
        Parallelism::Fixed(4),
        true,
    );
    let expected: Vec<f32> = (0..24).map(|i| (i * i) as f32).collect();
    assert_eq!(values(&ds), expected);
    let ids = threads.lock().unwrap();
    assert!(ids.len() > 1 && !ids.contains(&std::thread::current().id()), "the map ran on {} threads", ids.len());
    assert_eq!(ds.cardinality(), Cardinality::Finite(24));
}

/// The map's workers are the threads of its own rayon pool: parallel kernels inside the map
/// function split across them instead of queueing on the global pool (which a pipeline's
/// workers would all share), and a half-read epoch still shuts its workers down.
#[test]
fn parallel_map_kernels_run_on_the_map_workers() {
    let pools = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let seen = pools.clone();
    let ds = scalars(16).map_parallel(
        move |e| {
            // Inside a pool, rayon reports the pool's size; the global pool here has another.
            seen.lock().unwrap().insert((rayon::current_thread_index().is_some(), rayon::current_num_threads()));
            // A kernel large enough to split across threads.
            let big = Tensor::from_vec(vec![1.0f32; 1 << 18], [1 << 18], Device::Cpu)?;
            let s = big.mul_scalar(e.tensor()?.to_scalar::<f32>()?)?.sum_all()?;
            Ok(Element::from(s))
        },
        Parallelism::Fixed(3),
        true,
    );
    let want: Vec<f32> = (0..16).map(|i| (i as f32) * (1 << 18) as f32).collect();
    assert_eq!(values(&ds), want);
    assert_eq!(*pools.lock().unwrap(), [(true, 3)].into_iter().collect(), "the map ran outside its 3-thread pool");
    let mut it = ds.iter();
    assert!(it.next().unwrap().is_ok());
    drop(it); // must return: the workers see the closed job channel and end
}

/// A slow element does not let the others run ahead: finished results waiting for it count
/// against the 2 × threads elements a parallel map may hold.
#[test]
fn parallel_map_reorder_buffer_is_bounded_by_a_slow_element() {
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let ds = scalars(500).map_parallel(
        move |e| {
            s.fetch_add(1, Ordering::SeqCst);
            if e.tensor()?.to_scalar::<f32>()? == 0.0 {
                std::thread::sleep(Duration::from_millis(300));
            }
            Ok(e)
        },
        Parallelism::Fixed(2),
        true,
    );
    let mut it = ds.iter();
    assert_eq!(it.next().unwrap().unwrap().tensor().unwrap().to_scalar::<f32>().unwrap(), 0.0);
    let calls = started.load(Ordering::SeqCst);
    assert!(calls <= 2 * 2 + 1, "{calls} elements started while the first was slow");
}

#[test]
fn parallel_map_nondeterministic_yields_every_result() {
    let ds = scalars(30).map_parallel(|e| Ok(Element::from(e.tensor()?.add_scalar(1.0)?)), AUTOTUNE, false);
    let mut v = values(&ds);
    v.sort_by(f32::total_cmp);
    assert_eq!(v, (1..=30).map(|i| i as f32).collect::<Vec<_>>());
}

#[test]
fn parallel_map_errors_and_panics_become_err_items_in_place() {
    let ds = scalars(6).map_parallel(
        |e| {
            let v = e.tensor()?.to_scalar::<f32>()?;
            if v == 1.0 {
                return Err(fovea_core::Error::invalid("f", "bad one").into());
            }
            if v == 4.0 {
                panic!("boom at four");
            }
            Ok(e)
        },
        Parallelism::Fixed(3),
        true,
    );
    let items: Vec<_> = ds.iter().collect();
    assert_eq!(items.len(), 6);
    let ok: Vec<bool> = items.iter().map(Result::is_ok).collect();
    assert_eq!(ok, vec![true, false, true, true, false, true]);
    let mut it = items.into_iter();
    assert!(err_text(it.nth(1).unwrap()).contains("bad one"));
    let msg = err_text(it.nth(2).unwrap());
    assert!(msg.contains("panicked") && msg.contains("boom at four"), "{msg}");
}

#[test]
fn prefetch_runs_ahead_on_another_thread_and_stays_bounded() {
    let produced = Arc::new(AtomicUsize::new(0));
    let producer_thread = Arc::new(std::sync::Mutex::new(None));
    let (p, th) = (produced.clone(), producer_thread.clone());
    let ds = Dataset::from_generator(move || {
        let (p, th) = (p.clone(), th.clone());
        (0..100).map(move |i| {
            *th.lock().unwrap() = Some(std::thread::current().id());
            p.fetch_add(1, Ordering::SeqCst);
            Ok(Element::from(t(&[i as f32], &[])))
        })
    })
    .prefetch(3);
    let mut it = ds.iter();
    assert_eq!(it.next().unwrap().unwrap().tensor().unwrap().to_scalar::<f32>().unwrap(), 0.0);
    // While the consumer holds off, the producer fills the buffer: wait for that (with a
    // generous cap so a loaded machine cannot fail the test by being slow).
    let deadline = Instant::now() + Duration::from_secs(30);
    while produced.load(Ordering::SeqCst) < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(produced.load(Ordering::SeqCst) >= 4, "the producer did not run ahead");
    assert_ne!(producer_thread.lock().unwrap().unwrap(), std::thread::current().id());
    // Bounded: one consumed + 3 buffered, plus at most one more settling; never the rest.
    std::thread::sleep(Duration::from_millis(20));
    assert!(produced.load(Ordering::SeqCst) <= 5, "produced {} elements", produced.load(Ordering::SeqCst));
    let rest: Vec<f32> = it.map(|e| e.unwrap().tensor().unwrap().to_scalar::<f32>().unwrap()).collect();
    assert_eq!(rest, (1..100).map(|i| i as f32).collect::<Vec<_>>());
}

#[test]
fn repeat_take_skip_and_cardinality() {
    assert_eq!(values(&scalars(3).repeat(Some(2))), vec![0., 1., 2., 0., 1., 2.]);
    assert_eq!(scalars(3).repeat(Some(2)).cardinality(), Cardinality::Finite(6));
    let forever = scalars(3).repeat(None);
    assert_eq!(forever.cardinality(), Cardinality::Infinite);
    assert_eq!(values(&forever.take(7)), vec![0., 1., 2., 0., 1., 2., 0.]);
    assert_eq!(forever.take(7).cardinality(), Cardinality::Finite(7));
    assert_eq!(forever.skip(2).cardinality(), Cardinality::Infinite);
    assert_eq!(values(&scalars(5).skip(3)), vec![3., 4.]);
    assert_eq!(scalars(5).skip(9).cardinality(), Cardinality::Finite(0));
    assert_eq!(scalars(5).take(9).cardinality(), Cardinality::Finite(5));
    assert_eq!(scalars(5).filter(|_| Ok(true)).take(2).cardinality(), Cardinality::Unknown);
    // Repeating an empty dataset forever ends instead of spinning.
    assert_eq!(values(&scalars(5).skip(5).repeat(None)), Vec::<f32>::new());
    assert_eq!(scalars(5).skip(5).repeat(None).cardinality(), Cardinality::Finite(0));
    assert_eq!(forever.batch(2, false).cardinality(), Cardinality::Infinite);
    assert_eq!(scalars(10).batch(4, false).unbatch().cardinality(), Cardinality::Unknown);
    // Shuffle before repeat reshuffles each repetition.
    let r = values(&scalars(10).shuffle(10, Some(1)).repeat(Some(2)));
    assert_ne!(r[..10], r[10..]);
    assert_eq!(Dataset::range(2, 5).cardinality(), Cardinality::Finite(3));
    // tf.data's rules for unknown inputs: repeat() is infinite, repeat(n) unknown, filter unknown.
    let unknown = Dataset::from_generator(std::iter::empty);
    assert_eq!(unknown.repeat(None).cardinality(), Cardinality::Infinite);
    assert_eq!(unknown.repeat(Some(2)).cardinality(), Cardinality::Unknown);
    assert_eq!(forever.filter(|_| Ok(true)).cardinality(), Cardinality::Unknown);
    assert_eq!(unknown.repeat(None).take(3).cardinality(), Cardinality::Finite(3));
    // ...and an empty generator repeated forever still ends.
    assert_eq!(unknown.repeat(None).collect().unwrap().len(), 0);
}

#[test]
fn enumerate_pairs_indices_with_elements() {
    let e = scalars(3).skip(1).enumerate(10).collect().unwrap();
    let pairs: Vec<(i64, f32)> = e
        .iter()
        .map(|p| (p.get(0).unwrap().tensor().unwrap().to_scalar().unwrap(), p.get(1).unwrap().tensor().unwrap().to_scalar().unwrap()))
        .collect();
    assert_eq!(pairs, vec![(10, 1.), (11, 2.)]);
}

#[test]
fn interleave_matches_the_tf_data_example() {
    // tf.data docs: range(1, 6).interleave(lambda x: from_tensors(x).repeat(6), cycle_length=2,
    // block_length=4).
    let ds = Dataset::range(1, 6).interleave(|e| Ok(Dataset::from_elements(vec![e]).repeat(Some(6))), 2, 4);
    let got: Vec<i64> = ds.iter().map(|e| e.unwrap().tensor().unwrap().to_scalar::<i64>().unwrap()).collect();
    let want = vec![1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 3, 3, 4, 4, 5, 5, 5, 5, 5, 5];
    assert_eq!(got, want);
    assert_eq!(ds.cardinality(), Cardinality::Unknown);
}

#[test]
fn memory_cache_runs_upstream_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let ds = scalars(4)
        .map(move |e| {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(e)
        })
        .cache();
    assert_eq!(values(&ds), vec![0., 1., 2., 3.]);
    assert_eq!(values(&ds), vec![0., 1., 2., 3.]);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fovea-pipeline-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn file_cache_writes_then_reads_back() {
    let path = temp_path("cache_roundtrip.bin");
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let src = Dataset::from_tensor_slices((t(&[0.5, 1.5, 2.5, 3.5, 4.5, 5.5], &[3, 2]), ti(&[7, 8, 9], &[3]))).unwrap();
    let ds = src
        .map(move |e| {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(e)
        })
        .cache_to_file(&path);
    let first = ds.collect().unwrap();
    assert!(path.exists());
    // A new pipeline over the same file (as in a new process) reads it without running upstream.
    let reread = Dataset::from_generator(std::iter::empty).cache_to_file(&path).collect().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(reread.len(), 3);
    for (a, b) in first.iter().zip(&reread) {
        assert_eq!(a.signature(), b.signature());
        assert_eq!(
            a.get(0).unwrap().tensor().unwrap().to_vec::<f32>().unwrap(),
            b.get(0).unwrap().tensor().unwrap().to_vec::<f32>().unwrap()
        );
        assert_eq!(
            a.get(1).unwrap().tensor().unwrap().to_vec::<i64>().unwrap(),
            b.get(1).unwrap().tensor().unwrap().to_vec::<i64>().unwrap()
        );
    }
    assert_eq!(reread[2].get(0).unwrap().tensor().unwrap().to_vec::<f32>().unwrap(), vec![4.5, 5.5]);
}

#[test]
fn truncated_or_corrupt_cache_file_is_an_err_item() {
    let path = temp_path("cache_truncated.bin");
    scalars(5).cache_to_file(&path).collect().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 12]).unwrap();
    let items: Vec<_> = Dataset::from_generator(std::iter::empty).cache_to_file(&path).iter().collect();
    let last = items.into_iter().last().unwrap();
    let msg = err_text(last);
    assert!(msg.contains("truncated") && msg.contains("cache_truncated.bin"), "{msg}");

    std::fs::write(&path, b"NOTACACHEFILE").unwrap();
    let msg = err_text(Dataset::from_generator(std::iter::empty).cache_to_file(&path).iter().next().unwrap());
    assert!(msg.contains("magic"), "{msg}");
}

#[test]
fn interrupted_file_cache_epoch_leaves_no_file() {
    let path = temp_path("cache_partial.bin");
    let ds = scalars(5).cache_to_file(&path);
    let first_two: Vec<_> = ds.iter().take(2).collect();
    assert_eq!(first_two.len(), 2);
    assert!(!path.exists());
    // Nothing is left behind at all: the partial temporary file is gone.
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("cache_partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(values(&ds), vec![0., 1., 2., 3., 4.]);
    assert!(path.exists());
}

#[test]
fn split_strings_parse_and_select() {
    let s = SplitSpec::parse("train[10%:25%]").unwrap();
    assert_eq!(s.name, "train");
    assert_eq!((s.start, s.end), (Some(SplitBound::Percent(10)), Some(SplitBound::Percent(25))));
    assert_eq!(s.range(200), 20..50);
    assert_eq!(SplitSpec::parse("train[:10%]").unwrap().range(200), 0..20);
    assert_eq!(SplitSpec::parse("train").unwrap().range(7), 0..7);
    assert_eq!(SplitSpec::parse("test[-3:]").unwrap().range(10), 7..10);
    assert_eq!(SplitSpec::parse("test[2:4]").unwrap().range(10), 2..4);
    assert_eq!(SplitSpec::parse("test[50%:]").unwrap().range(5), 2..5); // 2.5 rounds to even

    assert_eq!(values(&scalars(20).split("train[:10%]").unwrap()), vec![0., 1.]);
    assert_eq!(values(&scalars(20).split("train[10%:25%]").unwrap()), vec![2., 3., 4.]);
    assert_eq!(scalars(20).split("train[10%:25%]").unwrap().cardinality(), Cardinality::Finite(3));
}

#[test]
fn bad_split_strings_are_errors() {
    for (bad, why) in [
        ("train[10%:25%", "does not end with ']'"),
        ("train[10%]", "no ':'"),
        ("[:10%]", "split name"),
        ("train[abc:]", "not an integer or a percentage"),
        ("train[:150%]", "outside"),
        ("train[1:2:3]", "more than one ':'"),
    ] {
        let msg = SplitSpec::parse(bad).unwrap_err().to_string();
        assert!(msg.contains(why) && msg.contains("train[:10%]"), "{bad}: {msg}");
    }
    let msg = scalars(5).repeat(None).split("train[:10%]").unwrap_err().to_string();
    assert!(msg.contains("known finite cardinality") && msg.contains("Infinite"), "{msg}");
}

#[test]
fn a_full_pipeline_is_reproducible() {
    let build = || {
        scalars(50)
            .shuffle(16, Some(9))
            .map_parallel(|e| Ok(Element::from(e.tensor()?.mul_scalar(3.0)?)), Parallelism::Fixed(4), true)
            .batch(8, true)
            .repeat(Some(2))
            .prefetch(2)
    };
    let a: Vec<Vec<f32>> = build().iter().map(|b| b.unwrap().tensor().unwrap().to_vec().unwrap()).collect();
    let b: Vec<Vec<f32>> = build().iter().map(|b| b.unwrap().tensor().unwrap().to_vec().unwrap()).collect();
    assert_eq!(a.len(), 12);
    assert_eq!(a, b);
    assert_ne!(a[..6], a[6..]);
}

#[test]
fn invalid_builder_arguments_are_err_items() {
    for (ds, want) in [
        (scalars(3).batch(0, false), "batch: batch_size must be at least 1, got 0"),
        (scalars(3).padded_batch(0, None, 0.0, false), "padded_batch: batch_size must be at least 1, got 0"),
        (scalars(3).shuffle(0, Some(1)), "shuffle: buffer_size must be at least 1, got 0"),
        (
            scalars(3).interleave(|e| Ok(Dataset::from_elements(vec![e])), 0, 1),
            "cycle_length and block_length must be at least 1, got 0 and 1",
        ),
    ] {
        let items: Vec<_> = ds.iter().collect();
        assert_eq!(items.len(), 1);
        let msg = err_text(items.into_iter().next().unwrap());
        assert!(msg.contains(want), "{msg}");
    }
}

#[test]
fn parallel_map_results_do_not_depend_on_the_thread_count() {
    let run = |threads| {
        let ds = scalars(40).shuffle(10, Some(3)).map_parallel(
            |e| Ok(Element::from(e.tensor()?.mul_scalar(0.5)?)),
            Parallelism::Fixed(threads),
            true,
        );
        values(&ds)
    };
    let one = run(1);
    assert_eq!(run(3), one);
    assert_eq!(run(8), one);
}

#[test]
fn slices_of_a_tensor_that_requires_grad_are_plain_data() {
    let x = t(&[1., 2., 3., 4.], &[2, 2]).with_requires_grad(true).unwrap();
    let rows = Dataset::from_tensor_slices(x).unwrap().collect().unwrap();
    assert!(!rows[0].tensor().unwrap().requires_grad());
    assert_eq!(rows[1].tensor().unwrap().to_vec::<f32>().unwrap(), vec![3., 4.]);
}

#[test]
fn named_fields_slice_batch_and_cache() {
    let source = Element::dict([("image", t(&[0., 1., 2., 3., 4., 5.], &[3, 2]).into()), ("label", ti(&[4, 5, 6], &[3]).into())]);
    let ds = Dataset::from_tensor_slices(source).unwrap();
    let first = ds.iter().next().unwrap().unwrap();
    assert_eq!(first.signature(), "{image: float32[2], label: int64[]}");
    assert_eq!(first.field("label").unwrap().tensor().unwrap().to_scalar::<i64>().unwrap(), 4);
    let msg = first.field("mask").unwrap_err().to_string();
    assert!(msg.contains("\"mask\"") && msg.contains("[\"image\", \"label\"]"), "{msg}");
    let msg = first.get(0).unwrap_err().to_string();
    assert!(msg.contains("not a tuple"), "{msg}");

    let b = ds.batch(2, false).collect().unwrap();
    assert_eq!(b[0].field("image").unwrap().tensor().unwrap().to_vec::<f32>().unwrap(), vec![0., 1., 2., 3.]);
    assert_eq!(b[1].field("label").unwrap().tensor().unwrap().to_vec::<i64>().unwrap(), vec![6]);

    let path = temp_path("cache_dict.bin");
    ds.cache_to_file(&path).collect().unwrap();
    let back = Dataset::from_generator(std::iter::empty).cache_to_file(&path).collect().unwrap();
    assert_eq!(back.len(), 3);
    assert_eq!(back[2].signature(), "{image: float32[2], label: int64[]}");
    assert_eq!(back[2].field("image").unwrap().tensor().unwrap().to_vec::<f32>().unwrap(), vec![4., 5.]);

    // Dicts with different keys do not batch together.
    let mixed = Dataset::from_elements(vec![Element::dict([("a", t(&[1.], &[1]).into())]), Element::dict([("b", t(&[1.], &[1]).into())])]);
    let msg = err_text(mixed.batch(2, false).iter().next().unwrap());
    assert!(msg.contains("{b: float32[1]}") && msg.contains("{a: float32[1]}"), "{msg}");
}

#[test]
fn dropping_threaded_epochs_half_way_stops_their_threads() {
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let ds = scalars(1000)
        .repeat(None)
        .map_parallel(
            move |e| {
                s.fetch_add(1, Ordering::SeqCst);
                Ok(e)
            },
            Parallelism::Fixed(4),
            true,
        )
        .prefetch(2);
    let first: Vec<f32> = ds.iter().take(3).map(|e| e.unwrap().tensor().unwrap().to_scalar::<f32>().unwrap()).collect();
    assert_eq!(first, vec![0., 1., 2.]);
    // Once the prefetch thread notices the dropped consumer, the map stops: the count settles
    // far below the infinite input (bounded by the prefetch buffer and 2 × 4 jobs in flight).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = usize::MAX;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = started.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }
    assert!(last <= 3 + 2 + 1 + 8 + 4, "the map kept running: {last} calls");
}

#[test]
fn fit_and_evaluate_accept_a_dataset() {
    use fovea_nn::activations::Activation;
    use fovea_nn::layers::Dense;
    use fovea_nn::losses::LossKind;
    use fovea_nn::model::{FitOptions, Model, Sequential};
    use fovea_nn::optimizers::Optimizer;
    fovea_core::set_seed(4);
    // Two separable blobs.
    let n = 200;
    let noise = Tensor::random_normal([n, 2], 0.0, 0.5, Some(1), Device::Cpu).unwrap().to_vec::<f32>().unwrap();
    let xs: Vec<f32> = (0..n)
        .flat_map(
            |i| if i % 2 == 0 { [2.0 + noise[2 * i], 2.0 + noise[2 * i + 1]] } else { [-2.0 + noise[2 * i], -2.0 + noise[2 * i + 1]] },
        )
        .collect();
    let ys: Vec<i64> = (0..n as i64).map(|i| i % 2).collect();
    let x = Tensor::from_vec(xs, [n, 2], Device::Cpu).unwrap();
    let y = Tensor::from_vec(ys, [n], Device::Cpu).unwrap();
    let ds = Dataset::from_tensor_slices((x, y)).unwrap().shuffle(64, Some(1)).batch(16, false);
    let model = Sequential::with_input_shape(&[2]);
    model.add(Dense::new(2).activation(Activation::Linear)).unwrap();
    model.compile(Optimizer::adam(0.05), LossKind::SparseCategoricalCrossentropy { from_logits: true }.into(), &["accuracy"]).unwrap();
    let h = model.fit_source(&ds, Some(&ds), &FitOptions { epochs: 5, verbose: 0, ..Default::default() }, &mut []).unwrap();
    assert_eq!(h.history["loss"].len(), 5);
    assert!(h.history["val_accuracy"][4] > 0.95, "{:?}", h.history);
    let logs = model.evaluate_source(&ds).unwrap();
    assert!(logs["accuracy"] > 0.95);
    // Elements that are not (x, y) pairs are refused with the structure named.
    let bad = Dataset::from_tensor_slices(Tensor::zeros([4, 2], fovea_core::DType::F32, Device::Cpu).unwrap()).unwrap().batch(2, false);
    let e = model.fit_source(&bad, None, &FitOptions { verbose: 0, ..Default::default() }, &mut []).unwrap_err().to_string();
    assert!(e.contains("fit expects dataset elements (x, y)"), "{e}");
    // An endless dataset (repeated) trains steps_per_epoch batches an epoch, as Keras does; the
    // batches it pulls are counted at the source.
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let endless = ds.repeat(None).map(move |e| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(e)
    });
    let options = FitOptions { epochs: 3, steps_per_epoch: Some(7), verbose: 0, ..Default::default() };
    let h = model.fit_source(&endless, None, &options, &mut []).unwrap();
    assert_eq!((h.history["loss"].len(), pulled.load(Ordering::SeqCst)), (3, 21));
    let options = FitOptions { steps_per_epoch: Some(0), verbose: 0, ..Default::default() };
    let e = model.fit_source(&endless, None, &options, &mut []).unwrap_err().to_string();
    assert!(e.contains("steps_per_epoch must be at least 1"), "{e}");
}

#[test]
fn shard_keeps_every_nth_element_and_counts_them() {
    let ds = scalars(10);
    assert_eq!(values(&ds.shard(3, 0).unwrap()), vec![0.0, 3.0, 6.0, 9.0]);
    assert_eq!(values(&ds.shard(3, 2).unwrap()), vec![2.0, 5.0, 8.0]);
    assert_eq!(ds.shard(3, 0).unwrap().cardinality(), Cardinality::Finite(4));
    assert_eq!(ds.shard(3, 2).unwrap().cardinality(), Cardinality::Finite(3));
    for (n, i) in [(0, 0), (3, 3)] {
        let Err(e) = ds.shard(n, i) else { panic!("shard({n}, {i}) should be refused") };
        let e = e.to_string();
        assert!(e.contains("expected 0 <= index < num_shards") && e.contains(&format!("index {i} of {n} shards")), "{e}");
    }
}

#[test]
fn sample_from_datasets_draws_by_weight_and_keeps_every_element_without_stopping() {
    // Two endless sources, 0s and 1s: the share of 1s follows the weights.
    let zeros = Dataset::from_tensor_slices(t(&[0.0], &[1])).unwrap().repeat(None);
    let ones = Dataset::from_tensor_slices(t(&[1.0], &[1])).unwrap().repeat(None);
    let mixed = Dataset::sample_from_datasets(vec![zeros.clone(), ones.clone()], Some(vec![0.8, 0.2]), Some(5), false).unwrap();
    assert_eq!(mixed.cardinality(), Cardinality::Infinite);
    let draws = values(&mixed.take(5000));
    let share = draws.iter().sum::<f32>() / 5000.0;
    assert!((share - 0.2).abs() < 0.02, "share of the 0.2-weighted source: {share}");
    // The same seed draws the same first pass; the next pass of the same dataset draws anew.
    let again = Dataset::sample_from_datasets(vec![zeros.clone(), ones.clone()], Some(vec![0.8, 0.2]), Some(5), false).unwrap();
    assert_eq!(values(&again.take(5000)), draws);
    assert_ne!(values(&mixed.take(5000)), draws);
    // Finite sources: without stopping, each element comes out exactly once.
    let (a, b) = (scalars(30), Dataset::from_tensor_slices(t(&[100.0, 101.0, 102.0], &[3])).unwrap());
    let all = Dataset::sample_from_datasets(vec![a.clone(), b.clone()], None, Some(1), false).unwrap();
    assert_eq!(all.cardinality(), Cardinality::Finite(33));
    let mut got = values(&all);
    got.sort_by(f32::total_cmp);
    let mut want: Vec<f32> = (0..30).map(|i| i as f32).chain([100.0, 101.0, 102.0]).collect();
    want.sort_by(f32::total_cmp);
    assert_eq!(got, want);
    // With stop_on_empty_dataset, the first empty source ends it: the 3-element one runs out
    // long before the 30-element one.
    let stopped = values(&Dataset::sample_from_datasets(vec![a.clone(), b.clone()], None, Some(1), true).unwrap());
    assert!(stopped.len() < 33 && stopped.iter().filter(|v| **v >= 100.0).count() == 3, "{stopped:?}");
    let Err(e) = Dataset::sample_from_datasets(vec![], None, None, false) else { panic!("no datasets") };
    assert!(e.to_string().contains("expected at least one dataset"), "{e}");
    for bad in [vec![1.0], vec![1.0, -1.0], vec![0.0, 0.0], vec![f64::NAN, 1.0]] {
        let Err(e) = Dataset::sample_from_datasets(vec![a.clone(), b.clone()], Some(bad.clone()), None, false) else { panic!("{bad:?}") };
        assert!(e.to_string().contains("expected 2 finite, non-negative weights"), "{e}");
    }
}

#[test]
fn rejection_resample_balances_classes_and_tags_each_element_with_its_class() {
    // 90% class 0, 10% class 1, resampled to half and half.
    let labels: Vec<f32> = (0..4000).map(|i| if i % 10 == 0 { 1.0 } else { 0.0 }).collect();
    let ds = Dataset::from_tensor_slices(t(&labels, &[4000])).unwrap();
    let class_of = |e: &Element| Ok(e.tensor()?.to_scalar::<f32>()? as usize);
    for initial in [Some(&[0.9, 0.1][..]), None] {
        let balanced = ds.rejection_resample(class_of, &[0.5, 0.5], initial, Some(11)).unwrap();
        let pairs = balanced.collect().unwrap();
        let classes: Vec<i64> = pairs.iter().map(|p| p.get(0).unwrap().tensor().unwrap().to_scalar::<i64>().unwrap()).collect();
        let elements: Vec<f32> = pairs.iter().map(|p| p.get(1).unwrap().tensor().unwrap().to_scalar::<f32>().unwrap()).collect();
        assert!(classes.iter().zip(&elements).all(|(c, e)| *c as f32 == *e), "each pair is (class, element)");
        let share = classes.iter().filter(|c| **c == 1).count() as f64 / classes.len() as f64;
        // Class 1 (400 elements) is never rejected once it is the rarest; class 0 is kept at 1/9.
        assert!((share - 0.5).abs() < 0.06 && classes.len() > 600, "initial {initial:?}: {} kept, share of class 1 {share}", classes.len());
    }
    let bad = ds.rejection_resample(|_| Ok(2), &[0.5, 0.5], None, Some(1)).unwrap();
    let e = bad.iter().next().unwrap().err().unwrap().to_string();
    assert!(e.contains("class_func returned class 2, outside the 2 classes"), "{e}");
    assert!(ds.rejection_resample(class_of, &[0.5, -0.5], None, None).is_err());
    assert!(ds.rejection_resample(class_of, &[0.5, 0.5], Some(&[1.0]), None).is_err());
}

#[test]
fn int32_labels_batch_and_cache_like_int64() {
    let labels = Tensor::from_vec(vec![3i32, -1, 7, 0, 5], vec![5], Device::Cpu).unwrap();
    let path = temp_path("cache_int32.bin");
    let ds = Dataset::from_tensor_slices((t(&[0., 1., 2., 3., 4.], &[5]), labels)).unwrap().cache_to_file(&path).batch(2, false);
    for pass in 0..2 {
        let batches = ds.collect().unwrap();
        let got: Vec<Vec<i32>> = batches.iter().map(|b| b.get(1).unwrap().tensor().unwrap().to_vec::<i32>().unwrap()).collect();
        assert_eq!(got, vec![vec![3, -1], vec![7, 0], vec![5]], "pass {pass} (the second reads the cache file)");
    }
    std::fs::remove_file(&path).unwrap();
}
