//! Sampling of small heap allocations by bytes.
//!
//! Sample points fall on the byte stream of a thread's allocations as a Poisson process with
//! mean `SAMPLE_BYTES` between points, so an allocation of `s` bytes holds at least one point
//! with probability `p = 1 - exp(-s/mean)`. A sampled allocation stands for `s / p` bytes, which
//! makes every site's sum an unbiased estimate of its true bytes (the same scheme as tcmalloc's
//! and Go's heap profilers). The common case costs a subtraction and a compare.

use std::sync::atomic::Ordering;

use crate::{options, sys, thread};

/// If this allocation is sampled, the bytes it stands for.
#[inline(always)]
pub fn weight(size: u64) -> Option<u64> {
    let t = thread::state();
    t.until_sample -= size as i64;
    if t.until_sample > 0 {
        return None;
    }
    sampled(t, size)
}

#[cold]
fn sampled(t: &mut thread::ThreadState, size: u64) -> Option<u64> {
    let mean = options::SAMPLE_BYTES.load(Ordering::Relaxed);
    if mean == 0 {
        t.until_sample = i64::MAX;
        return None;
    }
    let first = t.rng == 0;
    t.until_sample = next_interval(t, mean);
    if first {
        // The thread's first call only seeds its generator: starting every thread at 0 would
        // sample every thread's first allocation.
        return None;
    }
    let p = 1.0 - (-(size as f64) / mean as f64).exp();
    if p <= 0.0 {
        return Some(size);
    }
    Some(((size as f64) / p).round() as u64)
}

fn next_interval(t: &mut thread::ThreadState, mean: u64) -> i64 {
    if t.rng == 0 {
        let seed =
            sys::realtime_ns() ^ ((t as *const _ as u64).rotate_left(32)) ^ 0x9e37_79b9_7f4a_7c15;
        t.rng = seed | 1;
    }
    // xorshift64*: plenty for sampling, no state beyond one word.
    let mut x = t.rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t.rng = x;
    let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
    // Uniform in (0, 1], then exponential with the given mean.
    let u = ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let v = -u.ln() * mean as f64;
    (v as i64).max(1)
}
