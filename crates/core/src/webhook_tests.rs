use super::*;

#[test]
fn every_event_name_parses_back_to_its_kind() {
    for k in EventKind::ALL {
        assert_eq!(EventKind::parse("events", k.as_str()).unwrap(), *k);
    }
    let err = EventKind::parse("events[0]", "conversion.made").unwrap_err();
    assert_eq!(err.field, "events[0]");
}

#[test]
fn an_empty_filter_matches_every_event_and_a_list_only_its_own() {
    assert!(EventFilter::all().matches(EventKind::PayoutPaid));
    let f = EventFilter::parse("events", &["conversion.created".into()]).unwrap();
    assert!(f.matches(EventKind::ConversionCreated));
    assert!(!f.matches(EventKind::CommissionCreated));
    assert_eq!(f.stored(), ",conversion.created,");
    assert_eq!(EventFilter::from_stored(&f.stored()), f);
    assert_eq!(EventFilter::from_stored(""), EventFilter::all());
}

#[test]
fn signature_matches_the_standard_webhooks_test_vector() {
    // The example in the Standard Webhooks specification's reference tests.
    let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let sig = secret.sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        br#"{"test": 2432232314}"#,
    );
    assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

#[test]
fn a_generated_secret_parses_and_differs_each_time() {
    let a = WebhookSecret::generate();
    let b = WebhookSecret::generate();
    assert_ne!(a, b);
    assert!(WebhookSecret::parse(a.as_str()).is_ok());
    assert!(WebhookSecret::parse("whsec_short").is_err());
    assert!(WebhookSecret::parse("sk_live_abc").is_err());
    assert!(!format!("{a:?}").contains(&a.as_str()[6..]));
}

#[test]
fn retries_follow_the_schedule_within_the_jitter_and_stop_after_nine() {
    let p = RetryPolicy::default();
    for (i, base) in RETRY_SCHEDULE.iter().enumerate() {
        let lo = p.next_delay(i as u32 + 1, 0.0, None).unwrap();
        let hi = p.next_delay(i as u32 + 1, 0.999_999, None).unwrap();
        assert_eq!(
            lo,
            Duration::from_secs_f64(*base as f64 * 0.8),
            "attempt {}",
            i + 1
        );
        assert!(hi <= Duration::from_secs_f64(*base as f64 * 1.2));
        assert!(hi > lo);
    }
    assert_eq!(p.next_delay(10, 0.5, None), None);
    assert_eq!(p.next_delay(0, 0.5, None), None);
    assert_eq!(p.max_attempts(), 10);
    let total: u64 = RETRY_SCHEDULE.iter().sum();
    assert!(
        (2.5 * 86400.0..3.5 * 86400.0).contains(&(total as f64)),
        "{total}"
    );
}

#[test]
fn retry_after_is_honoured_when_longer_than_the_schedule_and_capped_at_a_day() {
    let p = RetryPolicy::default();
    let d = p
        .next_delay(1, 0.5, Some(Duration::from_secs(120)))
        .unwrap();
    assert_eq!(d, Duration::from_secs(120));
    let d = p.next_delay(1, 0.5, Some(Duration::from_secs(1))).unwrap();
    assert_eq!(d, Duration::from_secs(5));
    let d = p
        .next_delay(1, 0.5, Some(Duration::from_secs(10 * 86400)))
        .unwrap();
    assert_eq!(d, MAX_RETRY_AFTER);
}

#[test]
fn a_scaled_policy_shrinks_every_wait() {
    let p = RetryPolicy { scale: 0.001 };
    assert_eq!(
        p.next_delay(1, 0.5, None).unwrap(),
        Duration::from_millis(5)
    );
    assert_eq!(p.disable_after(), Duration::from_secs(432));
}

#[test]
fn outcomes_follow_the_status() {
    assert_eq!(Outcome::of(Some(204)), Outcome::Delivered);
    assert_eq!(Outcome::of(Some(410)), Outcome::Gone);
    assert_eq!(Outcome::of(Some(500)), Outcome::Failed);
    assert_eq!(Outcome::of(Some(301)), Outcome::Failed);
    assert_eq!(Outcome::of(None), Outcome::Failed);
}

#[test]
fn private_loopback_link_local_and_mapped_addresses_are_not_public() {
    for ip in [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "::1",
        "::",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "64:ff9b::a00:1",
    ] {
        assert!(!is_public_ip(ip.parse().unwrap()), "{ip} should be refused");
    }
    for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
        assert!(is_public_ip(ip.parse().unwrap()), "{ip} should be allowed");
    }
}

#[test]
fn endpoint_urls_must_be_http_public_and_without_credentials() {
    assert!(parse_endpoint_url("url", "https://hooks.example.com/tribute", false).is_ok());
    for bad in [
        "ftp://example.com/",
        "https://user:pw@example.com/",
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data",
        "not a url",
    ] {
        let e = parse_endpoint_url("url", bad, false).unwrap_err();
        assert_eq!(e.field, "url", "{bad}");
    }
    assert!(parse_endpoint_url("url", "http://127.0.0.1:8080/", true).is_ok());
}

#[test]
fn an_envelope_carries_type_version_timestamp_and_data() {
    let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
        .unwrap()
        .with_timezone(&Utc);
    let e = Envelope::new(
        EventKind::PartnerCreated,
        at,
        &PartnerData {
            id: "ptn_1".into(),
            program_id: "prg_1".into(),
            slug: "ada".into(),
            name: "Ada".into(),
            status: "active".into(),
        },
    );
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["type"], "partner.created");
    assert_eq!(v["version"], 1);
    assert_eq!(v["timestamp"], "2026-01-02T03:04:05Z");
    assert_eq!(v["data"]["slug"], "ada");
}
