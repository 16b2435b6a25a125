//! The whole run, decided before the first request: when each request starts, which
//! partner sends it, which lead it carries, and its exact bytes. Pure and seeded, so a
//! run can be repeated with `--seed`.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Map, Value};

/// One partner as the load run drives it.
#[derive(Debug)]
pub struct Partner {
    pub slug: &'static str,
    pub platform: &'static str,
    /// The development key `Cargo.toml` gives this function under `cargo lambda watch`.
    pub key: &'static str,
}

pub const PARTNERS: [Partner; 3] = [
    Partner {
        slug: "knowlarity",
        platform: "Knowlarity",
        key: "local-dev-knowlarity-key",
    },
    Partner {
        slug: "cardekho",
        platform: "CarDekho",
        key: "local-dev-cardekho-key",
    },
    Partner {
        slug: "carwale",
        platform: "CarWale",
        key: "local-dev-carwale-key",
    },
];

impl Partner {
    pub fn route(&self) -> String {
        format!("/admin/mg-digital-leads/source/{}", self.slug)
    }
}

/// What makes a lead recognisable when it comes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The partner's own id in the body (`uuid`/`callid`, `lead_id`, `id`); a retry may
    /// be re-serialised (a different `delivery_attempt`), the id stays.
    PartnerId,
    /// An `Idempotency-Key` header and no id; a retry keeps the key, not the bytes.
    IdempotencyKey,
    /// Neither: only a byte-identical retry is recognised, so retries resend the bytes.
    Neither,
}

/// What the run is asked to do.
#[derive(Debug, Clone)]
pub struct Settings {
    pub duration: Duration,
    /// Requests per minute per partner the partners are told to stay under.
    pub soft_limit_per_minute: f64,
    pub multiplier: f64,
    /// Share of requests that repeat an earlier lead, as a partner retry would.
    pub repeat_fraction: f64,
    pub seed: u64,
    /// Stored in `campaign` of every lead, so the run's rows can be told apart.
    pub tag: String,
}

impl Settings {
    /// Requests per second per partner.
    pub fn rate_per_partner(&self) -> f64 {
        self.soft_limit_per_minute * self.multiplier / 60.0
    }
}

/// A distinct lead: what the table must hold exactly once after the run.
#[derive(Debug, Clone, Serialize)]
pub struct Lead {
    pub partner: usize,
    pub kind: Kind,
    /// As the function stores it (`phone_number`): unique within the run.
    pub phone: String,
    pub partner_lead_id: Option<String>,
    pub idempotency_key: Option<String>,
    #[serde(skip)]
    fields: Map<String, Value>,
}

/// One request of the schedule.
#[derive(Debug, Clone)]
pub struct Request {
    /// Start time, from the start of the run.
    pub at: Duration,
    pub partner: usize,
    pub lead: usize,
    /// 0 for a lead's first copy, then 1, 2, … for its repeats.
    pub attempt: u32,
    pub body: Vec<u8>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug)]
pub struct Plan {
    pub leads: Vec<Lead>,
    /// Sorted by `at`.
    pub requests: Vec<Request>,
}

/// How far back a retry reaches: partners retry after 1, 2 and 4 s and give up after 10.
const RETRY_WINDOW: Duration = Duration::from_secs(10);
/// Of the repeats, the share sent at the very instant of the lead's first copy (a partner
/// firing the same webhook twice): the race the unique indexes settle.
const SIMULTANEOUS_SHARE: f64 = 0.1;

/// Builds the schedule: every partner at `rate_per_partner`, evenly spaced and offset
/// from the others by a third of a period, for `duration`.
pub fn build(settings: &Settings) -> Plan {
    let mut rng = Rng::new(settings.seed);
    let rate = settings.rate_per_partner();
    let period = 1.0 / rate;
    let per_partner = (rate * settings.duration.as_secs_f64()).round() as usize;
    let retry_slots = (RETRY_WINDOW.as_secs_f64() * rate).ceil().max(1.0) as usize;
    let phone_base = rng.below(800_000_000);
    let mut leads: Vec<Lead> = Vec::new();
    let mut requests = Vec::with_capacity(per_partner * PARTNERS.len());
    let mut attempts: Vec<u32> = Vec::new();
    let mut first_at: Vec<f64> = Vec::new();

    for partner in 0..PARTNERS.len() {
        let phase = period * partner as f64 / PARTNERS.len() as f64;
        // The lead each slot of this partner carried, and whether it was its first copy.
        let mut slots: Vec<(usize, bool)> = Vec::with_capacity(per_partner);
        for slot in 0..per_partner {
            let mut at = phase + slot as f64 * period;
            let repeat = if slot > 0 && rng.chance(settings.repeat_fraction) {
                let (previous, first) = slots[slot - 1];
                if first && rng.chance(SIMULTANEOUS_SHARE) {
                    at = phase + (slot - 1) as f64 * period;
                    Some(previous)
                } else {
                    // A lead whose first copy went out within the retry window.
                    (0..4).find_map(|_| {
                        let back = 1 + rng.below(retry_slots.min(slot) as u64) as usize;
                        let lead = slots[slot - back].0;
                        (at - first_at[lead] < RETRY_WINDOW.as_secs_f64()).then_some(lead)
                    })
                }
            } else {
                None
            };
            let lead = repeat.unwrap_or_else(|| {
                let index = leads.len();
                let phone = 9_000_000_000 + phone_base + index as u64;
                leads.push(new_lead(partner, index, phone, settings, &mut rng));
                attempts.push(0);
                first_at.push(at);
                index
            });
            let attempt = attempts[lead];
            attempts[lead] += 1;
            slots.push((lead, attempt == 0));
            requests.push(Request {
                at: Duration::from_secs_f64(at),
                partner,
                lead,
                attempt,
                body: leads[lead].body(attempt),
                idempotency_key: leads[lead].idempotency_key.clone(),
            });
        }
    }
    requests.sort_by_key(|request| request.at);
    Plan { leads, requests }
}

const FIRST_NAMES: &[&str] = &[
    "Ravi", "Asha", "Arjun", "Priya", "Vikram", "Neha", "Suresh", "Kavya", "Imran", "Meera",
    "Rohit", "Ananya", "Sanjay", "Divya", "Farhan", "Lakshmi",
];
const LAST_NAMES: &[&str] = &[
    "Kumar", "Rao", "Sharma", "Iyer", "Patel", "Reddy", "Nair", "Singh", "Khan", "Desai", "Menon",
    "Gupta",
];
const MODELS: &[&str] = &[
    "MG Hector",
    "MG Astor",
    "MG Windsor EV",
    "MG ZS EV",
    "MG Comet EV",
    "MG Gloster",
];
const CITIES: &[&str] = &[
    "Bengaluru",
    "Hyderabad",
    "Pune",
    "Chennai",
    "Gurugram",
    "Kochi",
];

fn new_lead(partner: usize, index: usize, phone: u64, settings: &Settings, rng: &mut Rng) -> Lead {
    let kind = match rng.below(10) {
        0..=3 => Kind::PartnerId,
        4..=6 => Kind::IdempotencyKey,
        _ => Kind::Neither,
    };
    let name = format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES));
    let model = rng.pick(MODELS);
    let tag = settings.tag.as_str();
    let mut fields = Map::new();
    let mut partner_lead_id = None;
    let stored_phone;
    match PARTNERS[partner].slug {
        "knowlarity" => {
            stored_phone = format!("+91{phone}");
            let duration = 15 + rng.below(400);
            fields.insert("caller_id".into(), json!(stored_phone));
            fields.insert("dispnumber".into(), json!("+918047112233"));
            fields.insert("call_duration".into(), json!(duration.to_string()));
            fields.insert("call_type".into(), json!("incoming"));
            fields.insert("agent_number".into(), json!("+919900011122"));
            fields.insert("destination".into(), json!("MG Sales"));
            fields.insert("campaign".into(), json!(tag));
            if rng.chance(0.5) {
                fields.insert("caller_name".into(), json!(name));
            }
            if kind == Kind::PartnerId {
                let uuid = rng.uuid();
                fields.insert("uuid".into(), json!(uuid));
                fields.insert("callid".into(), json!(format!("K-{tag}-{index:06}")));
                partner_lead_id = Some(uuid);
            }
        }
        "cardekho" => {
            stored_phone = phone.to_string();
            fields.insert("name".into(), json!(name));
            fields.insert("phone_number".into(), json!(stored_phone));
            fields.insert("car_model".into(), json!(model));
            fields.insert(
                "lead_url".into(),
                json!(format!("https://cardekho.com/leads/{index}")),
            );
            fields.insert("campaign".into(), json!(tag));
            fields.insert("utm_source".into(), json!("cardekho_ads"));
            if kind == Kind::PartnerId {
                let id = format!("CD-{tag}-{index:06}");
                fields.insert("lead_id".into(), json!(id));
                partner_lead_id = Some(id);
            }
        }
        _ => {
            stored_phone = phone.to_string();
            fields.insert("customer_name".into(), json!(name));
            // CarWale sends the mobile as a number as often as a string.
            if rng.chance(0.5) {
                fields.insert("mobile".into(), json!(phone));
            } else {
                fields.insert("mobile".into(), json!(stored_phone));
            }
            fields.insert("vehicle_model".into(), json!(model));
            fields.insert(
                "page_url".into(),
                json!("https://www.carwale.com/mg-cars/hector/"),
            );
            fields.insert("campaign".into(), json!(tag));
            fields.insert("city".into(), json!(rng.pick(CITIES)));
            fields.insert("dealer_id".into(), json!(1000 + rng.below(100)));
            if kind == Kind::PartnerId {
                // Both of CarWale's id fields occur; `id` as a number.
                if rng.chance(0.5) {
                    let id = format!("CW-{tag}-{index:06}");
                    fields.insert("lead_id".into(), json!(id));
                    partner_lead_id = Some(id);
                } else {
                    let id = settings.seed % 1_000_000 * 1_000_000 + index as u64;
                    fields.insert("id".into(), json!(id));
                    partner_lead_id = Some(id.to_string());
                }
            }
        }
    }
    let idempotency_key = (kind == Kind::IdempotencyKey).then(|| rng.uuid());
    Lead {
        partner,
        kind,
        phone: stored_phone,
        partner_lead_id,
        idempotency_key,
        fields,
    }
}

impl Lead {
    /// The bytes of copy `attempt`: a keyed lead's retry is re-serialised with its attempt
    /// number (the key recognises it, not the bytes); a lead with neither key is resent
    /// byte for byte, the only way it can be recognised.
    pub fn body(&self, attempt: u32) -> Vec<u8> {
        let mut fields = self.fields.clone();
        if attempt > 0 && self.kind != Kind::Neither {
            fields.insert("delivery_attempt".into(), json!(attempt + 1));
        }
        serde_json::to_vec(&Value::Object(fields)).unwrap_or_default()
    }
}

/// SplitMix64: small, seeded and good enough to pick names and schedules.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    pub fn chance(&mut self, probability: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < probability
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// A version-4 UUID's text.
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn settings() -> Settings {
        Settings {
            duration: Duration::from_secs(60),
            soft_limit_per_minute: 120.0,
            multiplier: 10.0,
            repeat_fraction: 0.2,
            seed: 7,
            tag: "load-test".into(),
        }
    }

    #[test]
    fn ten_times_the_soft_limit_is_twenty_a_second_per_partner_for_the_minute() {
        let plan = build(&settings());
        assert_eq!(plan.requests.len(), 3 * 1200);
        for partner in 0..3 {
            let times: Vec<f64> = plan
                .requests
                .iter()
                .filter(|r| r.partner == partner)
                .map(|r| r.at.as_secs_f64())
                .collect();
            assert_eq!(times.len(), 1200);
            assert!(times.iter().all(|t| *t < 60.0), "{partner}");
        }
        assert!(plan.requests.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    fn about_a_fifth_repeat_an_earlier_lead_of_the_same_partner() {
        let plan = build(&settings());
        let repeats = plan.requests.iter().filter(|r| r.attempt > 0).count();
        assert_eq!(repeats + plan.leads.len(), plan.requests.len());
        let share = repeats as f64 / plan.requests.len() as f64;
        assert!((0.17..0.23).contains(&share), "{share}");
        let mut first_at = HashMap::new();
        for request in &plan.requests {
            assert_eq!(plan.leads[request.lead].partner, request.partner);
            let first = *first_at.entry(request.lead).or_insert(request.at);
            assert!(request.at >= first && request.at - first <= RETRY_WINDOW);
        }
        // Some repeats start at the same instant as their first copy.
        assert!(plan
            .requests
            .iter()
            .any(|r| r.attempt > 0 && r.at == first_at[&r.lead]));
    }

    #[test]
    fn every_kind_occurs_and_repeats_keep_what_identifies_them() {
        let plan = build(&settings());
        let kinds: HashSet<Kind> = plan.leads.iter().map(|l| l.kind).collect();
        assert_eq!(kinds.len(), 3);
        let phones: HashSet<(usize, &str)> = plan
            .leads
            .iter()
            .map(|l| (l.partner, l.phone.as_str()))
            .collect();
        assert_eq!(phones.len(), plan.leads.len(), "phones are unique per lead");
        for request in plan.requests.iter().filter(|r| r.attempt > 0) {
            let lead = &plan.leads[request.lead];
            let first = lead.body(0);
            match lead.kind {
                Kind::Neither => assert_eq!(request.body, first),
                Kind::IdempotencyKey => {
                    assert_ne!(request.body, first);
                    assert_eq!(request.idempotency_key, lead.idempotency_key);
                    assert!(request.idempotency_key.is_some());
                }
                Kind::PartnerId => {
                    assert_ne!(request.body, first);
                    let body: Value = serde_json::from_slice(&request.body).unwrap();
                    let id = ["uuid", "lead_id", "id"]
                        .iter()
                        .find_map(|k| body.get(*k))
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
                    assert_eq!(id, lead.partner_lead_id);
                }
            }
        }
    }

    #[test]
    fn unkeyed_bodies_carry_no_partner_id_and_every_body_is_tagged() {
        let plan = build(&settings());
        for lead in &plan.leads {
            let body: Value = serde_json::from_slice(&lead.body(0)).unwrap();
            let has_id = ["uuid", "callid", "call_uuid", "lead_id", "id"]
                .iter()
                .any(|k| body.get(*k).is_some());
            assert_eq!(has_id, lead.kind == Kind::PartnerId, "{body}");
            assert_eq!(body["campaign"], "load-test");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let (a, b) = (build(&settings()), build(&settings()));
        assert_eq!(a.requests.len(), b.requests.len());
        assert!(a
            .requests
            .iter()
            .zip(&b.requests)
            .all(|(x, y)| x.body == y.body && x.at == y.at));
    }
}
