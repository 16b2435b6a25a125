//! Sources are data: each is one `const` declaration of its route slug, the platform
//! name stored with its leads, how it authenticates, how its body becomes fields, what
//! success looks like to it, the aliases of every column, the fields it must send (named
//! as its own guide names them) and an optional default name.
//!
//! Adding a source means adding one declaration here and listing it in [`ALL`]; the
//! pipeline never changes, and `make template` writes its part of the deployment. (The words sources read, success messages included, are
//! `answer`'s.)

/// One partner platform posting leads to its own route.
#[derive(Debug, PartialEq, Eq)]
pub struct Source {
    /// The last path segment of the route and the name of the function binary.
    pub slug: &'static str,
    /// Stored in `platform` and used in the success message.
    pub platform: &'static str,
    /// What the platform's product that sends the leads is called, in the deployment's
    /// descriptions and alarms (`make template`).
    pub product: &'static str,
    pub auth: Auth,
    pub shape: Shape,
    pub reply: Reply,
    /// The largest body accepted (413 above it), checked before anything else of the
    /// body is read or computed.
    pub max_body: usize,
    pub phone_number: Field,
    pub name: Field,
    /// Given and family name, joined when no `name` alias is present.
    pub name_parts: &'static [&'static str],
    pub car_model: &'static [&'static str],
    pub lead_url: &'static [&'static str],
    pub campaign: &'static [&'static str],
    /// Where the partner puts its own id of the lead: a repeat of an id is a retry, stored
    /// once (see `dedup`).
    pub partner_lead_id: &'static [&'static str],
    /// When the name is absent, `Some(prefix)` stores `prefix + phone` instead of
    /// rejecting the lead.
    pub default_name_prefix: Option<&'static str>,
    /// A field that marks a test lead (`true`): stored with status `test`, not `new`, so
    /// an advertiser can prove the wiring without creating a sales lead.
    pub test_flag: Option<&'static str>,
    /// When the platform says the lead was created (stored in `meta_created_at`).
    pub submitted_at: &'static [&'static str],
    /// Whether a lead may also come as a `GET` whose query string holds its fields (a
    /// push that can only call a URL), answered like a `POST`.
    pub query_push: bool,
    /// Names under which the key may also come as a parameter, in the query string or the
    /// body, when the `X-API-Key` header is absent: for a push that cannot set headers.
    /// The key is taken out of the fields before anything is archived.
    pub key_params: &'static [&'static str],
}

/// How a request proves it comes from its source.
#[derive(Debug, PartialEq, Eq)]
pub enum Auth {
    /// The `X-API-Key` header is one of the source's keys; nothing of the body is read
    /// before it passes.
    Header,
    /// A field of the body (its names in priority order) is one of the source's keys.
    /// The body is parsed first (the size limit still comes first), and the key is
    /// never stored with the lead.
    Body(&'static [&'static str]),
    /// `X-Hub-Signature-256`: the HMAC-SHA256 of the exact body bytes with one of the
    /// app secrets (Meta).
    Signature,
}

/// How a body becomes the fields the aliases are looked up in.
#[derive(Debug, PartialEq, Eq)]
pub enum Shape {
    /// The body's own keys (a JSON object or a form).
    Object,
    /// The body's keys plus a list of answers, each an item naming its field in `key`
    /// and its answer in `value` (Google's `user_column_data`).
    Columns {
        list: &'static str,
        key: &'static str,
        value: &'static str,
    },
    /// A notification of lead ids, each lead fetched from the Graph API, whose
    /// `field_data` answers join its own keys (Meta).
    Notification,
}

/// What success looks like to the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The contract's: `201` stored, `200` a duplicate, `202` queued.
    Contract,
    /// The same bodies, always `200`: the platform treats anything else as a failure.
    Ok,
    /// `200` with the count of the notification's leads stored, duplicate and queued.
    Summary,
}

/// A column that may be required: its aliases in priority order, and the partner's
/// name for it in "Missing required fields" (`None` when the field is optional).
#[derive(Debug, PartialEq, Eq)]
pub struct Field {
    pub aliases: &'static [&'static str],
    pub required_as: Option<&'static str>,
}

/// The contract's limit on a partner's (or a lead form's) body.
pub const PARTNER_MAX_BODY: usize = 64 * 1024;

/// The limit on a platform's notification of lead ids. Meta batches up to a thousand
/// changes in one notification, each a few hundred bytes; this leaves room several
/// times over, and stays far inside the gateway's and Lambda's own payload limits.
pub const NOTIFICATION_MAX_BODY: usize = 1024 * 1024;

/// What a keyed source has unless it says otherwise: the partners' `X-API-Key`, a flat
/// body and the contract's answers (Google, keyed too, overrides all three).
const KEYED: Source = Source {
    slug: "",
    platform: "",
    product: "",
    auth: Auth::Header,
    shape: Shape::Object,
    reply: Reply::Contract,
    max_body: PARTNER_MAX_BODY,
    phone_number: Field {
        aliases: &[],
        required_as: None,
    },
    name: Field {
        aliases: &[],
        required_as: None,
    },
    name_parts: &[],
    car_model: &[],
    lead_url: &[],
    campaign: &[],
    partner_lead_id: &[],
    default_name_prefix: None,
    test_flag: None,
    submitted_at: &[],
    query_push: false,
    key_params: &[],
};

pub const KNOWLARITY: Source = Source {
    slug: "knowlarity",
    platform: "Knowlarity",
    product: "Knowlarity",
    phone_number: Field {
        aliases: &[
            "phone_number",
            "mobile",
            "phone",
            "msisdn",
            "customer_number",
            "caller_id",
        ],
        required_as: Some("phone_number"),
    },
    name: Field {
        aliases: &["name", "caller_name", "customer_name"],
        required_as: None,
    },
    car_model: &["car_model", "vehicle_model", "model"],
    lead_url: &[],
    campaign: &["campaign", "campaign_name"],
    partner_lead_id: &["uuid", "callid", "call_uuid"],
    default_name_prefix: Some("Knowlarity Lead "),
    // The call's start, with its offset (`2026-12-02 10:00:00+05:30`).
    submitted_at: &["start_time"],
    // Knowlarity's URL push calls the configured URL with GET and the call in the query,
    // or POST with a form body, and sets no headers of its own.
    query_push: true,
    key_params: &["api_key"],
    ..KEYED
};

pub const CARDEKHO: Source = Source {
    slug: "cardekho",
    platform: "CarDekho",
    product: "CarDekho",
    phone_number: Field {
        aliases: &["phone_number", "mobile", "phone"],
        required_as: Some("phone_number"),
    },
    name: Field {
        aliases: &["name", "customer_name", "contact_name"],
        required_as: Some("name"),
    },
    car_model: &["car_model", "vehicle_model", "model"],
    lead_url: &["lead_url", "page_url", "lead_detail_url"],
    campaign: &["campaign", "utm_campaign"],
    partner_lead_id: &["lead_id", "id"],
    ..KEYED
};

pub const CARWALE: Source = Source {
    slug: "carwale",
    platform: "CarWale",
    product: "CarWale",
    phone_number: Field {
        aliases: &["mobile", "phone_number", "phone"],
        required_as: Some("mobile"),
    },
    name: Field {
        aliases: &["customer_name", "name", "contact_name"],
        required_as: Some("customer_name"),
    },
    car_model: &["vehicle_model", "car_model", "model"],
    lead_url: &["page_url", "lead_url", "url"],
    campaign: &["campaign", "utm_campaign"],
    partner_lead_id: &["lead_id", "id"],
    ..KEYED
};

/// Meta (Facebook and Instagram) lead ads: a signed notification of lead ids, each lead
/// read from the Graph API (see `meta`).
pub const META: Source = Source {
    slug: "meta",
    platform: "Meta",
    product: "Meta lead ads",
    auth: Auth::Signature,
    shape: Shape::Notification,
    reply: Reply::Summary,
    max_body: NOTIFICATION_MAX_BODY,
    phone_number: Field {
        aliases: &[
            "phone_number",
            "phone",
            "mobile_phone",
            "phone_number_with_country_code",
        ],
        required_as: Some("phone_number"),
    },
    name: Field {
        aliases: &["full_name", "name"],
        required_as: None,
    },
    name_parts: &["first_name", "last_name"],
    car_model: &["car_model", "vehicle_model", "interested_model", "model"],
    lead_url: &[],
    campaign: &["campaign_name"],
    // The Graph lead's own id: the notification's `leadgen_id`.
    partner_lead_id: &["id"],
    default_name_prefix: Some("Meta Lead "),
    test_flag: None,
    submitted_at: &["created_time"],
    query_push: false,
    key_params: &[],
};

/// Google Ads lead forms: the form's key inside the body, answers in `user_column_data`
/// under the ids of Google's `LeadFormFieldUserInputType` (or a custom question's text).
pub const GOOGLE: Source = Source {
    slug: "google",
    platform: "Google",
    product: "Google Ads",
    // Google's own samples spell it both ways.
    auth: Auth::Body(&["google_key", "Google_key"]),
    shape: Shape::Columns {
        list: "user_column_data",
        key: "column_id",
        value: "string_value",
    },
    reply: Reply::Ok,
    max_body: PARTNER_MAX_BODY,
    phone_number: Field {
        aliases: &["PHONE_NUMBER", "PHONE_NUMBER_VERIFIED", "WORK_PHONE"],
        required_as: Some("PHONE_NUMBER"),
    },
    name: Field {
        aliases: &["FULL_NAME"],
        required_as: None,
    },
    name_parts: &["FIRST_NAME", "LAST_NAME"],
    car_model: &[
        "VEHICLE_MODEL",
        "which_model_are_you_interested_in?",
        "which_car_are_you_interested_in?",
        "car_model",
        "model",
    ],
    lead_url: &[],
    campaign: &["campaign_id"],
    partner_lead_id: &["lead_id"],
    default_name_prefix: Some("Google Lead "),
    test_flag: Some("is_test"),
    submitted_at: &[],
    query_push: false,
    key_params: &[],
};

/// Every source this build serves, for tools and tests that walk them all.
pub const ALL: &[&Source] = &[&KNOWLARITY, &CARDEKHO, &CARWALE, &META, &GOOGLE];

/// The source whose route ends in `slug`.
pub fn by_slug(slug: &str) -> Option<&'static Source> {
    ALL.iter().copied().find(|source| source.slug == slug)
}

impl Source {
    /// The route partners post to.
    pub fn route(&self) -> String {
        format!("/admin/mg-digital-leads/source/{}", self.slug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_unique_and_found() {
        for source in ALL {
            assert_eq!(
                by_slug(source.slug).map(|s| s.platform),
                Some(source.platform)
            );
        }
        assert!(by_slug("unknown").is_none());
    }

    #[test]
    fn routes_follow_the_contract() {
        assert_eq!(CARWALE.route(), "/admin/mg-digital-leads/source/carwale");
    }
}
