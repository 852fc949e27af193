//! Tests of the click rules and the sliding-window counter: a positive and
//! a negative case for each rule, weights, and window boundaries.

use super::*;
use crate::fraud::config::RULES;
use crate::fraud::Risk;
use chrono::Duration;
use proptest::prelude::*;
use std::sync::LazyLock;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
const CHROME_HINT: &str = r#""Chromium";v="126", "Google Chrome";v="126", "Not-A.Brand";v="8""#;

/// Building the detector compiles a large regex: once for all tests.
static BOTS: LazyLock<BotDetector> = LazyLock::new(BotDetector::default);

fn t0() -> DateTime<Utc> {
    // On a minute boundary, so hour-window tests can reason in minutes.
    "2026-03-01T12:00:00Z".parse().unwrap()
}

/// A plain desktop Chrome click, breaking no rule.
fn browser() -> ClickFacts<'static> {
    ClickFacts {
        user_agent: Some(CHROME),
        accept_language: Some("en-GB,en;q=0.9"),
        sec_ch_ua: Some(CHROME_HINT),
        referrer: Some("https://blog.partner.example/post"),
        destination_query: &[],
        ip_hash: 0x1111,
        visitor_hash: 0x2222,
        partner_id: "ptn_1",
        link_id: "lnk_1",
        at: t0(),
    }
}

fn quiet() -> ClickCounts {
    ClickCounts {
        ip_last_minute: 1,
        ip_last_hour: 1,
        partner_last_minute: 1,
        link_last_minute: 1,
        same_visitor_link_seconds_ago: None,
    }
}

fn config() -> FraudConfig {
    FraudConfig {
        forbid_brand_bidding: true,
        allowed_campaigns: vec!["Partner-Newsletter".into()],
        banned_referrers: vec!["spam.example".into()],
        ..FraudConfig::default()
    }
}

fn rules_hit(f: &ClickFacts<'_>, c: &ClickCounts, config: &FraudConfig) -> Vec<String> {
    assess_click(f, c, config, &BOTS)
        .into_iter()
        .map(|r| r.rule)
        .collect()
}

fn evidence(rule: &dyn ClickRule, f: &ClickFacts<'_>, c: &ClickCounts) -> Option<String> {
    evidence_with(rule, f, c, &config())
}

fn evidence_with(
    rule: &dyn ClickRule,
    f: &ClickFacts<'_>,
    c: &ClickCounts,
    config: &FraudConfig,
) -> Option<String> {
    rule.check(&ClickInput {
        facts: f,
        counts: c,
        config,
        bots: &BOTS,
    })
}

fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn every_click_rule_is_in_the_rule_table_once_with_a_description() {
    let names: Vec<&str> = CLICK_RULES.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        [
            "bot_user_agent",
            "implausible_browser",
            "ip_velocity",
            "partner_velocity",
            "link_velocity",
            "duplicate_click",
            "paid_search_click",
            "banned_referrer",
        ]
    );
    for rule in CLICK_RULES {
        assert!(
            RULES.iter().any(|(n, _, _)| *n == rule.name()),
            "{} is not in RULES",
            rule.name()
        );
        assert!(!rule.description().is_empty(), "{}", rule.name());
    }
}

#[test]
fn a_plain_browser_click_breaks_no_rule() {
    assert_eq!(
        rules_hit(&browser(), &quiet(), &config()),
        Vec::<String>::new()
    );
}

fn ua(user_agent: Option<&'static str>) -> ClickFacts<'static> {
    ClickFacts {
        user_agent,
        ..browser()
    }
}

#[test]
fn bot_user_agent_flags_crawlers_tools_and_a_missing_user_agent_not_browsers() {
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                  (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    for (user_agent, expect) in [
        (
            Some("Googlebot/2.1 (+http://www.google.com/bot.html)"),
            Some("bot user agent"),
        ),
        (Some("curl/8.5.0"), Some("bot user agent \"curl/8.5.0\"")),
        (None, Some("no user agent")),
        (Some("   "), Some("no user agent")),
        (Some(CHROME), None),
        (Some(firefox), None),
        (Some(iphone), None),
    ] {
        let e = evidence(&BotUserAgent, &ua(user_agent), &quiet());
        match expect {
            Some(prefix) => assert!(
                e.as_deref().is_some_and(|e| e.starts_with(prefix)),
                "{user_agent:?}: {e:?}"
            ),
            None => assert_eq!(e, None, "{user_agent:?}"),
        }
    }
}

#[test]
fn implausible_browser_flags_a_missing_or_empty_accept_language() {
    for lang in [None, Some(""), Some("  ")] {
        let f = ClickFacts {
            accept_language: lang,
            ..browser()
        };
        let e = evidence(&ImplausibleBrowser, &f, &quiet());
        assert_eq!(e.as_deref(), Some("no Accept-Language"), "{lang:?}");
    }
}

#[test]
fn implausible_browser_flags_headless_and_automation_markers() {
    for (user_agent, expect) in [
        (
            "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/126.0.0.0 Safari/537.36",
            "HeadlessChrome",
        ),
        (
            "Mozilla/5.0 (Unknown; Linux x86_64) PhantomJS/2.1.1 Safari/538.1",
            "PhantomJS",
        ),
        ("Mozilla/5.0 Chrome/126.0 Puppeteer", "puppeteer"),
        ("Mozilla/5.0 Chrome/126.0 playwright/1.45", "Playwright"),
        ("Mozilla/5.0 Firefox/128.0 Selenium", "selenium"),
        ("Mozilla/5.0 Chrome/126.0 (WebDriver)", "webdriver"),
    ] {
        let e = evidence(&ImplausibleBrowser, &ua(Some(user_agent)), &quiet());
        assert_eq!(e, Some(format!("{expect} in user agent")), "{user_agent}");
    }
    let f = ClickFacts {
        sec_ch_ua: Some(r#""HeadlessChrome";v="126", "Chromium";v="126""#),
        ..browser()
    };
    let e = evidence(&ImplausibleBrowser, &f, &quiet());
    assert_eq!(e.as_deref(), Some("Headless in Sec-CH-UA"));
    let f = ClickFacts {
        accept_language: None,
        ..ua(Some("Mozilla/5.0 HeadlessChrome/126.0"))
    };
    let e = evidence(&ImplausibleBrowser, &f, &quiet());
    let all = "no Accept-Language; HeadlessChrome in user agent";
    assert_eq!(e.as_deref(), Some(all), "all findings are listed");
}

#[test]
fn implausible_browser_passes_browsers_and_electron_apps() {
    let electron = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 \
                    (KHTML, like Gecko) Slack/4.39 Chrome/126.0 Electron/31.0 Safari/537.36";
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    for (user_agent, hint) in [
        (CHROME, Some(CHROME_HINT)),
        (electron, None),
        (firefox, None),
    ] {
        let f = ClickFacts {
            sec_ch_ua: hint,
            ..ua(Some(user_agent))
        };
        assert_eq!(
            evidence(&ImplausibleBrowser, &f, &quiet()),
            None,
            "{user_agent}"
        );
    }
}

/// Counts per IP a minute and an hour, per partner and per link.
fn counts(ip_minute: u32, ip_hour: u32, partner: u32, link: u32) -> ClickCounts {
    ClickCounts {
        ip_last_minute: ip_minute,
        ip_last_hour: ip_hour,
        partner_last_minute: partner,
        link_last_minute: link,
        same_visitor_link_seconds_ago: None,
    }
}

#[test]
fn velocity_rules_fire_only_above_their_limits_and_say_which() {
    // Defaults: 10 an IP a minute, 60 an hour; 600 a partner; 300 a link.
    let rules: [&dyn ClickRule; 3] = [&IpVelocity, &PartnerVelocity, &LinkVelocity];
    let cases = [
        (counts(10, 60, 600, 300), [None, None, None]),
        (
            counts(11, 11, 1, 1),
            [
                Some("11 clicks from this IP in a minute (limit 10)"),
                None,
                None,
            ],
        ),
        (
            counts(2, 61, 1, 1),
            [
                Some("61 clicks from this IP in an hour (limit 60)"),
                None,
                None,
            ],
        ),
        (
            counts(30, 90, 1, 1),
            [
                Some(
                    "30 clicks from this IP in a minute (limit 10); \
                     90 clicks from this IP in an hour (limit 60)",
                ),
                None,
                None,
            ],
        ),
        (
            counts(1, 1, 601, 1),
            [
                None,
                Some("601 clicks for this partner in a minute (limit 600)"),
                None,
            ],
        ),
        (
            counts(1, 1, 1, 301),
            [
                None,
                None,
                Some("301 clicks on this link in a minute (limit 300)"),
            ],
        ),
    ];
    for (c, expected) in cases {
        for (rule, expect) in rules.iter().zip(expected) {
            let e = evidence(*rule, &browser(), &c);
            assert_eq!(e.as_deref(), expect, "{} with {c:?}", rule.name());
        }
    }
}

#[test]
fn duplicate_click_fires_within_the_window_inclusive() {
    let f = browser();
    for (ago, fires) in [
        (None, false),
        (Some(0), true),
        (Some(5), true),
        (Some(30), true),
        (Some(31), false),
        (Some(3_000), false),
    ] {
        let c = ClickCounts {
            same_visitor_link_seconds_ago: ago,
            ..quiet()
        };
        assert_eq!(
            evidence(&DuplicateClick, &f, &c).is_some(),
            fires,
            "{ago:?} s ago"
        );
    }
    let c = ClickCounts {
        same_visitor_link_seconds_ago: Some(5),
        ..quiet()
    };
    assert_eq!(
        evidence(&DuplicateClick, &f, &c).as_deref(),
        Some("same visitor clicked this link 5 s before (window 30 s)")
    );
    let off = FraudConfig {
        duplicate_click_seconds: 0,
        ..config()
    };
    assert_eq!(evidence_with(&DuplicateClick, &f, &c, &off), None);
}

fn paid_search(pairs: &[(&str, &str)], config: &FraudConfig) -> Option<String> {
    let q = query(pairs);
    let f = ClickFacts {
        destination_query: &q,
        ..browser()
    };
    evidence_with(&PaidSearchClick, &f, &quiet(), config)
}

#[test]
fn paid_search_click_flags_click_ids_where_brand_bidding_is_forbidden() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("gclid", "abc")], "gclid present, no utm_campaign"),
        (
            &[("utm_campaign", "brand-terms"), ("gclid", "abc")],
            "gclid present, utm_campaign=brand-terms not allowed",
        ),
        (&[("GCLID", "abc")], "gclid present, no utm_campaign"),
        (&[("gbraid", "x")], "gbraid present, no utm_campaign"),
        (&[("wbraid", "x")], "wbraid present, no utm_campaign"),
        (&[("fbclid", "x")], "fbclid present, no utm_campaign"),
        (&[("msclkid", "x")], "msclkid present, no utm_campaign"),
        (&[("ttclid", "x")], "ttclid present, no utm_campaign"),
        (
            &[("fbclid", "x"), ("gclid", "y"), ("utm_campaign", "")],
            "gclid, fbclid present, no utm_campaign",
        ),
        // The allowlist is exact: containing an allowed campaign is not enough.
        (
            &[("gclid", "abc"), ("utm_campaign", "partner-newsletter-2")],
            "gclid present, utm_campaign=partner-newsletter-2 not allowed",
        ),
    ];
    for (pairs, expect) in cases {
        let e = paid_search(pairs, &config());
        assert_eq!(e.as_deref(), Some(*expect), "{pairs:?}");
    }
}

#[test]
fn paid_search_click_passes_organic_clicks_allowed_campaigns_and_programs_that_allow_it() {
    let cases: &[&[(&str, &str)]] = &[
        &[],
        &[("utm_source", "newsletter"), ("utm_campaign", "spring")],
        &[("gclid", ""), ("fbclid", "  ")],
        &[("gclid_x", "abc"), ("my_gclid", "abc")],
        // Allowlisted, exact but case-insensitive.
        &[("gclid", "abc"), ("utm_campaign", "Partner-Newsletter")],
        &[("gclid", "abc"), ("utm_campaign", "partner-newsletter")],
    ];
    for pairs in cases {
        assert_eq!(paid_search(pairs, &config()), None, "{pairs:?}");
    }
    let allowed = FraudConfig {
        forbid_brand_bidding: false,
        ..config()
    };
    assert_eq!(paid_search(&[("gclid", "abc")], &allowed), None);
}

fn referred(referrer: Option<&str>, config: &FraudConfig) -> Option<String> {
    let f = ClickFacts {
        referrer,
        ..browser()
    };
    evidence_with(&BannedReferrer, &f, &quiet(), config)
}

#[test]
fn banned_referrer_matches_the_domain_and_its_subdomains_however_written() {
    for referrer in [
        "https://spam.example/",
        "http://spam.example",
        "https://www.spam.example/page?q=1",
        "https://deals.spam.example/x",
        "https://a.b.spam.example/x",
        "https://SPAM.Example/x",
        "https://spam.example:8443/x",
        "https://spam.example./x",
        "https://user@spam.example/x",
        " https://spam.example/x ",
    ] {
        assert!(referred(Some(referrer), &config()).is_some(), "{referrer}");
    }
    assert_eq!(
        referred(Some("https://www.deals.spam.example/x"), &config()).as_deref(),
        Some("referrer deals.spam.example is under banned spam.example")
    );
    // A banned entry written with `www.` still bans the bare domain.
    let www = FraudConfig {
        banned_referrers: vec!["www.spam.example".into()],
        ..config()
    };
    assert!(referred(Some("https://spam.example/"), &www).is_some());
}

#[test]
fn banned_referrer_ignores_look_alikes_and_malformed_referrers() {
    for referrer in [
        "https://notspam.example/",
        "https://spam.example.evil.test/",
        "https://spam-example.test/",
        "https://example/",
        "https://blog.partner.example/?ref=spam.example",
        "https://good.example/spam.example",
        "https://spam.example@good.example/",
        "spam.example",
        "//spam.example/x",
        "not a url",
        "https://",
        "",
        "ftp://spam.example/file",
        "android-app://spam.example",
        "https://203.0.113.9/",
    ] {
        assert_eq!(referred(Some(referrer), &config()), None, "{referrer}");
    }
    assert_eq!(referred(None, &config()), None);
}

/// A click breaking every rule at once.
fn everything_wrong(q: &[(String, String)]) -> ClickFacts<'_> {
    ClickFacts {
        user_agent: Some("python-requests/2.32 HeadlessChrome"),
        accept_language: None,
        referrer: Some("https://www.spam.example/"),
        destination_query: q,
        ..browser()
    }
}

fn busy() -> ClickCounts {
    ClickCounts {
        ip_last_minute: 100,
        ip_last_hour: 100,
        partner_last_minute: 1_000,
        link_last_minute: 1_000,
        same_visitor_link_seconds_ago: Some(1),
    }
}

#[test]
fn assess_click_gives_each_reason_its_weight_and_short_evidence() {
    let q = query(&[("gclid", "abc"), ("utm_campaign", "brand")]);
    let f = everything_wrong(&q);
    let reasons = assess_click(&f, &busy(), &config(), &BOTS);
    let names: Vec<&str> = reasons.iter().map(|r| r.rule.as_str()).collect();
    let all: Vec<&str> = CLICK_RULES.iter().map(|r| r.name()).collect();
    assert_eq!(names, all);
    for r in &reasons {
        assert_eq!(r.contribution, config().weight(&r.rule), "{}", r.rule);
        assert!(
            !r.evidence.is_empty() && r.evidence.chars().count() <= 120,
            "{}: {}",
            r.rule,
            r.evidence
        );
    }
    assert_eq!(Risk::from_reasons(reasons).score, 100);
}

#[test]
fn a_rule_with_weight_zero_never_fires() {
    let q = query(&[("gclid", "abc")]);
    let f = everything_wrong(&q);
    for rule in CLICK_RULES {
        let mut c = config();
        c.weights.insert(rule.name().into(), 0);
        let hit = rules_hit(&f, &busy(), &c);
        assert!(!hit.iter().any(|r| r == rule.name()), "{}", rule.name());
        assert_eq!(hit.len(), CLICK_RULES.len() - 1, "{}: {hit:?}", rule.name());
    }
    let mut c = config();
    c.weights.insert("implausible_browser".into(), 5);
    let reasons = assess_click(&f, &busy(), &c, &BOTS);
    let r = reasons
        .iter()
        .find(|r| r.rule == "implausible_browser")
        .unwrap();
    assert_eq!(
        r.contribution, 5,
        "an overridden weight is the contribution"
    );
}

#[test]
fn with_checks_off_only_bots_are_flagged() {
    let q = query(&[("gclid", "abc")]);
    let f = everything_wrong(&q);
    let off = FraudConfig {
        enabled: false,
        ..config()
    };
    assert_eq!(rules_hit(&f, &busy(), &off), ["bot_user_agent"]);
    let human = ClickFacts {
        user_agent: Some(CHROME),
        ..f
    };
    assert!(rules_hit(&human, &busy(), &off).is_empty());
}

// ---------------------------------------------------------------------------
// Velocity.

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

/// The minute counts: per IP, partner and link.
fn minute(c: ClickCounts) -> (u32, u32, u32) {
    (c.ip_last_minute, c.partner_last_minute, c.link_last_minute)
}

#[test]
fn counts_include_the_click_and_are_kept_per_ip_partner_and_link() {
    let mut v = Velocity::new();
    let c = v.record(1, "p1", "l1", 10, at(0));
    assert_eq!(c, counts(1, 1, 1, 1));
    assert_eq!(minute(v.record(1, "p1", "l2", 11, at(1))), (2, 2, 1));
    let c = v.record(2, "p2", "l1", 12, at(2));
    assert_eq!(c, counts(1, 1, 1, 2), "a new visitor on l1");
}

#[test]
fn a_click_61_seconds_later_leaves_the_minute_window_but_not_the_hour() {
    let mut v = Velocity::new();
    v.record(1, "p", "l", 10, at(0));
    assert_eq!(minute(v.record(1, "p", "l", 11, at(59))), (2, 2, 2));
    let c = v.record(1, "p", "l", 12, at(61));
    assert_eq!(minute(c), (2, 2, 2), "0 s has left, 59 s has not");
    assert_eq!(c.ip_last_hour, 3);
    let c = v.record(1, "p", "l", 13, at(200));
    assert_eq!((c.ip_last_minute, c.ip_last_hour), (1, 4));
}

#[test]
fn the_hour_window_forgets_clicks_from_sixty_minutes_before() {
    let mut v = Velocity::new();
    v.record(1, "p", "l", 10, at(0));
    assert_eq!(v.record(1, "p", "l", 10, at(3_599)).ip_last_hour, 2);
    let c = v.record(1, "p", "l", 10, at(3_600));
    assert_eq!(c.ip_last_hour, 2, "the click at 0 s has left");
    assert_eq!(c.ip_last_minute, 2);
}

#[test]
fn a_visitors_previous_click_on_the_same_link_is_reported_within_the_hour() {
    let mut v = Velocity::new();
    for (link, visitor, s, expect) in [
        ("l", 10, 0, None),
        ("l", 10, 5, Some(5)),
        ("other", 10, 6, None),
        ("l", 99, 7, None),
        ("l", 10, 3_605, Some(3_600)),
        ("l", 10, 7_206, None), // more than an hour is forgotten
    ] {
        let c = v.record(1, "p", link, visitor, at(s));
        assert_eq!(
            c.same_visitor_link_seconds_ago, expect,
            "{link} {visitor} at {s}"
        );
    }
}

#[test]
fn clicks_slightly_out_of_order_count_in_the_newest_second() {
    let mut v = Velocity::new();
    v.record(1, "p", "l", 10, at(100));
    let c = v.record(1, "p", "l", 10, at(98));
    assert_eq!(
        (c.ip_last_minute, c.same_visitor_link_seconds_ago),
        (2, Some(0))
    );
    let c = v.record(1, "p", "l", 10, at(159));
    assert_eq!(
        c.ip_last_minute, 3,
        "both counted at 100 s, still in the window"
    );
    assert_eq!(c.same_visitor_link_seconds_ago, Some(59));
}

#[test]
fn prune_forgets_old_keys_without_changing_counts() {
    let mut v = Velocity::new();
    v.record(1, "p", "l", 10, at(0));
    v.record(2, "q", "m", 20, at(30));
    v.prune(at(59));
    assert_eq!(v.len(), 8, "nothing is a minute old yet");
    v.prune(at(89));
    assert_eq!(v.len(), 2 + 1 + 1 + 2, "p and l left their minute");
    let c = v.record(1, "p", "l", 10, at(120));
    assert_eq!((c.ip_last_minute, c.ip_last_hour), (1, 2));
    assert_eq!(c.same_visitor_link_seconds_ago, Some(120));
    v.prune(at(120 + 3_601));
    assert!(v.is_empty(), "{v:?}");
}

#[test]
fn memory_stays_bounded_and_keeps_the_active_keys() {
    let mut v = Velocity::with_max_keys(64);
    for i in 0..10_000u64 {
        let key = format!("k{i}");
        // One attacker IP and link keep clicking among many one-off keys.
        v.record(7, "busy", "busy", 7, at(i as i64));
        v.record(1_000 + i, &key, &key, 1_000 + i, at(i as i64));
        assert!(v.len() <= 4 * 64, "at {i}: {}", v.len());
    }
    let c = v.record(7, "busy", "busy", 7, at(10_000));
    assert!(c.ip_last_minute == 60, "the busy IP was not evicted: {c:?}");
    assert_eq!(c.same_visitor_link_seconds_ago, Some(1));
}

#[test]
fn velocity_feeds_the_rules() {
    let mut v = Velocity::new();
    let config = config();
    let f = browser();
    let mut last = Vec::new();
    for s in 0..11 {
        let counts = v.record(f.ip_hash, f.partner_id, f.link_id, 1_000 + s, at(s as i64));
        last = rules_hit(
            &ClickFacts {
                at: at(s as i64),
                ..f
            },
            &counts,
            &config,
        );
        if s < 10 {
            assert!(last.is_empty(), "click {s}: {last:?}");
        }
    }
    assert_eq!(last, ["ip_velocity"]);
}

proptest! {
    /// The bucketed windows agree with counting the clicks one by one: a
    /// click stays in the minute window for 60 whole seconds, and in the
    /// hour window for 60 whole minutes.
    #[test]
    fn windows_agree_with_a_brute_force_count(gaps in prop::collection::vec(0i64..400, 1..200)) {
        let mut v = Velocity::new();
        let mut times: Vec<i64> = Vec::new();
        let mut now = t0().timestamp() + 17;
        for gap in gaps {
            now += gap;
            times.push(now);
            let at = DateTime::from_timestamp(now, 0).unwrap();
            let c = v.record(1, "p", "l", 1, at);
            let minute = times.iter().filter(|t| now - **t < 60).count() as u32;
            let hour = times.iter().filter(|t| now / 60 - **t / 60 < 60).count() as u32;
            prop_assert_eq!(c.ip_last_minute, minute);
            prop_assert_eq!(c.link_last_minute, minute);
            prop_assert_eq!(c.ip_last_hour, hour);
            let previous = times.iter().rev().nth(1).map(|t| (now - t) as u32).filter(|s| *s <= 3_600);
            prop_assert_eq!(c.same_visitor_link_seconds_ago, previous);
        }
    }
}
