//! A timeline of what training spends its time on, in Chrome's trace format (open it in
//! Perfetto or `chrome://tracing`): layer forward passes, each backward op, optimizer updates.
//! Off by default; while off, a span costs one relaxed atomic load.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);
static EVENTS: Mutex<Vec<Event>> = Mutex::new(Vec::new());
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static THREAD: u64 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

fn epoch() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// One timed span: what ran, its category (`forward`, `backward`, `optimizer`, ...), when it
/// started and how long it took, in microseconds, and a small id of the thread that ran it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// What ran (a layer name, an op name).
    pub name: String,
    /// The kind of work.
    pub category: &'static str,
    /// Start, in µs since the first profiled moment of the process.
    pub start_us: f64,
    /// Duration in µs.
    pub duration_us: f64,
    /// The thread, numbered from 1 in order of first use.
    pub thread: u64,
}

/// Starts recording (dropping anything recorded before).
pub fn start() {
    epoch();
    EVENTS.lock().unwrap_or_else(|e| e.into_inner()).clear();
    ENABLED.store(true, Ordering::Release);
}

/// Stops recording and returns the spans, in the order they ended.
pub fn stop() -> Vec<Event> {
    ENABLED.store(false, Ordering::Release);
    std::mem::take(&mut *EVENTS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Whether spans are being recorded.
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Runs `f`, recording it as a span of `category` named by `name()` when profiling is on (the
/// name is only built then).
pub fn span<R>(category: &'static str, name: impl FnOnce() -> String, f: impl FnOnce() -> R) -> R {
    if !is_enabled() {
        return f();
    }
    let begin = Instant::now();
    let result = f();
    let end = Instant::now();
    let event = Event {
        name: name(),
        category,
        start_us: begin.duration_since(epoch()).as_secs_f64() * 1e6,
        duration_us: end.duration_since(begin).as_secs_f64() * 1e6,
        thread: THREAD.with(|t| *t),
    };
    EVENTS.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    result
}

/// The spans as a Chrome trace (`{"traceEvents": [...]}` of complete `"X"` events).
pub fn chrome_trace(events: &[Event]) -> String {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let rows: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{{\"name\":\"{}\",\"cat\":\"{}\",\"ph\":\"X\",\"ts\":{:.3},\"dur\":{:.3},\"pid\":1,\"tid\":{}}}",
                escape(&e.name),
                e.category,
                e.start_us,
                e.duration_us,
                e.thread
            )
        })
        .collect();
    format!("{{\"traceEvents\":[\n{}\n],\"displayTimeUnit\":\"ms\"}}\n", rows.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_recorded_only_while_on_and_render_as_chrome_events() {
        assert_eq!(span("x", || unreachable!("no name is built while off"), || 5), 5);
        start();
        let v = span(
            "forward",
            || "dense".to_string(),
            || {
                std::thread::sleep(std::time::Duration::from_millis(2));
                7
            },
        );
        span("backward", || "matmul \"q\"".to_string(), || ());
        // Other tests may run ops on their threads meanwhile: keep this thread's spans.
        let me = THREAD.with(|t| *t);
        let events: Vec<Event> = stop().into_iter().filter(|e| e.thread == me).collect();
        assert_eq!(v, 7, "the span returns what its closure returns");
        assert_eq!(events.len(), 2);
        assert_eq!((events[0].name.as_str(), events[0].category), ("dense", "forward"));
        assert!(events[0].duration_us >= 2000.0 && events[1].start_us >= events[0].start_us + events[0].duration_us);
        span("x", || "after".to_string(), || ());
        assert!(stop().iter().all(|e| e.thread != me), "nothing is recorded after stop");
        let trace = chrome_trace(&events);
        assert!(trace.starts_with("{\"traceEvents\":[") && trace.contains("\"ph\":\"X\"") && trace.contains("matmul \\\"q\\\""), "{trace}");
    }
}
