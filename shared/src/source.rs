//! Sources are data: each partner is one `const` declaration of its route slug, the
//! platform name stored with its leads, the aliases of every column, the fields it must
//! send (named as the partner's own guide names them) and an optional default name.
//!
//! Adding a partner means adding one declaration here and listing it in [`ALL`]; the
//! pipeline never changes. (The words partners read, success messages included, are
//! `answer`'s.)

/// One partner platform posting leads to its own route.
#[derive(Debug, PartialEq, Eq)]
pub struct Source {
    /// The last path segment of the route and the name of the function binary.
    pub slug: &'static str,
    /// Stored in `platform` and used in the success message.
    pub platform: &'static str,
    pub phone_number: Field,
    pub name: Field,
    pub car_model: &'static [&'static str],
    pub lead_url: &'static [&'static str],
    pub campaign: &'static [&'static str],
    /// Where the partner puts its own id of the lead: a repeat of an id is a retry, stored
    /// once (see `dedup`).
    pub partner_lead_id: &'static [&'static str],
    /// When the name is absent, `Some(prefix)` stores `prefix + phone` instead of
    /// rejecting the lead.
    pub default_name_prefix: Option<&'static str>,
}

/// A column that may be required: its aliases in priority order, and the partner's
/// name for it in "Missing required fields" (`None` when the field is optional).
#[derive(Debug, PartialEq, Eq)]
pub struct Field {
    pub aliases: &'static [&'static str],
    pub required_as: Option<&'static str>,
}

pub const KNOWLARITY: Source = Source {
    slug: "knowlarity",
    platform: "Knowlarity",
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
};

pub const CARDEKHO: Source = Source {
    slug: "cardekho",
    platform: "CarDekho",
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
    default_name_prefix: None,
};

pub const CARWALE: Source = Source {
    slug: "carwale",
    platform: "CarWale",
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
    default_name_prefix: None,
};

/// Every source this build serves, for tools and tests that walk them all.
pub const ALL: &[&Source] = &[&KNOWLARITY, &CARDEKHO, &CARWALE];

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
