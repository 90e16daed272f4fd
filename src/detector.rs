//! Phi accrual failure detection: how suspicious is a peer's silence.
//!
//! Each monitored peer has an [`ArrivalWindow`]: the last heartbeat time and a
//! bounded ring of the intervals between heartbeats. `phi` is
//! `-log10(P(a silence this long))` under a model of those intervals, so phi 8
//! means about one chance in 10^8 that a live peer would be this late. A peer is
//! convicted when phi exceeds the threshold.
//!
//! Two models:
//! - [`PhiModel::Exponential`], the reference Gossiper's (and chitchat's): intervals
//!   are exponential with the window's mean, so `phi = elapsed / (mean * ln 10)`.
//!   With 1 s heartbeats a peer is convicted after about 18 s of silence.
//! - [`PhiModel::Normal`], Hayashibara et al. as Akka runs it: a normal
//!   distribution of the intervals, with a floor on the standard deviation and an
//!   acceptable pause added to the mean. With 1 s heartbeats and a 3 s pause it
//!   convicts after about 4.5 to 5.3 s.

use core::time::Duration;

use crate::Timestamp;

/// How intervals between heartbeats are modelled.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PhiModel {
    /// Intervals are exponential with the observed mean (the reference Gossiper).
    Exponential,
    /// Intervals are normal (Hayashibara et al.; Akka's defaults: 100 ms minimum
    /// standard deviation, 3 s acceptable pause, 1 s first estimate).
    Normal {
        /// Floor on the standard deviation, so a very regular peer is not convicted
        /// for a small delay.
        min_std_dev: Duration,
        /// Added to the mean: pauses this long are expected (GC, scheduling).
        acceptable_pause: Duration,
        /// The interval assumed before any was seen; the window starts with two
        /// samples at this value plus and minus a quarter.
        first_estimate: Duration,
    },
}

impl PhiModel {
    /// Akka's defaults for the normal model.
    pub const AKKA: PhiModel = PhiModel::Normal {
        min_std_dev: Duration::from_millis(100),
        acceptable_pause: Duration::from_secs(3),
        first_estimate: Duration::from_secs(1),
    };
}

/// Failure detector settings.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DetectorConfig {
    /// The model of intervals.
    pub model: PhiModel,
    /// Convict when phi exceeds this (default 8).
    pub threshold: f64,
    /// Intervals kept per peer (default 100; at 2 bytes each; 2 to
    /// [`DetectorConfig::MAX_WINDOW`]).
    pub window: usize,
    /// The first interval recorded for a peer (the reference's 2 s), exponential
    /// model only.
    pub initial_interval: Duration,
    /// Intervals longer than this are not recorded (the reference's 2 s): a long
    /// silence must not teach the detector that long silences are normal.
    pub max_interval: Duration,
    /// Intervals shorter than this are not recorded (the arrival still counts):
    /// the same heartbeat relayed along two paths arrives twice within
    /// milliseconds, and such intervals would make the mean collapse and a short
    /// silence look like a crash. Scylla drops intervals under 1 s; default 500 ms.
    pub min_interval: Duration,
}

impl DetectorConfig {
    /// The largest window (65,536 intervals, 128 KiB per peer); a larger
    /// `window` is rejected by [`Config::validate`](crate::Config::validate).
    pub const MAX_WINDOW: usize = 1 << 16;

    /// A silence no window made under these settings convicts: phi stays at or
    /// below the threshold for any shorter time since the last heartbeat. A node
    /// need not look at a peer it heard from more recently than this.
    ///
    /// Every interval a window holds is at least the smallest it can record
    /// (`min_interval`, or a first estimate), so its mean is too. Exponential:
    /// phi passes the threshold after `threshold * ln 10 * mean`. Normal: phi is
    /// at most log10(2) until the mean plus the acceptable pause has passed, so
    /// that much for thresholds above it, and nothing otherwise.
    pub(crate) fn quiet_floor(&self) -> Duration {
        let shortest = |first: Duration| f64::from(millis(self.min_interval.min(first)));
        let ms = match self.model {
            PhiModel::Exponential => {
                self.threshold * core::f64::consts::LN_10 * shortest(self.initial_interval).max(1.0)
            }
            PhiModel::Normal { acceptable_pause, first_estimate, .. } if self.threshold > 0.302 => {
                let est = first_estimate.as_millis().min(u128::from(u16::MAX)) as u64;
                let low = Duration::from_millis(est - est / 4);
                acceptable_pause.as_secs_f64() * 1000.0 + shortest(low)
            }
            PhiModel::Normal { .. } => 0.0,
        };
        // a millisecond short of it, against rounding
        Duration::from_millis((ms.max(0.0) as u64).saturating_sub(1))
    }
}

impl Default for DetectorConfig {
    /// The reference Gossiper's detector: exponential model, threshold 8.
    fn default() -> Self {
        DetectorConfig {
            model: PhiModel::Exponential,
            threshold: 8.0,
            window: 100,
            initial_interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(2),
            min_interval: Duration::from_millis(500),
        }
    }
}

/// A bounded ring of the intervals between one peer's heartbeats, in milliseconds
/// (as 16-bit numbers: longer intervals count as 65.5 s, far beyond any that
/// matters), with running sums so phi costs O(1).
///
/// ```
/// use core::time::Duration;
/// use rumormill::{ArrivalWindow, DetectorConfig, Timestamp};
/// let config = DetectorConfig::default();
/// let mut w = ArrivalWindow::new(&config, Timestamp::from_secs(100));
/// for s in 101..=110 {
///     w.heartbeat(&config, Timestamp::from_secs(s));
/// }
/// assert!(w.phi(&config, Timestamp::from_secs(111)) < 1.0);
/// assert!(w.phi(&config, Timestamp::from_secs(140)) > config.threshold);
/// ```
#[derive(Clone, Debug)]
pub struct ArrivalWindow {
    last: Timestamp,
    /// The ring; its slots under the stage are stale until the stage moves on.
    ring: Box<[u16]>,
    /// The ring's slots from `next` rounded down to a multiple of `STAGE` (the
    /// next ones to be written, and the intervals they evict), kept inline: a
    /// node records an interval of each of its peers every round, and a write
    /// into each peer's ring, a cache line nothing else touches, was a tenth of
    /// its CPU time. The ring is touched once per `STAGE` intervals instead.
    stage: [u16; STAGE],
    /// Next slot to write.
    next: u32,
    len: u32,
    /// At most `MAX_WINDOW` 16-bit numbers: fits 32 bits.
    sum: u32,
    /// At most `MAX_WINDOW` squares of 16-bit numbers: fits 64 bits.
    sum_sq: u64,
}

/// Ring slots held inline (see [`ArrivalWindow`]): as many as keep the window at
/// 72 bytes (a peer, id included, at 152).
const STAGE: usize = 14;

impl ArrivalWindow {
    /// A window for a peer first heard from at `now`.
    pub fn new(config: &DetectorConfig, now: Timestamp) -> Self {
        let mut w = ArrivalWindow {
            last: now,
            ring: alloc::vec![0; config.window.clamp(2, DetectorConfig::MAX_WINDOW)].into_boxed_slice(),
            stage: [0; STAGE],
            next: 0,
            len: 0,
            sum: 0,
            sum_sq: 0,
        };
        match config.model {
            PhiModel::Exponential => w.push(millis(config.initial_interval)),
            PhiModel::Normal { first_estimate, .. } => {
                let est = millis(first_estimate);
                w.push(est - est / 4);
                w.push(est + est / 4);
            }
        }
        w
    }

    fn push(&mut self, interval: u16) {
        let slot = self.next as usize;
        let staged = &mut self.stage[slot % STAGE];
        if self.len as usize == self.ring.len() {
            let old = *staged;
            self.sum -= u32::from(old);
            self.sum_sq -= u64::from(old) * u64::from(old);
        } else {
            self.len += 1;
        }
        *staged = interval;
        self.sum += u32::from(interval);
        self.sum_sq += u64::from(interval) * u64::from(interval);
        let next = if slot + 1 == self.ring.len() { 0 } else { slot + 1 };
        self.next = next as u32;
        // (the stage starts at multiples of STAGE: it moves on at each one, and
        // when the ring wraps to 0)
        if next % STAGE == 0 {
            self.restage(slot - slot % STAGE, next);
        }
    }

    /// Writes the stage back into the ring at `from` and stages the slots from `to`.
    fn restage(&mut self, from: usize, to: usize) {
        let size = self.ring.len();
        let end = (from + STAGE).min(size);
        self.ring[from..end].copy_from_slice(&self.stage[..end - from]);
        let end = (to + STAGE).min(size);
        self.stage[..end - to].copy_from_slice(&self.ring[to..end]);
    }

    /// Records a heartbeat at `now`. The interval since the last one is kept unless
    /// it is shorter than `min_interval` or (exponential model) longer than
    /// `max_interval`; a time earlier than the last heartbeat is ignored.
    pub fn heartbeat(&mut self, config: &DetectorConfig, now: Timestamp) {
        if now < self.last {
            return;
        }
        // in whole milliseconds and nanoseconds, not `Duration`s: this runs for
        // every heartbeat of every peer
        let ms = now.as_millis() - self.last.as_millis();
        let ns = u128::from(ms) * 1_000_000;
        let long = ns > config.max_interval.as_nanos() && matches!(config.model, PhiModel::Exponential);
        if ns >= config.min_interval.as_nanos() && !long {
            self.push(u16::try_from(ms).unwrap_or(u16::MAX));
        }
        self.last = now;
    }

    /// When the last heartbeat arrived.
    pub fn last(&self) -> Timestamp {
        self.last
    }

    /// The mean interval, in milliseconds.
    pub fn mean(&self) -> f64 {
        self.sum as f64 / f64::from(self.len.max(1))
    }

    fn std_dev(&self) -> f64 {
        let n = f64::from(self.len.max(1));
        let mean = self.mean();
        (self.sum_sq as f64 / n - mean * mean).max(0.0).sqrt()
    }

    /// `-log10` of the probability that a live peer stays silent from its last
    /// heartbeat until `now`. Never negative; 0 right after a heartbeat.
    pub fn phi(&self, config: &DetectorConfig, now: Timestamp) -> f64 {
        let elapsed = now.saturating_since(self.last).as_secs_f64() * 1000.0;
        match config.model {
            PhiModel::Exponential => elapsed / (self.mean().max(1.0) * core::f64::consts::LN_10),
            PhiModel::Normal { min_std_dev, acceptable_pause, .. } => {
                let mean = self.mean() + acceptable_pause.as_secs_f64() * 1000.0;
                let std = self.std_dev().max(min_std_dev.as_secs_f64() * 1000.0).max(1.0);
                let y = (elapsed - mean) / std;
                // logistic approximation of the normal tail (Akka's)
                let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
                let p_later = if elapsed > mean { e / (1.0 + e) } else { 1.0 - 1.0 / (1.0 + e) };
                (-p_later.max(f64::MIN_POSITIVE).log10()).max(0.0)
            }
        }
    }

    /// Bytes this window holds (the ring plus the struct).
    pub fn memory(&self) -> usize {
        core::mem::size_of::<Self>() + self.ring.len() * core::mem::size_of::<u16>()
    }
}

fn millis(d: Duration) -> u16 {
    u16::try_from(d.as_millis()).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crossing(config: &DetectorConfig, w: &ArrivalWindow) -> f64 {
        // first millisecond after the last heartbeat at which phi passes 8
        let start = w.last().as_millis();
        (0..120_000u64).find(|ms| w.phi(config, Timestamp::from_millis(start + ms)) > 8.0).unwrap() as f64 / 1000.0
    }

    /// theory.md section 5: with 1 s heartbeats and Akka's defaults, phi crosses 8
    /// at about 4.52 s when the deviation is at its 100 ms floor, and at about
    /// 5.31 s with the bootstrap's 250 ms.
    #[test]
    fn normal_model_crosses_8_where_akka_does() {
        let config = DetectorConfig { model: PhiModel::AKKA, window: 1000, ..DetectorConfig::default() };
        // bootstrap only: samples 750 and 1250 ms, deviation 250 ms
        let w = ArrivalWindow::new(&config, Timestamp::from_secs(1000));
        let t = crossing(&config, &w);
        assert!((t - 5.31).abs() < 0.02, "crossed at {t} s");
        // regular 1 s heartbeats: the deviation falls to its 100 ms floor
        let mut w = ArrivalWindow::new(&config, Timestamp::from_secs(1000));
        for s in 1001..=3000 {
            w.heartbeat(&config, Timestamp::from_secs(s));
        }
        let t = crossing(&config, &w);
        assert!((t - 4.52).abs() < 0.02, "crossed at {t} s");
    }

    #[test]
    fn exponential_model_convicts_after_about_18_means() {
        let config = DetectorConfig::default();
        let mut w = ArrivalWindow::new(&config, Timestamp::from_secs(1000));
        for s in 1001..=1200 {
            w.heartbeat(&config, Timestamp::from_secs(s));
        }
        // the first interval (2 s) has left the window: mean 1 s
        let t = crossing(&config, &w);
        assert!((t - 18.42).abs() < 0.02, "crossed at {t} s");
    }

    #[test]
    fn phi_is_monotone_in_elapsed_time_and_zero_right_after_a_heartbeat() {
        for model in [PhiModel::Exponential, PhiModel::AKKA] {
            let config = DetectorConfig { model, ..DetectorConfig::default() };
            let mut w = ArrivalWindow::new(&config, Timestamp::from_secs(10));
            for ms in [1000, 1100, 900, 1300, 700] {
                let t = Timestamp::from_millis(w.last().as_millis() + ms);
                w.heartbeat(&config, t);
            }
            let base = w.last().as_millis();
            assert!(w.phi(&config, w.last()) < 0.5);
            let mut prev = 0.0;
            for ms in (0..30_000).step_by(10) {
                let phi = w.phi(&config, Timestamp::from_millis(base + ms));
                assert!(phi >= prev, "{model:?}: phi fell at {ms} ms");
                prev = phi;
            }
        }
    }

    /// The staged ring keeps exactly the last `window` intervals, for windows
    /// shorter than, equal to and longer than the stage, across many wraps.
    #[test]
    fn the_window_holds_exactly_the_last_intervals() {
        for window in [2, 3, 13, 14, 15, 28, 29, 100, 1000] {
            let config = DetectorConfig { window, ..DetectorConfig::default() };
            let mut w = ArrivalWindow::new(&config, Timestamp::from_secs(0));
            let mut model = alloc::vec![millis(config.initial_interval)];
            let mut x = 12345u64;
            for _ in 0..3 * window + 50 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let interval = (x >> 33) as u16;
                w.push(interval);
                model.push(interval);
                let kept = &model[model.len().saturating_sub(window)..];
                let sum: u64 = kept.iter().map(|&v| u64::from(v)).sum();
                let sum_sq: u64 = kept.iter().map(|&v| u64::from(v) * u64::from(v)).sum();
                assert_eq!((w.len as usize, u64::from(w.sum), w.sum_sq), (kept.len(), sum, sum_sq), "window {window}");
            }
        }
    }

    /// No window convicts a peer silent for less than the quiet floor, however
    /// short its intervals, and the floor is not far below the real crossing.
    #[test]
    fn nothing_is_convicted_within_the_quiet_floor() {
        for model in [PhiModel::Exponential, PhiModel::AKKA] {
            for threshold in [0.5, 1.0, 8.0, 16.0] {
                let config = DetectorConfig { model, threshold, ..DetectorConfig::default() };
                let floor = config.quiet_floor().as_millis() as u64;
                assert!(floor > 0, "{model:?} {threshold}");
                // windows of the shortest intervals it records, and of regular ones
                for step in [config.min_interval.as_millis() as u64, 1000, 1900] {
                    let mut w = ArrivalWindow::new(&config, Timestamp::from_secs(100));
                    for _ in 0..300 {
                        let t = Timestamp::from_millis(w.last().as_millis() + step);
                        w.heartbeat(&config, t);
                    }
                    let last = w.last().as_millis();
                    assert!(
                        w.phi(&config, Timestamp::from_millis(last + floor)) <= threshold,
                        "{model:?} {threshold} {step}"
                    );
                }
            }
            // thresholds below log10(2) give no floor under the normal model
            let low = DetectorConfig { model, threshold: 0.2, ..DetectorConfig::default() };
            assert_eq!(low.quiet_floor().is_zero(), model != PhiModel::Exponential);
        }
        // with the defaults, a regular peer crosses at 18.4 s: the floor is 9.2 s
        assert_eq!(DetectorConfig::default().quiet_floor(), Duration::from_millis(9209));
    }

    #[test]
    fn the_window_is_bounded_and_small() {
        let config = DetectorConfig::default();
        let mut w = ArrivalWindow::new(&config, Timestamp::from_secs(0));
        for s in 1..10_000 {
            w.heartbeat(&config, Timestamp::from_secs(s));
        }
        assert_eq!(w.len as usize, config.window);
        assert!(w.memory() <= 1024, "{} bytes", w.memory());
        // long silences are not learned (reference's max interval)
        let before = w.mean();
        w.heartbeat(&config, Timestamp::from_secs(20_000));
        assert_eq!(w.mean(), before);
        // a full window of the longest intervals: the sums stay exact
        let widest = DetectorConfig { window: DetectorConfig::MAX_WINDOW, ..config };
        let mut full = ArrivalWindow::new(&widest, Timestamp::from_secs(0));
        for i in 0..2 * DetectorConfig::MAX_WINDOW {
            full.push(if i % 2 == 0 { u16::MAX } else { 1 });
        }
        assert_eq!(full.mean(), (f64::from(u16::MAX) + 1.0) / 2.0);
        assert!((full.std_dev() - (f64::from(u16::MAX) - 1.0) / 2.0).abs() < 1e-6);
        // the largest sum fits its 32 bits
        for _ in 0..DetectorConfig::MAX_WINDOW {
            full.push(u16::MAX);
        }
        assert_eq!(full.mean(), f64::from(u16::MAX));
        // time going backwards is ignored
        w.heartbeat(&config, Timestamp::from_secs(5));
        assert_eq!(w.last(), Timestamp::from_secs(20_000));
    }
}
