//! `tribute demo`: a ready program with partners in two tiers and a team,
//! links, coupons and 90 days of clicks, conversions, commissions, refunds
//! and a paid payout (`demo_money`), so a newcomer sees data at once.

use chrono::{Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tribute_core::apikey::{KeyKind, Scope};
use tribute_core::attribution::ModelKind;
use tribute_core::click::{truncate_ip, Click, VisitorHasher};
use tribute_core::coupon::{Coupon, CouponCode};
use tribute_core::ids::{ClickId, CouponId, LinkId, PartnerId, ProgramId};
use tribute_core::link::{Link, ShortCode, Utm};
use tribute_core::money::Currency;
use tribute_core::partner::{Email, Partner, PartnerStatus, Slug};
use tribute_core::program::{AllowedDomain, Program, ProgramSettings};
use tribute_store::{Page, Store};

use crate::keys::new_key;

/// The demo's partners: slug, name, tier, team lead slug.
const PARTNERS: &[(&str, &str, &str, Option<&str>)] = &[
    ("northwind", "Northwind Agency", "gold", None),
    ("ada-reviews", "Ada Reviews", "gold", Some("northwind")),
    ("bytes-weekly", "Bytes Weekly", "silver", Some("northwind")),
    ("cloudcast", "CloudCast Podcast", "silver", None),
    ("devtips", "DevTips Blog", "silver", None),
];

const SOURCES: &[&str] = &["website", "social", "email", "ads"];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
];

const BOT_AGENT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// The `secrets` rows that keep the demo's keys, so a second run shows the
/// same ones. The tokens are kept in clear there because the demo prints
/// them again; `api_keys` holds only their hashes, as for any key.
const ADMIN_KEY_SECRET: &str = "demo_admin_key";
const PARTNER_KEY_SECRET: &str = "demo_partner_key";

/// Seed (once: an existing database keeps its data and its demo keys) and
/// print how to start. `database` names the database in messages.
pub async fn seed_and_print(store: &Store, public_url: &str, database: &str) -> anyhow::Result<()> {
    let existing = store
        .programs(Page {
            limit: 1,
            offset: 0,
        })
        .await?;
    let (program, codes) = match existing.into_iter().next() {
        Some(p) => {
            let links = store
                .links(
                    &tribute_store::OwnedFilter {
                        program_id: Some(p.id.clone()),
                        partner_id: None,
                    },
                    Page {
                        limit: 3,
                        offset: 0,
                    },
                )
                .await?;
            println!("Reusing the demo data and keys in {database} (delete it to start afresh).");
            (p, links.into_iter().map(|l| l.code.to_string()).collect())
        }
        None => {
            println!("Seeding a demo program into {database}.");
            seed(store, &mut StdRng::seed_from_u64(42)).await?
        }
    };
    let admin = demo_key(
        store,
        ADMIN_KEY_SECRET,
        Scope::Admin,
        KeyKind::Secret,
        None,
        None,
        "demo admin",
    )
    .await?;
    let partner = demo_key(
        store,
        PARTNER_KEY_SECRET,
        Scope::Partner,
        KeyKind::Secret,
        Some(&Slug::parse("ada-reviews")?),
        Some(program.id.clone()),
        "demo partner",
    )
    .await?;
    let base = public_url.trim_end_matches('/');
    println!();
    println!(
        "Tribute demo: program `{}` ({})",
        program.settings.name, program.id
    );
    println!(
        "  tracked links:   {}",
        codes
            .iter()
            .map(|c| format!("{base}/r/{c}"))
            .collect::<Vec<_>>()
            .join("  ")
    );
    println!("  JSON API:        {base}/api/v1/partners");
    println!("  try:             curl -H 'Authorization: Bearer {admin}' {base}/api/v1/partners");
    println!("  partner key (ada-reviews): {partner}");
    println!("  admin key:");
    println!("{admin}");
    println!();
    Ok(())
}

/// The demo's key kept under `secret`, or a new one (kept there for the
/// next run) when there is none or it no longer works (revoked, or made
/// for a program since deleted) or no longer fits (another scope or kind).
async fn demo_key(
    store: &Store,
    secret: &str,
    scope: Scope,
    kind: KeyKind,
    partner_slug: Option<&Slug>,
    program: Option<ProgramId>,
    name: &str,
) -> anyhow::Result<String> {
    if let Some(token) = store.secret(secret).await? {
        let fits = store.api_key_by_token(&token).await?.is_some_and(|k| {
            k.scope == scope
                && k.kind == kind
                && (program.is_none() || k.program_id.as_ref() == program.as_ref())
        });
        if fits {
            return Ok(token);
        }
    }
    let (_, token) = new_key(store, scope, kind, partner_slug, program, Some(name.into())).await?;
    store.set_secret(secret, &token).await?;
    Ok(token)
}

async fn seed(store: &Store, rng: &mut StdRng) -> anyhow::Result<(Program, Vec<String>)> {
    let now = Utc::now();
    let program = Program {
        id: ProgramId::generate(),
        settings: ProgramSettings {
            name: "Acme Cloud Partners".into(),
            currency: Currency::parse("USD")?,
            allowed_domains: vec![AllowedDomain::parse("example.com")?],
            default_model: ModelKind::LastTouch,
            window_days: 30,
            cookie_days: 90,
            hold_days: 30,
        },
        created_at: now - Duration::days(120),
    };
    store.insert_program(&program).await?;

    let mut partners: Vec<Partner> = Vec::new();
    for (slug, name, tier, lead) in PARTNERS {
        let team_lead_id = lead.and_then(|l| {
            partners
                .iter()
                .find(|p| p.slug.as_str() == l)
                .map(|p| p.id.clone())
        });
        let partner = Partner {
            id: PartnerId::generate(),
            program_id: program.id.clone(),
            slug: Slug::parse(slug)?,
            name: (*name).into(),
            email: Some(Email::parse(&format!("{slug}@partners.example.com"))?),
            payout_email: None,
            status: PartnerStatus::Active,
            tier: Some((*tier).into()),
            group: Some(
                if lead.is_some() || *slug == "northwind" {
                    "agencies"
                } else {
                    "creators"
                }
                .into(),
            ),
            team_lead_id,
            created_at: now - Duration::days(110),
        };
        store.insert_partner(&partner).await?;
        store
            .insert_coupon(&Coupon {
                id: CouponId::generate(),
                program_id: program.id.clone(),
                partner_id: partner.id.clone(),
                code: CouponCode::parse(&format!("{}20", slug.replace('-', "")))?,
                created_at: partner.created_at,
            })
            .await?;
        partners.push(partner);
    }

    let mut links = Vec::new();
    for (i, partner) in partners.iter().enumerate() {
        for source in [SOURCES[i % SOURCES.len()], SOURCES[(i + 1) % SOURCES.len()]] {
            let link = Link {
                id: LinkId::generate(),
                program_id: program.id.clone(),
                partner_id: partner.id.clone(),
                code: ShortCode::generate(),
                destination: "https://example.com/pricing".into(),
                source: Some(source.into()),
                medium: None,
                campaign: Some("launch".into()),
                content: None,
                utm: Utm::generate(
                    partner.slug.as_str(),
                    Some(source),
                    None,
                    Some("launch"),
                    None,
                ),
                expires_at: None,
                created_at: partner.created_at,
            };
            store.insert_link(&link).await?;
            links.push(link);
        }
    }

    // ~3,000 clicks over 90 days: links weighted unevenly, visitors that
    // come back, a share of bots, more traffic on recent days.
    let hasher = VisitorHasher::new(b"demo");
    let mut clicks = Vec::new();
    for _ in 0..3_000 {
        let link = &links[(rng.gen::<f64>().powi(2) * links.len() as f64) as usize];
        let age = Duration::seconds((rng.gen::<f64>().powf(1.5) * 90.0 * 86_400.0) as i64);
        let visitor: u32 = rng.gen_range(0..1_200);
        let ip = std::net::IpAddr::from([198, 51, (visitor / 250) as u8, (visitor % 250) as u8]);
        let is_bot = rng.gen_bool(0.06);
        let ua = if is_bot {
            BOT_AGENT
        } else {
            USER_AGENTS[visitor as usize % USER_AGENTS.len()]
        };
        clicks.push(Click {
            id: ClickId::generate(),
            program_id: program.id.clone(),
            link_id: link.id.clone(),
            partner_id: link.partner_id.clone(),
            at: now - age,
            ip_truncated: truncate_ip(ip),
            ip_hash: hasher.ip_hash(ip),
            visitor_hash: hasher.visitor_hash(ip, ua),
            user_agent: Some(ua.into()),
            referrer: Some("https://news.example.org/".into()),
            source: link.source.clone(),
            is_bot,
            reasons: if is_bot {
                vec![tribute_core::fraud::Reason {
                    rule: "bot_user_agent".into(),
                    evidence: format!("the user agent {ua:?} is a known bot"),
                    contribution: 100,
                }]
            } else {
                Vec::new()
            },
        });
    }
    store.insert_clicks(&clicks).await?;
    crate::demo_money::seed_money(store, &program, &clicks, rng).await?;
    let codes = links.iter().take(3).map(|l| l.code.to_string()).collect();
    Ok((program, codes))
}
