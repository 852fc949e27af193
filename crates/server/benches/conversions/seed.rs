//! The benchmark's program: 20 partners in two-level teams, two reward
//! rules, override levels, a link per partner, a click per conversion and
//! the owner's secret ingest key; and the conversions the clients send.

use chrono::Utc;
use serde_json::{json, Value};
use tribute_core::apikey::{ApiKey, KeyKind, NewKey, Scope};
use tribute_core::attribution::ModelKind;
use tribute_core::click::Click;
use tribute_core::commission::{OverridePlan, RewardRule, RuleTerms};
use tribute_core::ids::{ApiKeyId, ClickId, LinkId, PartnerId, ProgramId, RewardRuleId};
use tribute_core::link::{Link, ShortCode, Utm};
use tribute_core::money::Currency;
use tribute_core::partner::{Partner, PartnerStatus, Slug};
use tribute_core::program::{AllowedDomain, Program, ProgramSettings};
use tribute_store::Store;

const PARTNERS: usize = 20;

/// The seeded program: what the driver sends and the checks expect.
pub struct Seed {
    pub program: Program,
    /// The secret ingest key the owner's backend would use.
    pub key: String,
    /// One click per conversion index, and the partner it belongs to.
    pub clicks: Vec<(ClickId, usize)>,
    pub partners: Vec<Partner>,
    /// Overrides one commission of each partner earns: its team chain,
    /// at most as deep as the override levels.
    pub chain: Vec<usize>,
}

/// Partner `p`'s team lead: partners 0 and 1 lead partners 2–5, who lead
/// two in three of the others (two-level chains).
fn lead_of(p: usize) -> Option<usize> {
    match p {
        0 | 1 => None,
        2..=5 => Some(p % 2),
        _ if p.is_multiple_of(3) => None,
        _ => Some(2 + p % 4),
    }
}

pub async fn seed(store: &Store, n: usize) -> Seed {
    let now = Utc::now();
    let program = Program {
        id: ProgramId::generate(),
        settings: ProgramSettings {
            name: "Bench".into(),
            currency: Currency::parse("EUR").expect("a currency"),
            allowed_domains: vec![AllowedDomain::parse("acme.test").expect("a domain")],
            default_model: ModelKind::LastTouch,
            window_days: 30,
            cookie_days: 90,
            hold_days: 30,
        },
        created_at: now,
    };
    store.insert_program(&program).await.expect("program");
    let mut partners: Vec<Partner> = Vec::with_capacity(PARTNERS);
    for p in 0..PARTNERS {
        let partner = Partner {
            id: PartnerId::generate(),
            program_id: program.id.clone(),
            slug: Slug::parse(&format!("partner-{p}")).expect("a slug"),
            name: format!("Partner {p}"),
            email: None,
            payout_email: None,
            status: PartnerStatus::Active,
            tier: None,
            group: (p % 2 == 0).then(|| "agencies".to_owned()),
            team_lead_id: lead_of(p).map(|l| partners[l].id.clone()),
            created_at: now,
        };
        store.insert_partner(&partner).await.expect("partner");
        partners.push(partner);
    }
    let levels = [1000, 500];
    let chain = (0..PARTNERS)
        .map(|mut p| {
            let mut depth = 0;
            while let (Some(l), true) = (lead_of(p), depth < levels.len()) {
                depth += 1;
                p = l;
            }
            depth
        })
        .collect();
    let plan = OverridePlan::new(levels.to_vec()).expect("override levels");
    let terms = tribute_core::program::CommissionTerms {
        override_levels_bps: plan.levels_bps().to_vec(),
        payout_min_amount: 0,
    };
    store
        .set_commission_terms(&program.id, &terms)
        .await
        .expect("override levels");
    for terms in [
        json!({"name": "Everyone 10%", "event": "sale", "kind": "percentage",
               "rate_bps": 1000, "duration": "lifetime"}),
        json!({"name": "Agencies 15% for a year", "event": "sale", "kind": "percentage",
               "rate_bps": 1500, "duration": {"months": 12}, "scope": {"group": "agencies"}}),
    ] {
        let rule = RewardRule {
            id: RewardRuleId::generate(),
            program_id: program.id.clone(),
            version: 1,
            terms: RuleTerms::from_json(&terms).expect("rule terms"),
        };
        store.insert_reward_rule(&rule, now).await.expect("rule");
    }
    let mut links = Vec::with_capacity(PARTNERS);
    for partner in &partners {
        let link = Link {
            id: LinkId::generate(),
            program_id: program.id.clone(),
            partner_id: partner.id.clone(),
            code: ShortCode::generate(),
            destination: "https://acme.test/".into(),
            source: None,
            medium: None,
            campaign: None,
            content: None,
            utm: Utm::default(),
            expires_at: None,
            created_at: now,
        };
        store.insert_link(&link).await.expect("link");
        links.push(link);
    }
    let clicks: Vec<Click> = (0..n)
        .map(|i| {
            let p = i % PARTNERS;
            Click {
                id: ClickId::generate(),
                program_id: program.id.clone(),
                link_id: links[p].id.clone(),
                partner_id: partners[p].id.clone(),
                at: now - chrono::Duration::hours(1),
                ip_truncated: "198.51.100.0/24".into(),
                ip_hash: format!("ip{i}"),
                visitor_hash: format!("v{i}"),
                user_agent: None,
                referrer: None,
                source: None,
                is_bot: false,
                reasons: Vec::new(),
            }
        })
        .collect();
    for chunk in clicks.chunks(5_000) {
        store.insert_clicks(chunk).await.expect("clicks");
    }
    let new = NewKey::of(Scope::Ingest, KeyKind::Secret);
    let key = ApiKey {
        id: ApiKeyId::generate(),
        scope: Scope::Ingest,
        kind: KeyKind::Secret,
        partner_id: None,
        program_id: Some(program.id.clone()),
        name: Some("bench backend".into()),
        created_at: now,
        revoked_at: None,
    };
    store.insert_api_key(&key, &new.hash).await.expect("key");
    Seed {
        program,
        key: new.token,
        clicks: clicks
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c.id, i % PARTNERS))
            .collect(),
        partners,
        chain,
    }
}

/// Conversion `i`: its body and the click (index) it carries. One in four
/// is a later payment of subscriber `j` (first paid as conversion `4j`,
/// whose click and customer id it repeats); one in four has an e-mail.
pub fn conversion(seed: &Seed, i: usize) -> (Value, usize) {
    let mut body = json!({
        "external_id": format!("order-{i}"),
        "value": 1_000 + (i * 7_919) % 99_000,
        "currency": "EUR",
    });
    let click = match i % 4 {
        0 => {
            body["customer_id"] = json!(format!("cust-{}", i / 4));
            i
        }
        1 => {
            body["email"] = json!(format!("buyer{i}@example.org"));
            i
        }
        2 => i,
        _ => {
            let j = i / 8;
            body["customer_id"] = json!(format!("cust-{j}"));
            4 * j
        }
    };
    body["click_id"] = json!(seed.clicks[click].0.as_str());
    (body, click)
}
