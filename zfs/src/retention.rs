//! Which snapshots to keep, in the spirit of sanoid: the newest few, and the newest of each
//! recent hour, day and week.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A retention policy. A snapshot is kept when it is one of the `last` newest, or the newest
/// of its hour among the `hourly` hours up to now, of its day among the `daily` days, or of
/// its week among the `weekly` weeks (periods count back from the current one; days and weeks
/// are UTC, weeks start on Thursday, the Unix epoch's weekday). Everything else goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How many of the newest snapshots to keep whatever their age.
    pub last: usize,
    /// How many hours back to keep one snapshot per hour.
    pub hourly: u64,
    /// How many days back to keep one snapshot per day.
    pub daily: u64,
    /// How many weeks back to keep one snapshot per week.
    pub weekly: u64,
}

impl Default for Retention {
    /// The last 50, hourly for 48 hours, daily for 14 days, weekly for 8 weeks.
    fn default() -> Self {
        Retention {
            last: 50,
            hourly: 48,
            daily: 14,
            weekly: 8,
        }
    }
}

impl Retention {
    /// The indices of `created` (snapshot times, in any order) that the policy lets go.
    pub fn prune(&self, created: &[SystemTime], now: SystemTime) -> Vec<usize> {
        let mut order: Vec<usize> = (0..created.len()).collect();
        // Newest first; among equal times the later entry counts as newer.
        order.sort_by(|&a, &b| created[b].cmp(&created[a]).then(b.cmp(&a)));
        let mut keep = vec![false; created.len()];
        for &i in order.iter().take(self.last) {
            keep[i] = true;
        }
        for (period, count) in [
            (3600, self.hourly),
            (86_400, self.daily),
            (7 * 86_400, self.weekly),
        ] {
            let current = bucket(now, period);
            let mut seen = std::collections::HashSet::new();
            for &i in &order {
                let b = bucket(created[i], period);
                if current.saturating_sub(b) < count && seen.insert(b) {
                    keep[i] = true;
                }
            }
        }
        let mut doomed: Vec<usize> = (0..created.len()).filter(|&i| !keep[i]).collect();
        doomed.sort_by_key(|&i| created[i]);
        doomed
    }
}

fn bucket(t: SystemTime, period: u64) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
        / period
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn by_count_only_the_newest_stay() {
        let policy = Retention {
            last: 2,
            hourly: 0,
            daily: 0,
            weekly: 0,
        };
        let times = [at(10), at(40), at(20), at(30)];
        assert_eq!(policy.prune(&times, at(50)), vec![0, 2]);
    }

    #[test]
    fn the_newest_of_each_recent_hour_and_day_stays() {
        let policy = Retention {
            last: 1,
            hourly: 3,
            daily: 2,
            weekly: 0,
        };
        let now = 10 * 86_400 + 5 * 3600 + 100;
        let times = [
            at(now - 10),          // newest: kept by `last`
            at(now - 20),          // same hour as the newest: goes
            at(now - 3600),        // previous hour: newest of it, kept
            at(now - 3600 - 60),   // previous hour, older: goes
            at(now - 5 * 3600),    // five hours ago, today: kept only if newest of a day
            at(now - 86_400),      // yesterday's newest: kept by `daily`
            at(now - 86_400 - 60), // yesterday, older: goes
            at(now - 3 * 86_400),  // three days ago: goes
        ];
        assert_eq!(policy.prune(&times, at(now)), vec![7, 6, 4, 3, 1]);
    }
}
