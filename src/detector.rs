//! Phi accrual failure detection: how suspicious is a peer's silence.
//!
//! Each monitored peer has an [`ArrivalWindow`]: the last heartbeat time and the
//! sums of a bounded window of the intervals between heartbeats. `phi` is
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
    /// Intervals kept per peer, at most (default 100; 2 to
    /// [`DetectorConfig::MAX_WINDOW`]). The oldest go a quarter of the window at a
    /// time, so a full window holds the last three quarters to all of it (see
    /// [`ArrivalWindow`]); its memory is the same whatever its length.
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

/// The intervals between one peer's heartbeats, in milliseconds (as 16-bit
/// numbers: longer intervals count as 65.5 s, far beyond any that matters), kept
/// as the sums of four blocks of consecutive intervals so phi costs O(1).
///
/// The window holds the most recent intervals, at most
/// [`DetectorConfig::window`] of them. It lets go of the oldest a block at a time
/// (a quarter of the window), so once full it holds between three quarters and
/// all of the window: with the default of 100, the last 76 to 100 intervals.
/// Windows of 2 and 3 hold exactly the last 2 and 3. Keeping sums rather than the
/// intervals themselves makes the window 64 bytes whatever its length, with
/// nothing on the heap: a node records an interval of each of its peers every
/// round, and a ring of the intervals, a cache line per peer that nothing else
/// touches, cost a tenth of its CPU time.
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
/// assert_eq!(w.memory(), 64);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "WindowForm", into = "WindowForm")
)]
pub struct ArrivalWindow {
    last: Timestamp,
    /// Each block's sum (a block holds at most `MAX_WINDOW / BLOCKS` 16-bit
    /// numbers: fits 32 bits).
    sums: [u32; BLOCKS],
    /// Each block's sum of squares.
    squares: [u64; BLOCKS],
    /// The window's length, less one (it is 2 to `MAX_WINDOW`).
    window_less_one: u16,
    /// Intervals in the block being filled.
    filling: u16,
    /// The block being filled.
    current: u8,
    /// Every block has been filled once: the others are full.
    wrapped: bool,
}

/// Blocks of a window (see [`ArrivalWindow`]).
const BLOCKS: usize = 4;

/// An [`ArrivalWindow`] as serde writes and reads it: the same fields, checked on
/// the way in so that no later heartbeat can index or overflow out of bounds.
#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
struct WindowForm {
    last: Timestamp,
    sums: [u32; BLOCKS],
    squares: [u64; BLOCKS],
    window: u32,
    filling: u16,
    current: u8,
    wrapped: bool,
}

#[cfg(feature = "serde")]
impl From<ArrivalWindow> for WindowForm {
    fn from(w: ArrivalWindow) -> Self {
        let ArrivalWindow { last, sums, squares, window_less_one, filling, current, wrapped } = w;
        WindowForm { last, sums, squares, window: u32::from(window_less_one) + 1, filling, current, wrapped }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<WindowForm> for ArrivalWindow {
    type Error = &'static str;
    fn try_from(f: WindowForm) -> Result<Self, Self::Error> {
        let Some(window_less_one) = f.window.checked_sub(1).and_then(|w| u16::try_from(w).ok()).filter(|w| *w >= 1)
        else {
            return Err("window out of range");
        };
        let w = ArrivalWindow {
            last: f.last,
            sums: f.sums,
            squares: f.squares,
            window_less_one,
            filling: f.filling,
            current: f.current,
            wrapped: f.wrapped,
        };
        if u32::from(w.current) >= w.blocks() {
            return Err("current block out of range");
        }
        if w.filling == 0 || u32::from(w.filling) > w.block_size(usize::from(w.current)) {
            return Err("filling out of range");
        }
        for i in 0..BLOCKS {
            let size = if (i as u32) < w.blocks() { u64::from(w.block_size(i)) } else { 0 };
            if u64::from(w.sums[i]) > size * u64::from(u16::MAX) || w.squares[i] > size * u64::from(u16::MAX).pow(2) {
                return Err("block sums out of range");
            }
        }
        Ok(w)
    }
}

impl ArrivalWindow {
    /// A window for a peer first heard from at `now`.
    pub fn new(config: &DetectorConfig, now: Timestamp) -> Self {
        let window = config.window.clamp(2, DetectorConfig::MAX_WINDOW);
        let mut w = ArrivalWindow {
            last: now,
            sums: [0; BLOCKS],
            squares: [0; BLOCKS],
            window_less_one: (window - 1) as u16,
            filling: 0,
            current: 0,
            wrapped: false,
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

    fn window(&self) -> u32 {
        u32::from(self.window_less_one) + 1
    }

    /// How many blocks the window has: `BLOCKS`, or one per interval for a
    /// window shorter than that.
    fn blocks(&self) -> u32 {
        self.window().min(BLOCKS as u32)
    }

    /// How many intervals block `i` (of [`ArrivalWindow::blocks`]) holds when
    /// full: the blocks' sizes add up to the window. (No division by a variable:
    /// this runs for every heartbeat of every peer.)
    fn block_size(&self, i: usize) -> u32 {
        let window = self.window();
        if window < BLOCKS as u32 { 1 } else { window / BLOCKS as u32 + u32::from((i as u32) < window % BLOCKS as u32) }
    }

    fn push(&mut self, interval: u16) {
        let mut i = usize::from(self.current);
        if u32::from(self.filling) == self.block_size(i) {
            // the block is full: move on to the next, whose intervals are the
            // oldest (when the window is full; before that it is empty)
            i = if i + 1 == self.blocks() as usize { 0 } else { i + 1 };
            self.wrapped |= i == 0;
            self.sums[i] = 0;
            self.squares[i] = 0;
            self.filling = 0;
            self.current = i as u8;
        }
        self.sums[i] += u32::from(interval);
        self.squares[i] += u64::from(interval) * u64::from(interval);
        self.filling += 1;
    }

    /// How many intervals it holds.
    fn len(&self) -> u32 {
        let current = usize::from(self.current);
        let others = if self.wrapped {
            self.window() - self.block_size(current)
        } else {
            (0..current).map(|i| self.block_size(i)).sum()
        };
        others + u32::from(self.filling)
    }

    fn sum(&self) -> u64 {
        self.sums.iter().map(|&s| u64::from(s)).sum()
    }

    fn sum_sq(&self) -> u64 {
        self.squares.iter().sum()
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
        self.sum() as f64 / f64::from(self.len().max(1))
    }

    fn std_dev(&self) -> f64 {
        let n = f64::from(self.len().max(1));
        let mean = self.mean();
        (self.sum_sq() as f64 / n - mean * mean).max(0.0).sqrt()
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

    /// Bytes this window holds (all inline: 64).
    pub fn memory(&self) -> usize {
        core::mem::size_of::<Self>()
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

    /// The window holds the most recent intervals: all of them until it is full,
    /// then between `window - ceil(window / 4) + 1` and `window` of them (exactly
    /// `window` for windows of 2 and 3), across many wraps.
    #[test]
    fn the_window_holds_the_last_intervals_less_at_most_a_block() {
        for window in [2, 3, 4, 5, 7, 13, 14, 100, 101, 1000, 1003] {
            let config = DetectorConfig { window, ..DetectorConfig::default() };
            let mut w = ArrivalWindow::new(&config, Timestamp::from_secs(0));
            let mut history = alloc::vec![millis(config.initial_interval)];
            let block = window.div_ceil(4);
            let (mut shortest, mut x) = (window, 12345u64);
            for _ in 0..3 * window + 50 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let interval = (x >> 33) as u16;
                w.push(interval);
                history.push(interval);
                let len = w.len() as usize;
                if history.len() <= window {
                    assert_eq!(len, history.len(), "window {window}: nothing dropped before it is full");
                } else {
                    assert!(len <= window && len + block > window, "window {window}: holds {len}");
                    shortest = shortest.min(len);
                    if window <= 3 {
                        assert_eq!(len, window);
                    }
                }
                let kept = &history[history.len() - len..];
                let sum: u64 = kept.iter().map(|&v| u64::from(v)).sum();
                let sum_sq: u64 = kept.iter().map(|&v| u64::from(v) * u64::from(v)).sum();
                assert_eq!((w.sum(), w.sum_sq()), (sum, sum_sq), "window {window}: the last {len} intervals");
            }
            // it does let go of a whole block at a time
            if window > 3 {
                assert_eq!(shortest, window - block + 1, "window {window}");
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
        assert!((76..=100).contains(&w.len()), "{} intervals", w.len());
        assert_eq!(w.memory(), 64);
        // long silences are not learned (reference's max interval)
        let before = w.mean();
        w.heartbeat(&config, Timestamp::from_secs(20_000));
        assert_eq!(w.mean(), before);
        // a full window of the longest intervals: the sums stay exact
        let widest = DetectorConfig { window: DetectorConfig::MAX_WINDOW, ..config };
        let mut full = ArrivalWindow::new(&widest, Timestamp::from_secs(0));
        // (with the first estimate, the blocks end full: the last 65,536 held)
        for i in 0..2 * DetectorConfig::MAX_WINDOW - 1 {
            full.push(if i % 2 == 0 { u16::MAX } else { 1 });
        }
        assert_eq!(full.len() as usize, DetectorConfig::MAX_WINDOW);
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
