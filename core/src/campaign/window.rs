//! Calling windows: the local hours and weekdays a lead may be called, in the campaign's IANA
//! time zone or the lead's own (`chrono-tz`). Pure functions of a UTC instant, so daylight
//! saving changes are handled by the zone database: a window is local wall-clock time.

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// `[active_period]` of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivePeriod {
    /// Local start, `HH:MM` (inclusive).
    pub start_time: String,
    /// Local end, `HH:MM` (exclusive); after `start_time` (no window across midnight).
    pub end_time: String,
    /// Days calls may be placed: 1 = Monday … 7 = Sunday (default Monday to Friday).
    #[serde(default = "default_days")]
    pub week_days: Vec<u8>,
    /// IANA time zone of the window (`Europe/London`, `America/New_York`).
    pub time_zone: String,
    /// A lead attribute (call list column) holding the lead's own IANA zone; a lead with it
    /// is called in its local hours instead (an unknown zone falls back to `time_zone`).
    #[serde(default)]
    pub lead_time_zone_attribute: Option<String>,
    /// Dates no call is placed, `YYYY-MM-DD`, in the local calendar of the zone the lead is
    /// called in (the lead's own, else `time_zone`): public holidays, closures. At most 1,000.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<String>,
}

/// Most holidays a window may list.
pub const MAX_HOLIDAYS: usize = 1_000;

fn default_days() -> Vec<u8> {
    vec![1, 2, 3, 4, 5]
}

/// A parsed calling window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingWindow {
    start: NaiveTime,
    end: NaiveTime,
    /// Index 0 = Monday.
    days: [bool; 7],
    tz: Tz,
    /// Sorted.
    holidays: Vec<NaiveDate>,
}

fn hhmm(field: &str, s: &str) -> anyhow::Result<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .map_err(|_| anyhow::anyhow!("active_period.{field}: {s:?} is not HH:MM"))
}

/// An IANA zone by name. Errors: unknown.
pub fn zone(name: &str) -> anyhow::Result<Tz> {
    name.parse::<Tz>()
        .map_err(|_| anyhow::anyhow!("{name:?} is not an IANA time zone"))
}

impl CallingWindow {
    /// The window of `p`. Errors: bad times (or end not after start), days outside 1–7 or
    /// none, unknown zone, a holiday that is not a `YYYY-MM-DD` date or more than 1,000 of
    /// them — each naming its field.
    pub fn new(p: &ActivePeriod) -> anyhow::Result<Self> {
        let start = hhmm("start_time", &p.start_time)?;
        let end = hhmm("end_time", &p.end_time)?;
        if end <= start {
            anyhow::bail!(
                "active_period.end_time: must be after start_time (no window across midnight)"
            );
        }
        let mut days = [false; 7];
        if p.week_days.is_empty() {
            anyhow::bail!(
                "active_period.week_days: give at least one day (1 = Monday … 7 = Sunday)"
            );
        }
        for d in &p.week_days {
            if !(1..=7).contains(d) {
                anyhow::bail!("active_period.week_days: {d} is not 1 (Monday) … 7 (Sunday)");
            }
            days[usize::from(*d - 1)] = true;
        }
        let tz = zone(&p.time_zone).map_err(|e| anyhow::anyhow!("active_period.time_zone: {e}"))?;
        if p.holidays.len() > MAX_HOLIDAYS {
            anyhow::bail!(
                "active_period.holidays: at most {MAX_HOLIDAYS} dates, got {}",
                p.holidays.len()
            );
        }
        let mut holidays = p
            .holidays
            .iter()
            .map(|d| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                    anyhow::anyhow!("active_period.holidays: {d:?} is not a YYYY-MM-DD date")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        holidays.sort_unstable();
        holidays.dedup();
        Ok(Self {
            start,
            end,
            days,
            tz,
            holidays,
        })
    }

    /// The window's own zone.
    pub fn zone(&self) -> Tz {
        self.tz
    }

    /// True when `t` is inside the window in zone `tz` (the lead's, else the window's).
    pub fn contains(&self, t: DateTime<Utc>, tz: Option<Tz>) -> bool {
        let local = t.with_timezone(&tz.unwrap_or(self.tz));
        let day = local.weekday().num_days_from_monday() as usize;
        let time = local.time();
        self.days[day]
            && time >= self.start
            && time < self.end
            && !self.is_holiday(local.date_naive())
    }

    /// True when `date` (local) is one of the holidays.
    fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holidays.binary_search(&date).is_ok()
    }

    /// The earliest instant at or after `t` inside the window (in zone `tz`): `t` itself when
    /// inside. A start time that does not exist that day (a spring-forward gap) opens at the
    /// first local time after the gap; one that exists twice (fall back) at its first.
    pub fn next_open(&self, t: DateTime<Utc>, tz: Option<Tz>) -> DateTime<Utc> {
        if self.contains(t, tz) {
            return t;
        }
        let z = tz.unwrap_or(self.tz);
        let today = t.with_timezone(&z).date_naive();
        // A week and a day, plus one day per holiday that may fall in the way.
        for k in 0..(9 + self.holidays.len() as i64) {
            let date = today + ChronoDuration::days(k);
            if !self.days[date.weekday().num_days_from_monday() as usize] || self.is_holiday(date) {
                continue;
            }
            // Both instants of a start time that exists twice (fall back): the later one can
            // be the next opening when `t` lies between them.
            for opens in instants_at_or_after(z, date.and_time(self.start)) {
                if opens >= t && self.contains(opens, Some(z)) {
                    return opens;
                }
            }
        }
        // Unreachable with at least one day: a week always has an allowed day, and each
        // holiday in the way adds one day to the scan.
        t + ChronoDuration::days(7)
    }
}

/// The UTC instants whose local time in `z` is `local` (two when it exists twice, fall
/// back), or, when it does not exist (a spring-forward gap), the first local time after it.
fn instants_at_or_after(z: Tz, local: chrono::NaiveDateTime) -> Vec<DateTime<Utc>> {
    let mut l = local;
    // A gap is at most a few hours: step forward by minutes until the time exists.
    for _ in 0..(24 * 60) {
        match z.from_local_datetime(&l) {
            chrono::LocalResult::Single(d) => return vec![d.with_timezone(&Utc)],
            chrono::LocalResult::Ambiguous(a, b) => {
                return vec![a.with_timezone(&Utc), b.with_timezone(&Utc)];
            }
            chrono::LocalResult::None => l += ChronoDuration::minutes(1),
        }
    }
    vec![Utc.from_utc_datetime(&local)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: &str, end: &str, days: Vec<u8>, tz: &str) -> CallingWindow {
        CallingWindow::new(&ActivePeriod {
            start_time: start.into(),
            end_time: end.into(),
            week_days: days,
            time_zone: tz.into(),
            lead_time_zone_attribute: None,
            holidays: Vec::new(),
        })
        .unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Every minute from `from` for `hours`: `contains` agrees with the local clock, and
    /// `next_open` is inside the window with no inside minute before it.
    fn check_minutes(w: &CallingWindow, tz: Option<Tz>, from: &str, hours: i64) {
        let z = tz.unwrap_or(w.zone());
        let t0 = utc(from);
        let inside: Vec<bool> = (0..hours * 60)
            .map(|m| w.contains(t0 + ChronoDuration::minutes(m), tz))
            .collect();
        for m in 0..hours * 60 {
            let t = t0 + ChronoDuration::minutes(m);
            let local = t.with_timezone(&z);
            let want = w.days[local.weekday().num_days_from_monday() as usize]
                && !w.holidays.contains(&local.date_naive())
                && local.time() >= w.start
                && local.time() < w.end;
            assert_eq!(inside[m as usize], want, "{t} = {local}");
            let next = w.next_open(t, tz);
            assert!(next >= t && w.contains(next, tz), "{t} → {next}");
            // No minute between t and next is inside (checked within the scanned span).
            let gap = (next - t).num_minutes();
            for k in 0..gap.min(hours * 60 - m) {
                assert!(
                    !inside[(m + k) as usize] || k == 0 && next == t,
                    "{t}: inside at +{k} min but next {next}"
                );
            }
        }
    }

    #[test]
    fn weekdays_and_hours_in_the_campaign_zone() {
        let w = window("09:00", "21:00", vec![1, 2, 3, 4, 5], "Europe/London");
        // Monday 2026-11-23 08:59 UTC = 08:59 GMT: closed, opens at 09:00.
        assert!(!w.contains(utc("2026-11-23T08:59:00Z"), None));
        assert_eq!(
            w.next_open(utc("2026-11-23T08:59:00Z"), None),
            utc("2026-11-23T09:00:00Z")
        );
        assert!(w.contains(utc("2026-11-23T20:59:59Z"), None));
        // Friday 21:00 → Monday 09:00.
        assert_eq!(
            w.next_open(utc("2026-11-27T21:00:00Z"), None),
            utc("2026-11-30T09:00:00Z")
        );
        check_minutes(&w, None, "2026-11-20T00:00:00Z", 24 * 8);
    }

    #[test]
    fn the_leads_own_zone_moves_its_window() {
        let w = window("09:00", "21:00", vec![1, 2, 3, 4, 5, 6, 7], "Europe/London");
        let ny: Tz = "America/New_York".parse().unwrap();
        // 13:00 UTC is 08:00 in New York (EST): closed there, open in London.
        assert!(w.contains(utc("2026-11-23T13:00:00Z"), None));
        assert!(!w.contains(utc("2026-11-23T13:00:00Z"), Some(ny)));
        assert_eq!(
            w.next_open(utc("2026-11-23T13:00:00Z"), Some(ny)),
            utc("2026-11-23T14:00:00Z")
        );
    }

    #[test]
    fn no_call_outside_the_window_across_daylight_saving_changes() {
        // New York: spring forward 2026-03-08 02:00 → 03:00, fall back 2026-11-01 02:00 → 01:00.
        let ny = window(
            "01:30",
            "02:30",
            vec![1, 2, 3, 4, 5, 6, 7],
            "America/New_York",
        );
        check_minutes(&ny, None, "2026-03-06T00:00:00Z", 24 * 4);
        check_minutes(&ny, None, "2026-10-30T00:00:00Z", 24 * 4);
        // The spring-forward day has no 02:00–02:30 and 01:30–02:00 opens normally.
        assert!(ny.contains(utc("2026-03-08T06:45:00Z"), None)); // 01:45 EST
        assert!(!ny.contains(utc("2026-03-08T07:10:00Z"), None)); // 03:10 EDT
        // A window starting inside the gap opens when the clocks do.
        let gap = window("02:15", "04:00", vec![7], "America/New_York");
        assert_eq!(
            gap.next_open(utc("2026-03-08T05:00:00Z"), None),
            utc("2026-03-08T07:00:00Z")
        );
        check_minutes(&gap, None, "2026-03-07T00:00:00Z", 24 * 9);
        // Europe/London's changes, and a zone with half-hour offsets.
        let uk = window("09:00", "21:00", vec![1, 2, 3, 4, 5, 6, 7], "Europe/London");
        check_minutes(&uk, None, "2026-03-28T00:00:00Z", 24 * 3);
        check_minutes(
            &uk,
            Some("Australia/Adelaide".parse().unwrap()),
            "2026-04-03T00:00:00Z",
            24 * 3,
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let p = |s: &str, e: &str, d: Vec<u8>, z: &str| {
            CallingWindow::new(&ActivePeriod {
                start_time: s.into(),
                end_time: e.into(),
                week_days: d,
                time_zone: z.into(),
                lead_time_zone_attribute: None,
                holidays: Vec::new(),
            })
            .unwrap_err()
            .to_string()
        };
        assert!(p("9am", "21:00", vec![1], "UTC").contains("start_time"));
        assert!(p("21:00", "09:00", vec![1], "UTC").contains("end_time"));
        assert!(p("09:00", "21:00", vec![8], "UTC").contains("week_days"));
        assert!(p("09:00", "21:00", vec![1], "Mars/Olympus").contains("time_zone"));
    }

    #[test]
    fn no_call_on_a_holiday_in_the_zone_the_lead_is_called_in() {
        let mut w = window("09:00", "21:00", vec![1, 2, 3, 4, 5], "Europe/London");
        // Friday 25 and Monday 28 December 2026 off: Thursday evening → Tuesday 29th.
        w.holidays = vec![
            NaiveDate::from_ymd_opt(2026, 12, 25).unwrap(),
            NaiveDate::from_ymd_opt(2026, 12, 28).unwrap(),
        ];
        assert!(!w.contains(utc("2026-12-25T12:00:00Z"), None));
        assert_eq!(
            w.next_open(utc("2026-12-24T21:00:00Z"), None),
            utc("2026-12-29T09:00:00Z")
        );
        check_minutes(&w, None, "2026-12-23T00:00:00Z", 24 * 8);
        // The date is the lead's local one: 25 December 02:00 UTC is still the 24th, 21:00,
        // in New York — and the 25th's 09:00 there is not called either.
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            w.next_open(utc("2026-12-24T15:00:00Z"), Some(ny)),
            utc("2026-12-24T15:00:00Z")
        );
        assert_eq!(
            w.next_open(utc("2026-12-25T02:00:00Z"), Some(ny)),
            utc("2026-12-29T14:00:00Z")
        );
        check_minutes(&w, Some(ny), "2026-12-23T00:00:00Z", 24 * 8);
        // Every weekday for two weeks a holiday: the scan still finds the next opening.
        w.holidays = (0..14)
            .map(|k| NaiveDate::from_ymd_opt(2026, 12, 21).unwrap() + ChronoDuration::days(k))
            .collect();
        assert_eq!(
            w.next_open(utc("2026-12-21T10:00:00Z"), None),
            utc("2027-01-04T09:00:00Z")
        );
    }

    #[test]
    fn a_holiday_that_is_not_a_date_is_named() {
        let e = CallingWindow::new(&ActivePeriod {
            start_time: "09:00".into(),
            end_time: "17:00".into(),
            week_days: vec![1],
            time_zone: "UTC".into(),
            lead_time_zone_attribute: None,
            holidays: vec!["2026-12-25".into(), "25/12/2026".into()],
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("holidays") && e.contains("25/12/2026"), "{e}");
    }
}
