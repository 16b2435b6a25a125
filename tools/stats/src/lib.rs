//! The statistics the tools report, computed one way.
//!
//! Convention: every percentile here, the median included, is the **nearest-rank**
//! percentile. Of `n` values sorted ascending, the p-th percentile is the value at rank
//! ⌈p·n/100⌉ (ranks from 1, and at least 1): the smallest measured value with at least
//! p % of the values at or below it. It is always a value that was measured, never an
//! interpolation between two, so a p99 is a latency some request really had; for an even
//! count the median is the lower of the middle two.

use std::time::Duration;

use serde::Serialize;

/// The nearest-rank `p`-th percentile (`p` in percent, 0–100) of `sorted`, which must be
/// in ascending order; `None` when it is empty. `p` at or below 0 gives the minimum.
pub fn percentile<T: Copy + PartialOrd>(sorted: &[T], p: f64) -> Option<T> {
    debug_assert!(sorted.is_sorted(), "percentile of unsorted values");
    if sorted.is_empty() {
        return None;
    }
    // p·n before the division keeps the rank exact for whole percents: (7 / 100) · 100
    // is 7.000000000000001 in floating point, and would round up to rank 8.
    let rank = (p.clamp(0.0, 100.0) * sorted.len() as f64 / 100.0).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The latencies of one run, summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latencies {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Latencies {
    /// Summarises `samples` (in any order); all zero when there are none.
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let count = samples.len();
        let at = |p| percentile(&samples, p).unwrap_or_default();
        let total: Duration = samples.iter().sum();
        Self {
            count,
            p50: at(50.0),
            p99: at(99.0),
            max: samples.last().copied().unwrap_or_default(),
            mean: u32::try_from(count)
                .ok()
                .and_then(|count| total.checked_div(count))
                .unwrap_or_default(),
        }
    }
}

/// The median and range of repeated measurements of one figure (one value per round).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Nearest-rank, as every percentile here.
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no values.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut values: Vec<f64> = values.into_iter().collect();
        values.sort_by(f64::total_cmp);
        Some(Self {
            median: percentile(&values, 50.0)?,
            min: *values.first()?,
            max: *values.last()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_micros).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let hundred = micros(1..=100);
        let at = |p| percentile(&hundred, p).map(|d: Duration| d.as_micros());
        assert_eq!(at(50.0), Some(50));
        assert_eq!(at(99.0), Some(99));
        assert_eq!(at(100.0), Some(100));
        assert_eq!(at(7.0), Some(7));
        assert_eq!(at(99.5), Some(100));
        assert_eq!(at(0.0), Some(1));
        assert_eq!(at(-3.0), Some(1));
        assert_eq!(at(250.0), Some(100));

        // Rank ⌈p·n/100⌉: with 10 values p99 is the largest, p50 the 5th.
        let ten = micros(1..=10);
        assert_eq!(percentile(&ten, 99.0), Some(Duration::from_micros(10)));
        assert_eq!(percentile(&ten, 50.0), Some(Duration::from_micros(5)));
        assert_eq!(percentile(&ten, 51.0), Some(Duration::from_micros(6)));

        assert_eq!(percentile(&ten[..1], 99.0), Some(Duration::from_micros(1)));
        assert_eq!(percentile::<Duration>(&[], 50.0), None);
    }

    #[test]
    fn percentiles_are_measured_values_never_interpolated() {
        assert_eq!(percentile(&[1.0, 2.0, 10.0, 20.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 10.0, 20.0], 75.0), Some(10.0));
    }

    #[test]
    fn latencies_summarise_unsorted_samples() {
        let run = Latencies::of(micros((1..=200).rev()));
        assert_eq!(run.count, 200);
        assert_eq!(run.p50, Duration::from_micros(100));
        assert_eq!(run.p99, Duration::from_micros(198));
        assert_eq!(run.max, Duration::from_micros(200));
        assert_eq!(run.mean, Duration::from_nanos(100_500));
        assert_eq!(Latencies::of(Vec::new()), Latencies::default());
    }

    #[test]
    fn spreads_use_the_same_median() {
        let odd = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        // Even count: the lower middle value, as `percentile(…, 50.0)`.
        let even = Spread::of([4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((even.median, even.min, even.max), (2.0, 1.0, 4.0));
        assert_eq!(Spread::of([7.5]).map(|s| s.median), Some(7.5));
        assert_eq!(Spread::of([]), None);
    }
}
