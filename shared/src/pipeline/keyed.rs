//! The keyed path: a source that proves itself with a key, in the `X-API-Key` header
//! (partners; Knowlarity's push, which cannot set headers, also as a parameter) or in its
//! body (Google). The contract's checks in its order — the key, the
//! body, the required fields — then one lead stored or kept.

use std::borrow::Cow;
use std::time::Instant;

use serde_json::Value;

use crate::domain::auth::{self, ApiKeys, Fingerprint};
use crate::domain::lead;
use crate::domain::lead::dedup::Identity;
use crate::domain::lead::payload::{self, Payload};
use crate::domain::lead::record::LeadRecord;
use crate::domain::lead::shape;
use crate::domain::source::{Auth, Source};
use crate::error::{Error, Refusal};
use crate::infra::secrets::Setting;
use crate::pipeline::keep::Keeper;
use crate::pipeline::outcome::Ingested;
use crate::pipeline::request::Incoming;

/// One keyed request: checked, mapped, and its lead stored or kept.
pub(super) async fn ingest(
    keeper: &Keeper,
    keys: &Setting<ApiKeys>,
    incoming: &Incoming<'_>,
    started: Instant,
) -> Ingested {
    let (key, payload) = match admit(keeper.source, keys, incoming).await {
        Ok(admitted) => admitted,
        Err(error) => {
            return Ingested {
                key: None,
                result: Err(error),
            }
        }
    };
    let result = match map(keeper.source, payload, incoming) {
        Ok(record) => keeper.keep(record, started).await,
        Err(refusal) => Err(refusal.into()),
    };
    Ingested {
        key: Some(key),
        result,
    }
}

/// The key and the body, in the order the key's place allows: a header's key before
/// anything of the body is read, a body's key once the body is parsed. A missing key is
/// the sender's mistake whatever state the secrets are in.
async fn admit(
    source: &'static Source,
    keys: &Setting<ApiKeys>,
    incoming: &Incoming<'_>,
) -> Result<(Fingerprint, Payload), Error> {
    match source.auth {
        Auth::Body(names) => {
            let (key, payload) = take_key(source, incoming, names)?;
            let key = key.as_deref().map(str::as_bytes);
            auth::require_present(key)?;
            Ok((keys.get().await?.check(key)?, payload))
        }
        Auth::Header | Auth::Signature => {
            let (key, read) = header_key(source, incoming);
            auth::require_present(key.as_deref())?;
            let key = keys.get().await?.check(key.as_deref())?;
            Ok((key, keyless(source, incoming, read)?))
        }
    }
}

/// The contract's checks 1 to 3, without I/O, for a source that proves itself with a
/// key: the key, the body, the required fields. Returns the record to store, or why the
/// request is refused.
pub fn prepare(
    source: &'static Source,
    api_keys: &ApiKeys,
    incoming: &Incoming<'_>,
) -> Result<LeadRecord, Error> {
    let payload = match source.auth {
        Auth::Body(names) => {
            let (key, payload) = take_key(source, incoming, names)?;
            api_keys.check(key.as_deref().map(str::as_bytes))?;
            payload
        }
        Auth::Header | Auth::Signature => {
            let (key, read) = header_key(source, incoming);
            api_keys.check(key.as_deref())?;
            keyless(source, incoming, read)?
        }
    };
    Ok(map(source, payload, incoming)?)
}

/// The key of a source keyed by the `X-API-Key` header: the header's when it has one.
/// Otherwise, for a source whose push cannot set headers (its `key_params`), the query
/// string's parameter, else the body's field, the body then read to find it (and handed
/// back, so it is read once). A body that cannot be read has no key: the key is still
/// the first thing refused.
fn header_key<'a>(
    source: &Source,
    incoming: &Incoming<'a>,
) -> (Option<Cow<'a, [u8]>>, Option<Payload>) {
    if let Some(header) = incoming.api_key.filter(|key| !key.trim_ascii().is_empty()) {
        return (Some(Cow::Borrowed(header)), None);
    }
    if source.key_params.is_empty() {
        return (incoming.api_key.map(Cow::Borrowed), None);
    }
    let in_query = incoming.query.and_then(|query| {
        let params = form_urlencoded::parse(query.as_bytes());
        source.key_params.iter().find_map(|name| {
            params.clone().find_map(|(param, value)| {
                (param == *name && !value.trim().is_empty()).then(|| value.into_owned())
            })
        })
    });
    if let Some(key) = in_query {
        return (Some(Cow::Owned(key.into_bytes())), None);
    }
    match decode(source, incoming) {
        Ok(payload) => {
            let key = lead::first_value(&payload.fields, source.key_params);
            (key.map(|key| Cow::Owned(key.into_bytes())), Some(payload))
        }
        Err(_) => (None, None),
    }
}

/// The payload once the key has passed (decoded now unless [`header_key`] already read
/// it), without the source's key parameters, so that a key sent as one is never stored
/// or queued with the lead.
fn keyless(
    source: &Source,
    incoming: &Incoming<'_>,
    read: Option<Payload>,
) -> Result<Payload, Refusal> {
    let payload = match read {
        Some(payload) => payload,
        None => decode(source, incoming)?,
    };
    Ok(without(payload, source.key_params))
}

pub(super) fn decode(source: &Source, incoming: &Incoming<'_>) -> Result<Payload, Refusal> {
    payload::decode(incoming.content_type, incoming.body, source.max_body)
}

/// The body, and the key it carries under the first of `names` it has, taken out of it
/// so that it is never stored or queued with the lead.
fn take_key(
    source: &Source,
    incoming: &Incoming<'_>,
    names: &[&str],
) -> Result<(Option<String>, Payload), Refusal> {
    let payload = decode(source, incoming)?;
    let key = lead::first_value(&payload.fields, names);
    Ok((key, without(payload, names)))
}

/// `payload` without the fields `names`, archived again only if one was there.
fn without(mut payload: Payload, names: &[&str]) -> Payload {
    let mut dropped = false;
    for name in names {
        dropped |= payload.fields.remove(*name).is_some();
    }
    if dropped {
        payload.archived = Value::Object(payload.fields.clone()).to_string();
    }
    payload
}

/// Checks 2 and 3, once the proof has passed: the body's fields and the required ones.
fn map(
    source: &'static Source,
    payload: Payload,
    incoming: &Incoming<'_>,
) -> Result<LeadRecord, Refusal> {
    let fields = shape::fields(&source.shape, payload.fields);
    let lead = lead::map(source, &fields)?;
    Ok(LeadRecord {
        source,
        identity: Identity::of(source, &fields, incoming.idempotency_key, incoming.body),
        lead,
        payload: payload.archived,
        request_id: incoming.request_id.to_owned(),
        received_at: incoming.received_at,
    })
}
