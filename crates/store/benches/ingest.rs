//! Event ingestion throughput into SQLite, through the store's batch path
//! (`Store::write_events`: one transaction per batch, multi-row inserts,
//! identity stitching for the events that link identifiers).
//!
//! `cargo bench -p tribute-store --bench ingest` — prints events/s for a
//! realistic mix and for anonymous page views only. Target: ≥ 100,000
//! events/s persisted.

use std::time::Instant;

use chrono::{Duration, Utc};
use tribute_core::click::Click;
use tribute_core::identity::{Claim, Identifiers};
use tribute_core::ids::{ClickId, EventId, LinkId, PartnerId, ProgramId};
use tribute_core::link::{Link, ShortCode, Utm};
use tribute_core::money::Currency;
use tribute_core::partner::{Partner, PartnerStatus, Slug};
use tribute_core::program::{AllowedDomain, Program, ProgramSettings};
use tribute_core::tracking::{Event, EventType};
use tribute_store::testing::TestDb;

const EVENTS: usize = 200_000;
const BATCH: usize = 1_000;

fn event(program: &ProgramId, i: usize, mix: bool, clicks: &[ClickId]) -> Event {
    let now = Utc::now();
    let visitor = i / 4;
    let mut ids = Identifiers {
        anonymous_id: Some(format!("anon-{visitor}")),
        ..Identifiers::default()
    };
    let mut event_type = EventType::PageView;
    let mut click_id = None;
    if mix {
        match i % 20 {
            // 5%: identify with an e-mail (stitching).
            0 => {
                event_type = EventType::Identify;
                ids.email_hash = Some(format!("{:064x}", visitor));
            }
            // 5%: landing page view carrying a click id (a click touch).
            1 => click_id = Some(clicks[visitor % clicks.len()].clone()),
            _ => {}
        }
    }
    Event {
        id: EventId::generate_ordered(now.timestamp_millis()),
        program_id: program.clone(),
        external_id: Some(format!("msg-{i}")),
        event_type,
        name: Some("/pricing".into()),
        ids,
        // The snippet's and Segment's way in, the bulk of real traffic.
        claim: Claim::Unverified,
        click_id,
        partner: None,
        occurred_at: now - Duration::seconds((EVENTS - i) as i64),
        received_at: now,
        properties: serde_json::json!({"path": "/pricing", "referrer": "https://news.example.org/"}),
    }
}

async fn run(mix: bool) -> f64 {
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    let now = Utc::now();
    let program = Program {
        id: ProgramId::generate(),
        settings: ProgramSettings {
            name: "Bench".into(),
            currency: Currency::parse("USD").unwrap(),
            allowed_domains: vec![AllowedDomain::parse("example.com").unwrap()],
            default_model: tribute_core::attribution::ModelKind::LastTouch,
            window_days: 30,
            cookie_days: 90,
            hold_days: 30,
        },
        created_at: now,
    };
    store.insert_program(&program).await.unwrap();
    let partner = Partner {
        id: PartnerId::generate(),
        program_id: program.id.clone(),
        slug: Slug::parse("bench").unwrap(),
        name: "Bench".into(),
        email: None,
        payout_email: None,
        status: PartnerStatus::Active,
        tier: None,
        group: None,
        team_lead_id: None,
        created_at: now,
    };
    store.insert_partner(&partner).await.unwrap();
    let link = Link {
        id: LinkId::generate(),
        program_id: program.id.clone(),
        partner_id: partner.id.clone(),
        code: ShortCode::generate(),
        destination: "https://example.com/".into(),
        source: None,
        medium: None,
        campaign: None,
        content: None,
        utm: Utm::default(),
        expires_at: None,
        created_at: now,
    };
    store.insert_link(&link).await.unwrap();
    let clicks: Vec<Click> = (0..1_000)
        .map(|i| Click {
            id: ClickId::generate(),
            program_id: program.id.clone(),
            link_id: link.id.clone(),
            partner_id: partner.id.clone(),
            at: now - Duration::days(1),
            ip_truncated: "198.51.100.0/24".into(),
            ip_hash: format!("ip{i}"),
            visitor_hash: format!("v{i}"),
            user_agent: None,
            referrer: None,
            source: None,
            is_bot: false,
            reasons: Vec::new(),
        })
        .collect();
    store.insert_clicks(&clicks).await.unwrap();
    let click_ids: Vec<ClickId> = clicks.iter().map(|c| c.id.clone()).collect();
    // Batches are moved into the store, as the server's event writer does.
    let mut batches: Vec<Vec<Event>> = Vec::new();
    for i in 0..EVENTS {
        if i % BATCH == 0 {
            batches.push(Vec::with_capacity(BATCH));
        }
        batches
            .last_mut()
            .expect("pushed above")
            .push(event(&program.id, i, mix, &click_ids));
    }
    let start = Instant::now();
    for batch in batches {
        store.write_events(batch).await.1.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        store.count_events(&program.id).await.unwrap() as usize,
        EVENTS,
        "every event persisted"
    );
    db.destroy().await;
    EVENTS as f64 / secs
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let anon = run(false).await;
        println!("ingest sqlite, {EVENTS} anonymous page views in batches of {BATCH}: {anon:.0} events/s");
        let mix = run(true).await;
        println!(
            "ingest sqlite, {EVENTS} events in batches of {BATCH} (90% page views, 5% identify, 5% with click id): {mix:.0} events/s"
        );
    });
}
