//! Partner touches and the rules deciding which of them a conversion considers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::PartnerId;

/// How a partner touched the person who converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TouchKind {
    /// A click on a partner's tracked link.
    Click,
    /// A `?via=` visit naming the partner.
    Via,
    /// A coupon code belonging to the partner.
    Coupon,
    /// A referral event naming the partner.
    Referral,
    /// An assignment made by the owner by hand.
    Manual,
}

/// One partner touch on a person's journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Touch {
    /// Stable id of the touch (click id, event id, …); breaks ties between
    /// touches at the same instant, so results never depend on input order.
    pub id: String,
    pub partner_id: PartnerId,
    /// What the data-driven models learn over (a partner, a source, a
    /// campaign — the server decides); rule-based models ignore it.
    pub channel: String,
    pub at: DateTime<Utc>,
    pub kind: TouchKind,
    /// Flagged as a bot when recorded; never earns credit.
    pub is_bot: bool,
    /// The partner is suspended; its touches earn no credit.
    pub partner_suspended: bool,
}

/// Why a touch earned nothing.
///
/// A touch gets the first reason that applies, in the order listed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// The touch happened after the conversion.
    AfterConversion,
    /// The touch is older than the window.
    OutsideWindow,
    /// The touch was made by a bot.
    Bot,
    /// The touch's partner is suspended.
    SuspendedPartner,
}

impl Exclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::AfterConversion => "after_conversion",
            Exclusion::OutsideWindow => "outside_window",
            Exclusion::Bot => "bot",
            Exclusion::SuspendedPartner => "suspended_partner",
        }
    }
}

/// Seconds in a day, for windows and ages.
pub(crate) const DAY_SECS: i64 = 86_400;

/// Why `touch` does not count for a conversion at `conversion_at`, if it does not.
///
/// A touch at the very instant of the conversion counts; so does one exactly
/// `window_days` days before it.
pub(crate) fn exclusion(
    touch: &Touch,
    conversion_at: DateTime<Utc>,
    window_days: Option<u32>,
) -> Option<Exclusion> {
    if touch.at > conversion_at {
        return Some(Exclusion::AfterConversion);
    }
    if let Some(days) = window_days {
        let age = conversion_at - touch.at;
        if age > chrono::TimeDelta::seconds(i64::from(days) * DAY_SECS) {
            return Some(Exclusion::OutsideWindow);
        }
    }
    if touch.is_bot {
        return Some(Exclusion::Bot);
    }
    if touch.partner_suspended {
        return Some(Exclusion::SuspendedPartner);
    }
    None
}

/// Age of a touch at the conversion in days, continuous (nanosecond precision).
pub(crate) fn age_days(touch_at: DateTime<Utc>, conversion_at: DateTime<Utc>) -> f64 {
    let age = conversion_at - touch_at;
    (age.num_seconds() as f64 + f64::from(age.subsec_nanos()) * 1e-9) / DAY_SECS as f64
}

/// Fill `included` with the indices of the touches that count, ordered by
/// time then id (the order every model and every tie-break uses).
pub(crate) fn included_in_order(
    touches: &[Touch],
    conversion_at: DateTime<Utc>,
    window_days: Option<u32>,
    included: &mut Vec<usize>,
) {
    included.clear();
    included.extend(
        touches
            .iter()
            .enumerate()
            .filter(|(_, t)| exclusion(t, conversion_at, window_days).is_none())
            .map(|(i, _)| i),
    );
    let key = |i: usize| (touches[i].at, touches[i].id.as_str());
    // Journeys usually arrive in time order: check before sorting.
    if !included.windows(2).all(|w| key(w[0]) <= key(w[1])) {
        included.sort_by(|&a, &b| key(a).cmp(&key(b)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn touch(at: DateTime<Utc>) -> Touch {
        Touch {
            id: "t".into(),
            partner_id: PartnerId::parse("ptn_a").unwrap(),
            channel: "a".into(),
            at,
            kind: TouchKind::Click,
            is_bot: false,
            partner_suspended: false,
        }
    }

    #[test]
    fn a_touch_exactly_at_the_window_edge_counts_and_one_second_older_does_not() {
        let conv = Utc.with_ymd_and_hms(2024, 3, 10, 12, 0, 0).unwrap();
        let edge = touch(conv - chrono::TimeDelta::days(7));
        assert_eq!(exclusion(&edge, conv, Some(7)), None);
        let older = touch(edge.at - chrono::TimeDelta::seconds(1));
        assert_eq!(
            exclusion(&older, conv, Some(7)),
            Some(Exclusion::OutsideWindow)
        );
        assert_eq!(exclusion(&older, conv, None), None);
    }

    #[test]
    fn a_late_bot_touch_is_reported_as_after_conversion_first() {
        let conv = Utc.with_ymd_and_hms(2024, 3, 10, 12, 0, 0).unwrap();
        let mut t = touch(conv + chrono::TimeDelta::seconds(1));
        t.is_bot = true;
        assert_eq!(exclusion(&t, conv, None), Some(Exclusion::AfterConversion));
        t.at = conv;
        assert_eq!(exclusion(&t, conv, None), Some(Exclusion::Bot));
        t.is_bot = false;
        t.partner_suspended = true;
        assert_eq!(exclusion(&t, conv, None), Some(Exclusion::SuspendedPartner));
    }

    #[test]
    fn ages_are_continuous_not_whole_days() {
        let conv = Utc.with_ymd_and_hms(2024, 3, 10, 12, 0, 0).unwrap();
        let at = conv - chrono::TimeDelta::hours(36);
        assert_eq!(age_days(at, conv), 1.5);
    }
}
