//! A stand-in for Meta's Graph API (Lead Ads) on 127.0.0.1: leads by id, a page's lead
//! forms and a form's leads in pages, in the shapes Meta documents. Every request must
//! carry [`TOKEN`] and its `appsecret_proof` for [`APP_SECRET`], or it gets Meta's error
//! for that; a test can also have requests fail, and read back what was asked.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use shared::domain::meta::{appsecret_proof, PageToken};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The page token the stand-in accepts; distinctive, so a test can look for it in text.
pub const TOKEN: &str = super::META_PAGE_TOKEN;
pub const APP_SECRET: &str = super::META_APP_SECRET;

/// The token and proof the stand-in accepts.
pub fn page_token() -> PageToken {
    PageToken::new(TOKEN, APP_SECRET)
}

/// Meta's default page size.
const DEFAULT_PAGE_SIZE: usize = 25;

/// A lead as Meta returns it with every field the client asks for.
pub fn lead(id: &str, form_id: &str, created: i64) -> Value {
    json!({
        "id": id,
        "created_time": graph_time(created),
        "form_id": form_id,
        "ad_id": "120210000000000001",
        "ad_name": "Hector test drive",
        "adset_id": "120210000000000002",
        "adset_name": "Bengaluru 25-45",
        "campaign_id": "120210000000000003",
        "campaign_name": "MG Hector Diwali",
        "is_organic": false,
        "platform": "fb",
        "field_data": [
            {"name": "full_name", "values": ["Asha Rao"]},
            {"name": "phone_number", "values": ["+919876543210"]}
        ]
    })
}

/// How the stand-in answers a request instead of serving it.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Meta's `{"error":{...}}` under `status`.
    Meta { status: u16, error: Value },
    /// This status with an HTML body, as a proxy or load balancer would answer.
    Status(u16),
    /// Wait this long before serving the request.
    Delay(Duration),
}

impl Failure {
    /// Meta's error with `code` under `status`.
    pub fn meta(status: u16, code: i64, message: &str) -> Self {
        Self::meta_with(status, code, message, json!({}))
    }

    /// As [`Failure::meta`], with fields added to or replacing the error's.
    pub fn meta_with(status: u16, code: i64, message: &str, extra: Value) -> Self {
        let mut error = json!({
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "AStandInTrace",
        });
        if let (Value::Object(error), Value::Object(extra)) = (&mut error, extra) {
            error.extend(extra);
        }
        Self::Meta { status, error }
    }

    /// The lead-retrieval rate limit, word for word.
    pub fn rate_limited() -> Self {
        Self::meta(
            400,
            80005,
            "(#80005) There have been too many leadgen api calls",
        )
    }
}

/// One request the stand-in received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub path: String,
    /// The path's first segment (`v25.0`).
    pub version: String,
    pub query: Vec<(String, String)>,
}

impl Recorded {
    /// The value of a query parameter, if given.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// How often a query parameter is given.
    pub fn count(&self, name: &str) -> usize {
        self.query.iter().filter(|(key, _)| key == name).count()
    }
}

struct State {
    /// Every lead, in the order the form's edge lists them.
    leads: Vec<Value>,
    /// The lead forms of each page.
    forms: BTreeMap<String, Vec<String>>,
    page_size: usize,
    /// The next requests' answers: a failure, or `None` to serve normally.
    script: VecDeque<Option<Failure>>,
    /// After the script, every request's failure, until reset.
    always: Option<Failure>,
    /// Where `paging.next` points, if not at the stand-in itself.
    next_base: Option<String>,
    /// Every page has a `next`, to the same page.
    endless: bool,
    requests: Vec<Recorded>,
}

pub struct GraphStandIn {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: JoinHandle<()>,
}

impl GraphStandIn {
    /// Serves on 127.0.0.1, on a port of the system's choosing, until dropped.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1").await
    }

    /// Serves on `address` (the docker bridge's, for functions in `sam local`'s
    /// containers), on a port of the system's choosing, until dropped.
    pub async fn start_on(address: &str) -> Self {
        let listener = TcpListener::bind((address, 0))
            .await
            .expect("bind the Graph API stand-in");
        let addr = listener.local_addr().expect("stand-in address");
        let state = Arc::new(Mutex::new(State {
            leads: Vec::new(),
            forms: BTreeMap::new(),
            page_size: DEFAULT_PAGE_SIZE,
            script: VecDeque::new(),
            always: None,
            next_base: None,
            endless: false,
            requests: Vec::new(),
        }));
        let server = tokio::spawn(serve(listener, format!("http://{addr}"), state.clone()));
        Self {
            addr,
            state,
            server,
        }
    }

    /// The base URL, as `GraphSettings::base_url` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a lead (see [`lead`]); its `form_id` puts it on that form's edge.
    pub fn add_lead(&self, lead: Value) {
        self.state().leads.push(lead);
    }

    pub fn add_form(&self, page_id: &str, form_id: &str) {
        self.state()
            .forms
            .entry(page_id.to_owned())
            .or_default()
            .push(form_id.to_owned());
    }

    /// At most this many items a page, whatever `limit` asks for.
    pub fn set_page_size(&self, size: usize) {
        self.state().page_size = size.max(1);
    }

    /// The next `times` requests (after those already scripted) get `failure`.
    pub fn fail_next(&self, times: usize, failure: Failure) {
        let mut state = self.state();
        for _ in 0..times {
            state.script.push_back(Some(failure.clone()));
        }
    }

    /// The next `times` requests (after those already scripted) are served normally.
    pub fn pass_next(&self, times: usize) {
        let mut state = self.state();
        for _ in 0..times {
            state.script.push_back(None);
        }
    }

    /// Every request after the script gets `failure`, until [`Self::reset_failures`].
    pub fn fail_always(&self, failure: Failure) {
        self.state().always = Some(failure);
    }

    pub fn reset_failures(&self) {
        let mut state = self.state();
        state.script.clear();
        state.always = None;
    }

    /// `paging.next` points at `base` instead of the stand-in.
    pub fn set_next_base(&self, base: &str) {
        self.state().next_base = Some(base.trim_end_matches('/').to_owned());
    }

    /// Every page has a `next`, as a broken server might.
    pub fn set_endless_paging(&self, endless: bool) {
        self.state().endless = endless;
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }
}

impl Drop for GraphStandIn {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every connection.
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, url: String, state: Arc<Mutex<State>>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let state = state.clone();
                    let url = url.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| {
                            answer(state.clone(), url.clone(), request)
                        });
                        // A client that hangs up early (a timeout) is nothing to report.
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Err(error) => {
                    eprintln!("Graph API stand-in: accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

type Answer = Response<Full<Bytes>>;

fn respond(status: u16, content_type: &str, body: String) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        content_type.parse().expect("a valid content type"),
    );
    response
}

fn json_answer(status: u16, body: &Value) -> Answer {
    respond(status, "application/json; charset=UTF-8", body.to_string())
}

fn meta_error(status: u16, error: Value) -> Answer {
    json_answer(status, &json!({ "error": error }))
}

/// Meta's answer for an id that is not there or not ours.
fn no_such_object(id: &str) -> Answer {
    meta_error(
        400,
        json!({
            "message": format!(
                "Unsupported get request. Object with ID '{id}' does not exist, cannot be \
                 loaded due to missing permissions, or does not support this operation. \
                 Please read the Graph API documentation at \
                 https://developers.facebook.com/docs/graph-api"
            ),
            "type": "GraphMethodException",
            "code": 100,
            "error_subcode": 33,
            "fbtrace_id": "AStandInTrace",
        }),
    )
}

fn invalid_parameter(message: &str) -> Answer {
    meta_error(
        400,
        json!({
            "message": format!("(#100) {message}"),
            "type": "OAuthException",
            "code": 100,
            "fbtrace_id": "AStandInTrace",
        }),
    )
}

async fn answer(
    state: Arc<Mutex<State>>,
    url: String,
    request: Request<Incoming>,
) -> Result<Answer, std::convert::Infallible> {
    let path = request.uri().path().to_owned();
    let query: Vec<(String, String)> =
        form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect();
    let recorded = Recorded {
        path: path.clone(),
        version: segments.first().cloned().unwrap_or_default(),
        query,
    };
    let failure = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.requests.push(recorded.clone());
        match state.script.pop_front() {
            Some(scripted) => scripted,
            None => state.always.clone(),
        }
    };
    match failure {
        Some(Failure::Meta { status, error }) => return Ok(meta_error(status, error)),
        Some(Failure::Status(status)) => {
            let page = format!("<html><body><h1>{status}</h1>Bad gateway</body></html>");
            return Ok(respond(status, "text/html", page));
        }
        Some(Failure::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    if let Some(refusal) = check_token(&recorded) {
        return Ok(refusal);
    }
    let state = state.lock().unwrap_or_else(PoisonError::into_inner);
    Ok(route(&state, &url, &recorded, &segments))
}

/// Meta's errors for a missing or wrong token or proof, as for an app that requires
/// proofs.
fn check_token(request: &Recorded) -> Option<Answer> {
    let oauth = |code: i64, message: &str| {
        meta_error(
            400,
            json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AStandInTrace"}),
        )
    };
    let proof_error = |message: &str| {
        meta_error(
            400,
            json!({"message": message, "type": "GraphMethodException", "code": 100, "fbtrace_id": "AStandInTrace"}),
        )
    };
    if request.count("access_token") > 1 || request.count("appsecret_proof") > 1 {
        return Some(invalid_parameter(
            "access_token or appsecret_proof given twice",
        ));
    }
    match request.param("access_token") {
        None | Some("") => {
            return Some(oauth(
                104,
                "An access token is required to request this resource.",
            ))
        }
        Some(token) if token != TOKEN => {
            return Some(oauth(
                190,
                "Invalid OAuth access token - Cannot parse access token",
            ))
        }
        Some(_) => {}
    }
    match request.param("appsecret_proof") {
        None => Some(proof_error(
            "API calls from the server require an appsecret_proof argument",
        )),
        Some(proof) if proof != appsecret_proof(TOKEN, APP_SECRET) => Some(proof_error(
            "Invalid appsecret_proof provided in the API argument",
        )),
        Some(_) => None,
    }
}

fn route(state: &State, url: &str, request: &Recorded, segments: &[String]) -> Answer {
    let version_ok = segments.first().is_some_and(|version| {
        version
            .strip_prefix('v')
            .and_then(|number| number.split_once('.'))
            .is_some_and(|(major, minor)| {
                [major, minor]
                    .iter()
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            })
    });
    if !version_ok {
        return meta_error(
            400,
            json!({"message": format!("Unknown path components: {}", request.path), "type": "OAuthException", "code": 2500, "fbtrace_id": "AStandInTrace"}),
        );
    }
    let fields = request.param("fields");
    match segments {
        [_, id] => match state.leads.iter().find(|lead| lead["id"] == id.as_str()) {
            Some(found) => json_answer(200, &Value::Object(select(found, fields))),
            None => no_such_object(id),
        },
        [_, page_id, edge] if edge == "leadgen_forms" => match state.forms.get(page_id) {
            Some(forms) => {
                let items: Vec<Map<String, Value>> = forms
                    .iter()
                    .map(|form| select(&json!({ "id": form }), fields))
                    .collect();
                page(state, url, request, items, None)
            }
            None => no_such_object(page_id),
        },
        [_, form_id, edge] if edge == "leads" => {
            let known = state.forms.values().flatten().any(|form| form == form_id)
                || state
                    .leads
                    .iter()
                    .any(|lead| lead["form_id"] == form_id.as_str());
            if !known {
                return no_such_object(form_id);
            }
            let since = match request.param("filtering").map(created_after) {
                None => None,
                Some(Ok(since)) => Some(since),
                Some(Err(reason)) => return invalid_parameter(&reason),
            };
            let items: Vec<Map<String, Value>> = state
                .leads
                .iter()
                .filter(|lead| lead["form_id"] == form_id.as_str())
                .map(|lead| select(lead, fields))
                .collect();
            page(state, url, request, items, since)
        }
        _ => meta_error(
            400,
            json!({"message": format!("Unknown path components: {}", request.path), "type": "OAuthException", "code": 2500, "fbtrace_id": "AStandInTrace"}),
        ),
    }
}

/// The fields asked for (and the id, which Meta always includes).
fn select(object: &Value, fields: Option<&str>) -> Map<String, Value> {
    let Value::Object(object) = object else {
        return Map::new();
    };
    match fields {
        None => object.clone(),
        Some(fields) => {
            let wanted: Vec<&str> = fields.split(',').collect();
            object
                .iter()
                .filter(|(key, _)| key.as_str() == "id" || wanted.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        }
    }
}

/// The `value` of a `time_created` `GREATER_THAN` filter.
fn created_after(filtering: &str) -> Result<i64, String> {
    let filters: Vec<Value> = serde_json::from_str(filtering)
        .map_err(|_| format!("Param filtering must be a JSON array: {filtering}"))?;
    filters
        .iter()
        .find(|filter| filter["field"] == "time_created" && filter["operator"] == "GREATER_THAN")
        .and_then(|filter| match &filter["value"] {
            Value::Number(number) => number.as_i64(),
            Value::String(text) => text.parse().ok(),
            _ => None,
        })
        .ok_or_else(|| format!("Unsupported filtering: {filtering}"))
}

/// One page of `items` from the `after` cursor, filtered after paging as Meta does, so a
/// page may come back empty with a `next`.
fn page(
    state: &State,
    url: &str,
    request: &Recorded,
    items: Vec<Map<String, Value>>,
    since: Option<i64>,
) -> Answer {
    let start = match request.param("after") {
        None => 0,
        Some(cursor) => match position(cursor) {
            Some(start) => start,
            None => return invalid_parameter("Invalid cursor"),
        },
    };
    let limit = request
        .param("limit")
        .and_then(|limit| limit.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, state.page_size);
    let end = (start + limit).min(items.len());
    let data: Vec<Value> = items
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .filter(|item| match since {
            None => true,
            Some(since) => item
                .get("created_time")
                .and_then(Value::as_str)
                .and_then(unix_seconds)
                .is_some_and(|created| created > since),
        })
        .cloned()
        .map(Value::Object)
        .collect();
    let (after, more) = if state.endless {
        (start, true)
    } else {
        (end, end < items.len())
    };
    if data.is_empty() && !more {
        return json_answer(200, &json!({ "data": [] }));
    }
    let mut paging = json!({"cursors": {"before": cursor(start), "after": cursor(after)}});
    if more {
        // Like Meta's: the request's query with the token but without the proof.
        let mut next = form_urlencoded::Serializer::new(String::new());
        for (key, value) in &request.query {
            if key != "appsecret_proof" && key != "after" {
                next.append_pair(key, value);
            }
        }
        next.append_pair("after", &cursor(after));
        let base = state.next_base.as_deref().unwrap_or(url);
        paging["next"] = format!("{base}{}?{}", request.path, next.finish()).into();
    }
    json_answer(200, &json!({ "data": data, "paging": paging }))
}

/// An opaque-looking cursor, with characters that need encoding in a query.
fn cursor(position: usize) -> String {
    format!("QVFI{position:06}==")
}

fn position(cursor: &str) -> Option<usize> {
    cursor
        .strip_prefix("QVFI")?
        .strip_suffix("==")?
        .parse()
        .ok()
}

/// Graph API time, `2026-11-20T08:49:14+0000`, of unix seconds.
pub fn graph_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+0000",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// Unix seconds of Graph API time (any `+hhmm`/`-hhmm` offset).
pub fn unix_seconds(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    if text.len() != 24 || text.get(10..11) != Some("T") {
        return None;
    }
    let days = days_from_civil(number(0..4)?, number(5..7)?, number(8..10)?);
    let seconds = number(11..13)? * 3600 + number(14..16)? * 60 + number(17..19)?;
    let offset = (number(20..22)? * 3600 + number(22..24)? * 60)
        * match text.get(19..20)? {
            "+" => 1,
            "-" => -1,
            _ => return None,
        };
    Some(days * 86_400 + seconds - offset)
}

// Howard Hinnant's days_from_civil and civil_from_days, for the proleptic Gregorian
// calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
