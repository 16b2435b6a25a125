//! What `template.yaml` and the local runs must hold that generation cannot promise,
//! against the code's own list [`shared::domain::source::ALL`]. Each source's part of the
//! template (its secret, function, alarms and outputs) is written by `make template` from
//! its declaration, and `tools/template/tests/fresh.rs` fails while the checked-in
//! template is stale; so what is checked here is what the generator (or a hand-written part) could
//! still get wrong. What differs between sources follows from how each proves itself
//! (its [`Auth`]), never from its name:
//!
//! - every crate under `functions/` is deployed, built by cargo-lambda from its binary,
//!   with a log group (the sources share one) and an alarm on its errors; the sources
//!   are the crates that serve an `App` (`shared::edge::http::serve`), each with
//!   `events/<slug>/`;
//! - each source's routes are its function's only events and no one else's; its secret
//!   is generated, never written, readable by it alone (a signed source's also by the
//!   Graph readers; in the shape the code reads), and it sends to the buffer queue and
//!   the dead-letter queue only; its timeout lies between the code's request budget and
//!   the partners' 10 s; its metric filters count labels the code logs;
//! - the functions that read a signed source's leads from the Graph API (the drain, for
//!   leads queued unread, and `meta-sync`) read its secret too, with the template's Graph
//!   API version, whose default is the code's; `meta-sync` runs on a schedule, one at a
//!   time, with no route and no API key, and may send to the buffer and dead-letter queues;
//! - the gateway never answers an overload with a 4xx, answers everything in the
//!   contract's JSON, checks no API key of its own (the function does), logs no header or
//!   body, and sits behind a WAF that lets one IP, whatever it sends, use at most a quarter
//!   of any route's rate (keyless requests less), except a source's own addresses, when
//!   given, on its own route;
//! - the functions log in to the database as `lead_writer` (its generated secret), and only
//!   `migrate` may read the master credentials;
//! - every other function (migrate, drain, meta-sync) has no route and no API key, but the
//!   leads feed: its route (GET, OPTIONS), its own reader keys, and it logs in as
//!   `lead_reader` with its own secret, reading nothing else;
//! - the drain is fed by the buffer queue, with partial batch failures and a bounded
//!   concurrency; it may change the visibility of the buffer queue's messages (its backoff)
//!   and send to the dead-letter queue, nothing else of SQS; the buffer queue's
//!   `maxReceiveCount` and the drain's backoff keep a lead tried through an outage of well
//!   over a day, and dead-letter it well inside the retention; the dead-letter queue alarms
//!   on one message within a minute; both queues take 1 MiB messages;
//! - every alarm notifies the alarm topic, which must have a recipient, and a new database
//!   has its storage, CPU and connection alarms;
//! - every environment variable the template sets is one the code reads;
//! - `make dev` (`cargo lambda watch`, the root `Cargo.toml`'s metadata) serves each source
//!   on its route with its development key (a signed source: its development app secret
//!   and tokens), and `sam local` (`local/env.example.json`) gives each function's
//!   declared variables local values, each source its key or its secrets.
//!
//! It reads files (and `cargo metadata`) only: no database, no AWS, no Docker.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};
use shared::domain::source::{Auth, Source, ALL};
use shared::pipeline::drain::Backoff;

const API_ID: &str = "LeadsRestApi";
/// The REST API's stage: the execute-api URL's first path segment.
const STAGE: &str = "live";
/// The database credentials the functions log in with (role `lead_writer`).
const WRITER_SECRET_ID: &str = "DatabaseWriterSecret";
/// `REQUEST_BUDGET_MS`'s default in the code: the most one request may take.
const REQUEST_BUDGET_MS: u64 = 7000;
/// Partners give up after 10 s.
const PARTNER_TIMEOUT_MS: u64 = 10_000;
/// SQS's largest message, which the code's encoding of a lead stays under.
const MAX_MESSAGE_SIZE: u64 = 1024 * 1024;
const QUEUE_ID: &str = "LeadBufferQueue";
const DEAD_LETTER_QUEUE_ID: &str = "LeadBufferDeadLetterQueue";
/// The function the buffer queue feeds. Not a source: no route, no API key.
const DRAIN: &str = "drain";
/// Meta's scheduled pull. Not a source: no route, no API key.
const META_SYNC: &str = "meta-sync";
/// Knowlarity's scheduled pull. Not a source: no route, no API key of ours.
const KNOWLARITY_SYNC: &str = "knowlarity-sync";
/// The secret holding Knowlarity's call-log keys, which only its pull reads.
const KNOWLARITY_SECRET: &str = "KnowlaritySecret";
/// The functions that read a signed source's leads from the Graph API besides its own: the
/// drain (leads queued unread) and the scheduled pull.
const GRAPH_READERS: [&str; 2] = [DRAIN, META_SYNC];
/// The parameter every Graph reader's `GRAPH_API_VERSION` is.
const GRAPH_VERSION_PARAMETER: &str = "GraphApiVersion";
/// A signed source's local secrets (`make dev`, `sam local`, the event files) in place of
/// its secret, and their development values.
const SIGNED_DEV_VALUES: [(&str, &str); 4] = [
    ("META_APP_SECRETS", "local-dev-meta-app-secret"),
    ("META_VERIFY_TOKEN", "local-dev-meta-verify-token"),
    ("META_PAGE_ACCESS_TOKEN", "local-dev-meta-page-token"),
    ("META_PAGE_ID", "102030405060708"),
];
/// The leads feed: not a source; its own route, reader keys and database role.
const FEED: &str = "feed";
/// The feed's route (GET, and OPTIONS for the browser's preflight).
const FEED_ROUTES: [&str; 2] = [
    "GET /admin/mg-digital-leads",
    "OPTIONS /admin/mg-digital-leads",
];
/// The database credentials the feed logs in with (role `lead_reader`).
const READER_SECRET_ID: &str = "DatabaseReaderSecret";
/// The outbox relay's database credentials (role `lead_relay`).
const RELAY_SECRET_ID: &str = "DatabaseRelaySecret";
/// The sales desk's database credentials (role `lead_desk`).
const DESK_SECRET_ID: &str = "DatabaseDeskSecret";
/// The CRM hand-off's database credentials (role `lead_crm`).
const CRM_SECRET_ID: &str = "DatabaseCrmSecret";
/// The feed's reader keys.
const FEED_KEYS_SECRET_ID: &str = "FeedApiKeysSecret";
/// The pseudo account id `sam local` uses; see the `IsSamLocal` condition.
const SAM_LOCAL_ACCOUNT: &str = "123456789012";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The template as CloudFormation's JSON form: `!Ref X` → `{"Ref": "X"}`,
/// `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` → `{"Fn::Sub": s}`, ...
fn template() -> Value {
    let path = root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    to_json(yaml)
}

/// A file of the repository, by its path from the root.
fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn to_json(value: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n).expect("number"),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_yaml::to_string(&other)
                            .expect("key")
                            .trim()
                            .to_owned(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_json(tagged.value);
            let (key, inner) = match name {
                "Ref" | "Condition" => (name.to_owned(), inner),
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let (resource, attribute) =
                            s.split_once('.').expect("!GetAtt Resource.Attribute");
                        ("Fn::GetAtt".to_owned(), json!([resource, attribute]))
                    }
                    other => ("Fn::GetAtt".to_owned(), other),
                },
                other => (format!("Fn::{other}"), inner),
            };
            json!({ key: inner })
        }
    }
}

fn reference(logical_id: &str) -> Value {
    json!({ "Ref": logical_id })
}

fn get_att(logical_id: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [logical_id, attribute] })
}

/// Does `value` mention resource `logical_id` (Ref, GetAtt, or `${Id}` in a Sub)?
fn mentions(value: &Value, logical_id: &str) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(key, inner)| match (key.as_str(), inner) {
            ("Ref", Value::String(id)) => id == logical_id,
            ("Fn::GetAtt", Value::Array(parts)) => {
                parts.first().and_then(Value::as_str) == Some(logical_id)
            }
            ("Fn::Sub", Value::String(text)) => {
                text.contains(&format!("${{{logical_id}}}"))
                    || text.contains(&format!("${{{logical_id}."))
            }
            _ => mentions(inner, logical_id),
        }),
        Value::Array(items) => items.iter().any(|item| mentions(item, logical_id)),
        _ => false,
    }
}

fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn number(value: &Value, what: &str) -> u64 {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or_else(|| panic!("{what}: a literal number, not {value}"))
}

/// The development key of a source: `make dev`, `sam local` and the event files use it.
fn dev_key(slug: &str) -> String {
    format!("local-dev-{slug}-key")
}

/// Whether a source proves itself with a key (a header's or the body's), rather than a
/// signature.
fn keyed(source: &Source) -> bool {
    matches!(source.auth, Auth::Header | Auth::Body(_))
}

/// The methods of a source's route: a signed source (Meta) also answers its platform's
/// subscription handshake, a `GET` on the same path, and a source whose push may come as
/// a query string (Knowlarity) that `GET`.
fn methods(source: &Source) -> &'static [&'static str] {
    if keyed(source) && !source.query_push {
        &["POST"]
    } else {
        &["GET", "POST"]
    }
}

/// The `METHOD /path` routes of a source.
fn source_routes(source: &Source) -> Vec<String> {
    methods(source)
        .iter()
        .map(|method| format!("{method} {}", source.route()))
        .collect()
}

/// The variable that names a source's secret (its keys, or a signed source's secrets).
fn secret_variable(source: &Source) -> &'static str {
    if keyed(source) {
        "API_KEYS_SECRET_ARN"
    } else {
        "META_SECRET_ARN"
    }
}

/// The workspace metadata `cargo lambda watch` reads (routes, per-function environment),
/// through `cargo metadata`, as cargo-lambda itself reads it.
fn lambda_metadata() -> Value {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    metadata["metadata"]["lambda"].clone()
}

/// The slugs of the partner sources, from the code.
fn sources() -> BTreeSet<String> {
    let slugs: BTreeSet<String> = ALL.iter().map(|source| source.slug.to_owned()).collect();
    assert_eq!(
        slugs.len(),
        ALL.len(),
        "slugs in shared::domain::source::ALL"
    );
    assert!(!slugs.is_empty(), "shared::domain::source::ALL is empty");
    slugs
}

/// The directories under `functions/` that are crates.
fn function_dirs() -> BTreeSet<String> {
    subdirs(&root().join("functions"))
        .into_iter()
        .filter(|dir| {
            root()
                .join("functions")
                .join(dir)
                .join("Cargo.toml")
                .is_file()
        })
        .collect()
}

fn subdirs(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.is_dir())
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The functions that are not partner sources (migrate, drain): derived, not listed.
fn non_source_functions() -> BTreeSet<String> {
    function_dirs().difference(&sources()).cloned().collect()
}

/// Every `"NAME"` string literal in `shared/src`: the environment variables the code can read.
fn names_in_code() -> String {
    fn collect(dir: &Path, text: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                collect(&path, text);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                text.push_str(&std::fs::read_to_string(&path).expect("source file"));
            }
        }
    }
    let mut text = String::new();
    collect(&root().join("shared").join("src"), &mut text);
    text
}

struct Template {
    resources: Map<String, Value>,
    conditions: Map<String, Value>,
    mappings: Map<String, Value>,
    rules: Map<String, Value>,
    parameters: Map<String, Value>,
    globals: Value,
    outputs: Map<String, Value>,
    /// Binary → logical id of every `AWS::Serverless::Function`.
    functions: BTreeMap<String, String>,
}

impl Template {
    fn load() -> Self {
        let template = template();
        let resources = template["Resources"]
            .as_object()
            .expect("Resources")
            .clone();
        let conditions = template["Conditions"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let outputs = template["Outputs"].as_object().cloned().unwrap_or_default();
        let mappings = template["Mappings"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let rules = template["Rules"].as_object().cloned().unwrap_or_default();
        let parameters = template["Parameters"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let globals = template["Globals"]["Function"].clone();
        let mut functions = BTreeMap::new();
        for (id, resource) in &resources {
            if resource["Type"] != "AWS::Serverless::Function" {
                continue;
            }
            assert_eq!(
                resource["Metadata"]["BuildMethod"], "rust-cargolambda",
                "{id}: Metadata.BuildMethod"
            );
            let binary = resource["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: Metadata.BuildProperties.Binary"))
                .to_owned();
            if let Some(other) = functions.insert(binary.clone(), id.clone()) {
                panic!("binary {binary} is deployed twice: {other} and {id}");
            }
        }
        let template = Self {
            resources,
            conditions,
            mappings,
            rules,
            parameters,
            globals,
            outputs,
            functions,
        };
        for id in template.functions.values() {
            assert_eq!(
                template.property(template.resource(id), "CodeUri"),
                ".",
                "{id}: CodeUri, the workspace root cargo-lambda builds from"
            );
        }
        template
    }

    fn globals_env(&self) -> Map<String, Value> {
        self.globals["Environment"]["Variables"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    fn resource(&self, id: &str) -> &Value {
        self.resources
            .get(id)
            .unwrap_or_else(|| panic!("no resource {id}"))
    }

    fn function(&self, binary: &str) -> (&str, &Value) {
        let id = self.functions.get(binary).unwrap_or_else(|| {
            panic!("functions/{binary} has no AWS::Serverless::Function with BuildProperties.Binary {binary}")
        });
        (id, self.resource(id))
    }

    /// A function's own variable, else the Globals one.
    fn env(&self, function: &Value, name: &str) -> Option<Value> {
        function["Properties"]["Environment"]["Variables"]
            .get(name)
            .cloned()
            .or_else(|| self.globals_env().get(name).cloned())
    }

    /// A function's own property, else the Globals one.
    fn property(&self, function: &Value, name: &str) -> Value {
        match function["Properties"].get(name) {
            Some(value) => value.clone(),
            None => self.globals[name].clone(),
        }
    }

    /// A function's events: name → (type, properties).
    fn events(&self, id: &str) -> BTreeMap<String, (String, Value)> {
        self.resource(id)["Properties"]["Events"]
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(name, event)| {
                let kind = event["Type"].as_str().expect("event Type").to_owned();
                (name, (kind, event["Properties"].clone()))
            })
            .collect()
    }

    /// The routes `METHOD /path` of a function's Api (or HttpApi) events.
    fn routes(&self, id: &str) -> Vec<String> {
        self.events(id)
            .into_iter()
            .filter(|(_, (kind, _))| kind == "HttpApi" || kind == "Api")
            .map(|(name, (kind, props))| {
                assert_eq!(
                    kind, "Api",
                    "{id}.Events.{name}: a REST API event (gateway responses, WAF)"
                );
                assert_eq!(
                    props["RestApiId"],
                    reference(API_ID),
                    "{id}.Events.{name}: on {API_ID}, where the throttling, gateway responses \
                     and access logs are"
                );
                let method = props["Method"].as_str().expect("Method").to_uppercase();
                let path = props["Path"].as_str().expect("Path");
                format!("{method} {path}")
            })
            .collect()
    }

    /// The resources of a type: logical id → resource.
    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, resource)| resource["Type"] == kind)
    }

    /// The stage's method settings of the REST API.
    fn method_settings(&self) -> Vec<Value> {
        as_list(&self.resource(API_ID)["Properties"]["MethodSettings"])
            .into_iter()
            .cloned()
            .collect()
    }

    /// The policy statements of a function (both branches of an `!If`): inline ones, and
    /// those of the template's own `AWS::IAM::ManagedPolicy` resources it refers to. Policy
    /// templates and other managed policies are refused: the test could not check them.
    fn statements(&self, id: &str) -> Vec<Value> {
        let mut statements = Vec::new();
        for policy in as_list(&self.resource(id)["Properties"]["Policies"]) {
            let document = if policy.get("Statement").is_some() {
                policy
            } else {
                self.managed_policy(policy).unwrap_or_else(|| {
                    panic!(
                        "{id}: policy {policy} is neither inline statements nor a managed \
                         policy of this template; the test cannot check it"
                    )
                })
            };
            for statement in as_list(&document["Statement"]) {
                match statement.get("Fn::If") {
                    Some(Value::Array(parts)) => statements.extend(
                        parts[1..]
                            .iter()
                            .filter(|branch| **branch != reference("AWS::NoValue"))
                            .cloned(),
                    ),
                    _ => statements.push(statement.clone()),
                }
            }
        }
        statements
    }

    /// The document of a `!Ref` to one of this template's `AWS::IAM::ManagedPolicy`s.
    fn managed_policy(&self, policy: &Value) -> Option<&Value> {
        let resource = self.resources.get(policy.get("Ref")?.as_str()?)?;
        (resource["Type"] == "AWS::IAM::ManagedPolicy")
            .then(|| &resource["Properties"]["PolicyDocument"])
    }

    /// The `Resource`s a function is allowed an action on (by prefix, e.g.
    /// `secretsmanager:get`, `sqs:send`); a wildcard action counts.
    fn grants(&self, id: &str, action_prefix: &str) -> Vec<Value> {
        let service = action_prefix.split(':').next().expect("service");
        let mut grants = Vec::new();
        for statement in self.statements(id) {
            let matches = as_list(&statement["Action"]).iter().any(|action| {
                let action = action.as_str().unwrap_or_default().to_lowercase();
                action == "*"
                    || action == format!("{service}:*")
                    || action.starts_with(action_prefix)
            });
            if matches {
                assert_eq!(statement["Effect"], "Allow", "{id}: {statement}");
                assert!(statement.get("NotResource").is_none(), "{id}: {statement}");
                grants.extend(as_list(&statement["Resource"]).into_iter().cloned());
            }
        }
        grants
    }

    /// Every SQS action a function is allowed, each with the resource it is allowed on
    /// (lowercase actions; a resource as its JSON text).
    fn sqs_permissions(&self, id: &str) -> BTreeSet<(String, String)> {
        let mut permissions = BTreeSet::new();
        for statement in self.statements(id) {
            for action in as_list(&statement["Action"]) {
                let action = action.as_str().unwrap_or_default().to_lowercase();
                if action == "*" || action.starts_with("sqs:") {
                    assert_eq!(statement["Effect"], "Allow", "{id}: {statement}");
                    assert!(statement.get("NotResource").is_none(), "{id}: {statement}");
                    for resource in as_list(&statement["Resource"]) {
                        permissions.insert((action.clone(), resource.to_string()));
                    }
                }
            }
        }
        permissions
    }

    /// `API_KEYS` / `DATABASE_URL` may only be declared for `sam local` to override: an
    /// `!If [IsSamLocal, "", !Ref AWS::NoValue]`, which CloudFormation drops.
    fn assert_local_only(&self, owner: &str, name: &str, value: Option<&Value>) {
        let Some(value) = value else { return };
        let parts = value["Fn::If"]
            .as_array()
            .unwrap_or_else(|| panic!("{owner}: {name} must not be set for deployed functions"));
        let condition = parts[0].as_str().expect("condition name");
        assert_eq!(parts[1], "", "{owner}: {name} has a value");
        assert_eq!(parts[2], reference("AWS::NoValue"), "{owner}: {name}");
        assert_eq!(
            self.conditions.get(condition),
            Some(&json!({ "Fn::Equals": [reference("AWS::AccountId"), SAM_LOCAL_ACCOUNT] })),
            "{owner}: {name} is declared under {condition}, which must be true only under sam local"
        );
    }
}

#[test]
fn every_function_dir_is_deployed_and_nothing_else() {
    let template = Template::load();
    let dirs = function_dirs();
    let deployed: BTreeSet<String> = template.functions.keys().cloned().collect();
    assert_eq!(
        deployed, dirs,
        "template functions (by BuildProperties.Binary) vs crates under functions/"
    );
    for dir in &dirs {
        let manifest = root().join("functions").join(dir).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("Cargo.toml");
        assert!(
            text.contains(&format!("name = \"{dir}\"")),
            "{manifest:?}: package and binary are named {dir}"
        );
    }
}

/// A source crate serves its `App` with `shared::edge::http::serve`; the others do not.
/// So a crate written as a source but missing from `ALL` (or the reverse) fails here.
#[test]
fn the_sources_are_the_codes_own_list() {
    let sources = sources();
    let dirs = function_dirs();
    for slug in &sources {
        assert!(
            dirs.contains(slug),
            "shared::domain::source::ALL has {slug}, but there is no functions/{slug}"
        );
    }
    for dir in &dirs {
        let main = root()
            .join("functions")
            .join(dir)
            .join("src")
            .join("main.rs");
        let text = std::fs::read_to_string(&main).unwrap_or_else(|e| panic!("{main:?}: {e}"));
        let runs_a_source = text.contains("http::serve(");
        assert_eq!(
            runs_a_source,
            sources.contains(dir),
            "functions/{dir}: runs a source (http::serve) = {runs_a_source}, \
             listed in shared::domain::source::ALL = {}",
            sources.contains(dir)
        );
    }
    let non_sources = non_source_functions();
    assert!(
        non_sources.contains(DRAIN) && non_sources.contains("migrate"),
        "{non_sources:?}"
    );
    // Sample events exist for the sources and the feed, and only for them.
    let mut folders = subdirs(&root().join("events"));
    assert!(folders.remove(FEED), "events/{FEED}: the feed's requests");
    assert_eq!(
        folders, sources,
        "folders under events/ vs shared::domain::source::ALL"
    );
}

#[test]
fn every_source_has_its_routes_its_own_secret_the_buffer_and_events() {
    let template = Template::load();
    let sources = sources();
    let globals = template.globals_env();
    let db_secret = globals
        .get("DB_SECRET_ARN")
        .expect("Globals: DB_SECRET_ARN")
        .clone();

    // Every route in the template, to its function.
    let mut route_owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in template.functions.values() {
        for route in template.routes(id) {
            route_owners.entry(route).or_default().push(id.clone());
        }
    }

    let api = template.resource(API_ID);
    assert_eq!(api["Type"], "AWS::Serverless::Api", "{API_ID}: a REST API");
    assert_eq!(api["Properties"]["StageName"], STAGE, "{API_ID}: StageName");
    assert!(
        api["Properties"]["AccessLogSetting"]["DestinationArn"].is_object(),
        "{API_ID}: access logs"
    );

    let mut secrets_in_use = BTreeMap::new();
    for source in ALL {
        let slug = source.slug;
        let (id, function) = template.function(slug);
        let routes = source_routes(source);

        // Its routes are its only events, and nobody else serves them.
        assert_eq!(
            template.events(id).len(),
            routes.len(),
            "{id}: one event per route ({routes:?}), nothing else"
        );
        let mut served = template.routes(id);
        served.sort();
        assert_eq!(served, routes, "{id}: exactly its routes");
        for route in &routes {
            assert_eq!(
                route_owners[route],
                vec![id.to_owned()],
                "{route}: one function"
            );
        }
        // Its own generated secret, passed as API_KEYS_SECRET_ARN (a key source) or
        // META_SECRET_ARN (a signed source).
        let variable = secret_variable(source);
        let secret_ref = template
            .env(function, variable)
            .unwrap_or_else(|| panic!("{id}: no {variable}"));
        let secret_id = secret_ref["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: {variable} must be !Ref <secret>"))
            .to_owned();
        let secret = template.resource(&secret_id);
        assert_eq!(
            secret["Type"], "AWS::SecretsManager::Secret",
            "{id}: {secret_id}"
        );
        assert!(
            secret["Properties"].get("SecretString").is_none()
                && secret["Properties"].get("GenerateSecretString").is_some(),
            "{secret_id}: generated, never written in the template"
        );
        if !keyed(source) {
            signed_secret_has_the_codes_shape(&secret_id, secret);
        }
        if let Some(other) = secrets_in_use.insert(secret_id.clone(), (id.to_owned(), source)) {
            panic!("{secret_id} is the secret of both {} and {id}", other.0);
        }

        // It may read its own secret (and the database's), nothing else.
        let grants = template.grants(id, "secretsmanager:get");
        assert!(
            grants.contains(&secret_ref),
            "{id}: no secretsmanager:GetSecretValue on {secret_id}"
        );
        for grant in &grants {
            assert!(
                *grant == secret_ref || *grant == db_secret,
                "{id}: may read {grant}, which is neither {secret_id} nor the database secret"
            );
        }

        // Queues a lead it cannot store (or, signed, cannot read yet), and sends one the
        // database refuses as data to the dead-letter queue: both URLs, and sending to
        // those two queues only.
        assert_sends_to_both_queues(&template, id, function);

        // Sample events to replay.
        let events = root().join("events").join(slug);
        let count = std::fs::read_dir(&events)
            .unwrap_or_else(|e| panic!("{events:?}: {e}"))
            .filter(|entry| {
                let path = entry.as_ref().expect("dir entry").path();
                path.extension().is_some_and(|ext| ext == "json")
            })
            .count();
        assert!(count > 0, "{events:?} has no event file");
    }
    assert_eq!(secrets_in_use.len(), sources.len());

    // No other function mentions a source's secret (in its environment or policy); a
    // signed source's is read by the Graph readers too, which fetch its leads.
    for (secret_id, (owner, source)) in &secrets_in_use {
        for (binary, other_id) in &template.functions {
            let reader = !keyed(source) && GRAPH_READERS.contains(&binary.as_str());
            if other_id != owner && !reader {
                assert!(
                    !mentions(template.resource(other_id), secret_id),
                    "{other_id} refers to {secret_id}, {owner}'s secret"
                );
            }
        }
        // Nor any other resource but the policies that grant it.
        for (other_id, other) in &template.resources {
            if other["Type"] != "AWS::Serverless::Function"
                && other["Type"] != "AWS::IAM::ManagedPolicy"
                && other_id != secret_id
            {
                assert!(
                    !mentions(other, secret_id),
                    "{other_id} refers to {secret_id}, {owner}'s secret"
                );
            }
        }
    }

    // No route without a source, but the feed's.
    let expected: BTreeSet<String> = ALL
        .iter()
        .flat_map(|source| source_routes(source))
        .chain(FEED_ROUTES.map(str::to_owned))
        .collect();
    let actual: BTreeSet<String> = route_owners.keys().cloned().collect();
    assert_eq!(actual, expected, "routes in the template");
}

/// A function that takes leads in: `BUFFER_QUEUE_URL` and `DEAD_LETTER_QUEUE_URL`, and
/// `sqs:SendMessage` on exactly those two queues, no other SQS action.
fn assert_sends_to_both_queues(template: &Template, id: &str, function: &Value) {
    assert_eq!(
        template.env(function, "BUFFER_QUEUE_URL"),
        Some(reference(QUEUE_ID)),
        "{id}: BUFFER_QUEUE_URL is !Ref {QUEUE_ID}"
    );
    assert_eq!(
        template.env(function, "DEAD_LETTER_QUEUE_URL"),
        Some(reference(DEAD_LETTER_QUEUE_ID)),
        "{id}: DEAD_LETTER_QUEUE_URL is !Ref {DEAD_LETTER_QUEUE_ID}"
    );
    let expected: BTreeSet<(String, String)> = [QUEUE_ID, DEAD_LETTER_QUEUE_ID]
        .iter()
        .map(|queue| {
            (
                "sqs:sendmessage".to_owned(),
                get_att(queue, "Arn").to_string(),
            )
        })
        .collect();
    assert_eq!(
        template.sqs_permissions(id),
        expected,
        "{id}: sqs:SendMessage on {QUEUE_ID} and {DEAD_LETTER_QUEUE_ID}, nothing else of SQS"
    );
}

/// A signed source's secret: the JSON object `shared::domain::meta::MetaSecrets::from_secret`
/// reads, in which CloudFormation generates the verify token alone (the webhook's, typed
/// into the platform's settings) and leaves the rest empty for an operator to fill (the
/// app secrets and the page's token and id come from the platform). Until filled the code
/// refuses it (answered 500, alarmed); filled, it is used.
fn signed_secret_has_the_codes_shape(secret_id: &str, secret: &Value) {
    let generate = &secret["Properties"]["GenerateSecretString"];
    let shape: Value = serde_json::from_str(
        generate["SecretStringTemplate"]
            .as_str()
            .unwrap_or_else(|| panic!("{secret_id}: a SecretStringTemplate")),
    )
    .unwrap_or_else(|e| panic!("{secret_id}: SecretStringTemplate is not JSON: {e}"));
    assert_eq!(
        shape,
        json!({ "app_secrets": [], "page_access_token": "", "page_id": "" }),
        "{secret_id}: SecretStringTemplate, empty until an operator fills it (no real value \
         in the template)"
    );
    assert_eq!(
        generate["GenerateStringKey"], "verify_token",
        "{secret_id}: GenerateStringKey, the verify token generated at creation"
    );
    assert_eq!(
        generate["ExcludePunctuation"], true,
        "{secret_id}: a verify token typed into the platform's form and sent back in a URL"
    );
    let mut generated = shape.clone();
    generated["verify_token"] = json!("generated");
    assert!(
        shared::domain::meta::MetaSecrets::from_secret(&generated.to_string()).is_err(),
        "{secret_id}: the code accepts the secret before it is filled"
    );
    let mut filled = generated;
    filled["app_secrets"] = json!(["app-secret"]);
    filled["page_access_token"] = json!("page-token");
    filled["page_id"] = json!("102030405060708");
    assert!(
        shared::domain::meta::MetaSecrets::from_secret(&filled.to_string()).is_ok(),
        "{secret_id}: the code refuses the filled secret {filled}"
    );
}

#[test]
fn other_functions_have_no_route_and_no_api_key() {
    let template = Template::load();
    let db_secret = template.globals_env()["DB_SECRET_ARN"].clone();
    // A signed source's secret, which the Graph readers may read.
    let signed_secrets: Vec<Value> = ALL
        .iter()
        .filter(|source| !keyed(source))
        .map(|source| {
            let (id, function) = template.function(source.slug);
            template
                .env(function, secret_variable(source))
                .unwrap_or_else(|| panic!("{id}: no {}", secret_variable(source)))
        })
        .collect();
    // The feed has a route and keys of its own (the_feed_reads_as_lead_reader_...).
    let others: Vec<&String> = template
        .functions
        .keys()
        .filter(|binary| !sources().contains(*binary) && *binary != FEED)
        .collect();
    for binary in ["migrate", DRAIN, META_SYNC] {
        assert!(
            others.iter().any(|other| *other == binary),
            "template.yaml: no function with binary {binary}"
        );
    }
    for binary in others {
        let (id, function) = template.function(binary);
        assert!(template.routes(id).is_empty(), "{id} has no route");
        for name in ["API_KEYS_SECRET_ARN", "API_KEYS"] {
            assert!(
                function["Properties"]["Environment"]["Variables"]
                    .get(name)
                    .is_none()
                    && !template.globals_env().contains_key(name),
                "{id}: no {name}"
            );
        }
        // The database secrets (migrate's four are checked in
        // the_functions_log_in_as_lead_writer_and_only_migrate_as_master), and a signed
        // source's secret for the Graph readers.
        let reader = GRAPH_READERS.contains(&binary.as_str());
        for grant in template.grants(id, "secretsmanager:get") {
            assert!(
                grant == db_secret
                    || (binary == "migrate"
                        && (grant == master_secret()
                            || grant == reference(READER_SECRET_ID)
                            || grant == reference(RELAY_SECRET_ID)
                            || grant == reference(DESK_SECRET_ID)
                            || grant == reference(CRM_SECRET_ID)))
                    || (reader && signed_secrets.contains(&grant))
                    || (binary == KNOWLARITY_SYNC && grant == reference(KNOWLARITY_SECRET))
                    || (binary == "relay" && grant == reference(RELAY_SECRET_ID))
                    || (binary == "desk" && grant == reference(DESK_SECRET_ID))
                    || ((binary == "crm" || binary == "crm-sla")
                        && (grant == reference(CRM_SECRET_ID)
                            || grant == reference("CrmSecretArn"))),
                "{id} may read {grant}, which is not a secret it needs"
            );
        }
    }
}

/// Knowlarity's pull: its schedule (every minute by default, switched on by a parameter),
/// one run at a time and never retried, its overlap, Knowlarity's keys in a secret only it
/// may read, and its two alarms: failing for longer than a parameter, and a refused key
/// at once, on the label the code logs.
#[test]
fn knowlarity_sync_pulls_on_a_schedule_with_its_own_secret_and_alarms() {
    let template = Template::load();
    let (id, function) = template.function(KNOWLARITY_SYNC);
    let events = template.events(id);
    assert_eq!(events.len(), 1, "{id}: one event, its schedule");
    let (kind, props) = events.values().next().expect("event");
    assert_eq!(
        kind, "ScheduleV2",
        "{id}: an EventBridge Scheduler schedule"
    );
    assert_eq!(
        props["ScheduleExpression"],
        reference("KnowlaritySyncSchedule")
    );
    assert_eq!(props["State"], reference("KnowlaritySyncState"));
    assert!(props.get("Name").is_none(), "{id}: a fixed schedule name");
    assert_eq!(
        template.parameters["KnowlaritySyncSchedule"]["Default"],
        "rate(1 minute)"
    );
    assert_eq!(
        template.env(function, "KNOWLARITY_SYNC_OVERLAP_SECONDS"),
        Some(reference("KnowlaritySyncOverlapSeconds"))
    );
    assert_eq!(
        number(
            &template.parameters["KnowlaritySyncOverlapSeconds"]["Default"],
            "KnowlaritySyncOverlapSeconds.Default"
        ),
        shared::infra::config::DEFAULT_KNOWLARITY_OVERLAP.as_secs()
    );
    assert_eq!(
        number(
            &function["Properties"]["ReservedConcurrentExecutions"],
            "ReservedConcurrentExecutions"
        ),
        1,
        "{id}: never two pulls at once"
    );
    assert_eq!(
        number(
            &function["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"],
            "MaximumRetryAttempts"
        ),
        0,
        "{id}: the next run retries, not Lambda"
    );
    let timeout = number(&template.property(function, "Timeout"), "Timeout");
    assert!(
        (30..60).contains(&timeout),
        "{id}: Timeout {timeout} s: ends inside the minute between two runs"
    );
    assert!(template.routes(id).is_empty(), "{id}: no route");
    assert_sends_to_both_queues(&template, id, function);
    assert_eq!(
        template.env(function, "KNOWLARITY_SECRET_ARN"),
        Some(reference(KNOWLARITY_SECRET))
    );
    for name in [
        "KNOWLARITY_APP_KEY",
        "KNOWLARITY_SR_KEY",
        "KNOWLARITY_API_URL",
    ] {
        template.assert_local_only(id, name, template.env(function, name).as_ref());
    }
    // Only this function may read Knowlarity's keys.
    for (binary, other) in &template.functions {
        let reads = template
            .grants(other, "secretsmanager:get")
            .contains(&reference(KNOWLARITY_SECRET));
        assert_eq!(
            reads,
            binary == KNOWLARITY_SYNC,
            "{other}: reading {KNOWLARITY_SECRET}"
        );
    }

    let alarms: Vec<&Value> = template
        .of_type("AWS::CloudWatch::Alarm")
        .map(|(_, alarm)| &alarm["Properties"])
        .collect();
    let failing = alarms.iter().any(|props| {
        props["Namespace"] == "AWS/Lambda"
            && props["MetricName"] == "Errors"
            && mentions(&props["Dimensions"], id)
            && number(&props["Period"], "Period") == 60
            && props["EvaluationPeriods"] == reference("KnowlaritySyncFailingMinutes")
            && !as_list(&props["AlarmActions"]).is_empty()
    });
    assert!(
        failing,
        "{id}: no alarm on failing for KnowlaritySyncFailingMinutes"
    );
    assert_eq!(
        number(
            &template.parameters["KnowlaritySyncFailingMinutes"]["Default"],
            "KnowlaritySyncFailingMinutes.Default"
        ),
        15
    );
    let label = shared::pipeline::pull::knowlarity::KEY_REFUSED;
    let metric = template
        .of_type("AWS::Logs::MetricFilter")
        .map(|(_, filter)| &filter["Properties"])
        .find(|props| {
            mentions(&props["LogGroupName"], "KnowlaritySyncLogGroup")
                && props["FilterPattern"]
                    .as_str()
                    .is_some_and(|pattern| pattern.contains(&format!("\"{label}\"")))
        })
        .unwrap_or_else(|| panic!("{id}: no metric filter on the {label} label"));
    let metric_name = metric["MetricTransformations"][0]["MetricName"].clone();
    let refused = alarms.iter().any(|props| {
        props["MetricName"] == metric_name
            && number(&props["Threshold"], "Threshold") == 1
            && number(&props["EvaluationPeriods"], "EvaluationPeriods") == 1
            && !as_list(&props["AlarmActions"]).is_empty()
    });
    assert!(refused, "{id}: no alarm at once on a refused key");
}

/// The drain (leads queued unread) and meta-sync read a signed source's leads from the
/// Graph API as its own function does: its secret, readable, and the same Graph API
/// version, a parameter whose default is the code's.
#[test]
fn the_graph_readers_read_the_signed_sources_secret_and_graph_version() {
    let template = Template::load();
    let version = reference(GRAPH_VERSION_PARAMETER);
    let parameter = template
        .parameters
        .get(GRAPH_VERSION_PARAMETER)
        .unwrap_or_else(|| panic!("Parameters: no {GRAPH_VERSION_PARAMETER}"));
    assert_eq!(
        parameter["Default"],
        shared::infra::graph::DEFAULT_GRAPH_VERSION,
        "{GRAPH_VERSION_PARAMETER}: Default, the code's default"
    );
    for source in ALL.iter().filter(|source| !keyed(source)) {
        let (id, function) = template.function(source.slug);
        let secret = template
            .env(function, secret_variable(source))
            .unwrap_or_else(|| panic!("{id}: no {}", secret_variable(source)));
        let mut readers = vec![(id.to_owned(), function.clone())];
        for binary in GRAPH_READERS {
            let (reader, function) = template.function(binary);
            readers.push((reader.to_owned(), function.clone()));
        }
        for (reader, function) in &readers {
            assert_eq!(
                template.env(function, "META_SECRET_ARN"),
                Some(secret.clone()),
                "{reader}: META_SECRET_ARN is {secret}, {id}'s"
            );
            assert!(
                template
                    .grants(reader, "secretsmanager:get")
                    .contains(&secret),
                "{reader}: no secretsmanager:GetSecretValue on {secret}"
            );
            assert_eq!(
                template.env(function, "GRAPH_API_VERSION"),
                Some(version.clone()),
                "{reader}: GRAPH_API_VERSION is !Ref {GRAPH_VERSION_PARAMETER}"
            );
        }
    }
}

/// Meta's scheduled pull: on a schedule (a parameter, every 15 minutes by default), one
/// at a time, long enough for a pull after an outage and done before the next; no route;
/// sending to the buffer and dead-letter queues only; the database of the others.
#[test]
fn meta_sync_pulls_on_a_schedule_alone() {
    let template = Template::load();
    let (id, function) = template.function(META_SYNC);
    let events = template.events(id);
    assert_eq!(events.len(), 1, "{id}: one event, its schedule");
    let (kind, props) = events.values().next().expect("event");
    let expression = match kind.as_str() {
        "ScheduleV2" => &props["ScheduleExpression"],
        "Schedule" => &props["Schedule"],
        other => panic!("{id}: a Schedule or ScheduleV2 event, not {other}"),
    };
    assert_eq!(
        *expression,
        reference("MetaSyncSchedule"),
        "{id}: its schedule is the parameter MetaSyncSchedule"
    );
    assert_eq!(
        template.parameters["MetaSyncSchedule"]["Default"], "rate(15 minutes)",
        "MetaSyncSchedule: Default"
    );
    assert!(
        props.get("Name").is_none(),
        "{id}: a fixed schedule name would collide between two stacks of one account"
    );
    assert_eq!(
        template.env(function, "META_SYNC_OVERLAP_SECONDS"),
        Some(reference("MetaSyncOverlapSeconds")),
        "{id}: META_SYNC_OVERLAP_SECONDS"
    );
    assert_eq!(
        number(
            &template.parameters["MetaSyncOverlapSeconds"]["Default"],
            "MetaSyncOverlapSeconds.Default"
        ),
        3600,
        "MetaSyncOverlapSeconds: Default"
    );
    assert_eq!(
        number(
            &function["Properties"]["ReservedConcurrentExecutions"],
            "ReservedConcurrentExecutions"
        ),
        1,
        "{id}: never two pulls at once"
    );
    let timeout = number(&template.property(function, "Timeout"), "Timeout");
    assert!(
        (60..=900).contains(&timeout),
        "{id}: Timeout {timeout} s: a pull after an outage pages through many leads, and \
         ends before the next (15 minutes)"
    );
    assert!(template.routes(id).is_empty(), "{id}: no route");
    assert_sends_to_both_queues(&template, id, function);
    for name in [
        "DB_SECRET_ARN",
        "DB_HOST",
        "DB_PORT",
        "DB_NAME",
        "DB_SSLMODE",
    ] {
        assert!(
            function["Properties"]["Environment"]["Variables"]
                .get(name)
                .is_none(),
            "{id}: {name} comes from Globals, like the sources'"
        );
    }
}

/// The master credentials: RDS's own secret of a new database, or `ExistingDbSecretArn`.
fn master_secret() -> Value {
    json!({ "Fn::If": [
        "CreateDatabase",
        get_att("Database", "MasterUserSecret.SecretArn"),
        reference("ExistingDbSecretArn"),
    ] })
}

/// The source functions and the drain log in as `lead_writer`, with a password generated
/// into a secret of its own; only `migrate`, which creates the role and sets that password,
/// reads the master credentials. Through RDS Proxy too.
#[test]
fn the_functions_log_in_as_lead_writer_and_only_migrate_as_master() {
    let template = Template::load();
    let writer = reference(WRITER_SECRET_ID);
    let master = master_secret();

    let secret = template.resource(WRITER_SECRET_ID);
    assert_eq!(
        secret["Type"], "AWS::SecretsManager::Secret",
        "{WRITER_SECRET_ID}"
    );
    assert!(
        secret["Properties"].get("SecretString").is_none(),
        "{WRITER_SECRET_ID}: generated, never written in the template"
    );
    let generate = &secret["Properties"]["GenerateSecretString"];
    let shape: Value = serde_json::from_str(
        generate["SecretStringTemplate"]
            .as_str()
            .unwrap_or_else(|| panic!("{WRITER_SECRET_ID}: a SecretStringTemplate")),
    )
    .expect("SecretStringTemplate is JSON");
    assert_eq!(
        shape,
        json!({ "username": "lead_writer" }),
        "{WRITER_SECRET_ID}: the role the migration creates"
    );
    assert_eq!(
        generate["GenerateStringKey"], "password",
        "{WRITER_SECRET_ID}: GenerateStringKey"
    );
    // migrate writes the password into ALTER ROLE ... PASSWORD '...'.
    let excluded = generate["ExcludeCharacters"].as_str().unwrap_or_default();
    for c in ['"', '\'', '\\', '@', '/', ' '] {
        assert!(
            excluded.contains(c),
            "{WRITER_SECRET_ID}: ExcludeCharacters lacks {c:?}"
        );
    }

    assert_eq!(
        template.globals_env().get("DB_SECRET_ARN"),
        Some(&writer),
        "Globals: DB_SECRET_ARN is !Ref {WRITER_SECRET_ID}"
    );
    for (binary, id) in &template.functions {
        let function = template.resource(id);
        let grants = template.grants(id, "secretsmanager:get");
        if binary == FEED {
            // It logs in as lead_reader instead (the_feed_reads_as_lead_reader_...).
            assert!(
                !grants.contains(&writer) && !grants.contains(&master),
                "{id} may read {WRITER_SECRET_ID} or the master credentials"
            );
            continue;
        }
        // The outbox's names and phones are the relay's alone, the ledger of notices the
        // desk's: each logs in as its own role and reads no other role's credentials.
        // The CRM hand-off and speed to lead also read the CRM's own user's secret.
        let own = match binary.as_str() {
            "relay" => Some((RELAY_SECRET_ID, vec![reference(RELAY_SECRET_ID)])),
            "desk" => Some((DESK_SECRET_ID, vec![reference(DESK_SECRET_ID)])),
            "crm" | "crm-sla" => Some((
                CRM_SECRET_ID,
                vec![reference(CRM_SECRET_ID), reference("CrmSecretArn")],
            )),
            _ => None,
        };
        if let Some((own, reads)) = own {
            assert_eq!(
                template.env(function, "DB_SECRET_ARN"),
                Some(reference(own)),
                "{id} logs in with {own}"
            );
            assert_eq!(grants, reads, "{id} reads only {reads:?}");
            continue;
        }
        assert!(
            grants.contains(&writer),
            "{id}: no secretsmanager:GetSecretValue on {WRITER_SECRET_ID}"
        );
        if binary == "migrate" {
            assert_eq!(
                template.env(function, "DB_SECRET_ARN"),
                Some(master.clone()),
                "{id}: DB_SECRET_ARN is the master secret"
            );
            assert_eq!(
                template.env(function, "DB_WRITER_SECRET_ARN"),
                Some(writer.clone()),
                "{id}: DB_WRITER_SECRET_ARN, whose password it sets"
            );
            assert!(
                grants.contains(&master),
                "{id}: no secretsmanager:GetSecretValue on the master secret"
            );
            let reader = reference(READER_SECRET_ID);
            assert_eq!(
                template.env(function, "DB_READER_SECRET_ARN"),
                Some(reader.clone()),
                "{id}: DB_READER_SECRET_ARN, whose password it sets"
            );
            assert!(
                grants.contains(&reader),
                "{id}: no secretsmanager:GetSecretValue on {READER_SECRET_ID}"
            );
            for (variable, secret) in [
                ("DB_RELAY_SECRET_ARN", RELAY_SECRET_ID),
                ("DB_DESK_SECRET_ARN", DESK_SECRET_ID),
                ("DB_CRM_SECRET_ARN", CRM_SECRET_ID),
            ] {
                assert_eq!(
                    template.env(function, variable),
                    Some(reference(secret)),
                    "{id}: {variable}, whose password it sets"
                );
                assert!(
                    grants.contains(&reference(secret)),
                    "{id}: no secretsmanager:GetSecretValue on {secret}"
                );
            }
        } else {
            assert_eq!(
                template.env(function, "DB_SECRET_ARN"),
                Some(writer.clone()),
                "{id} logs in as lead_writer"
            );
            let text = serde_json::to_string(&grants).expect("grants");
            assert!(
                !grants.contains(&master)
                    && !text.contains("MasterUserSecret")
                    && !text.contains("ExistingDbSecretArn"),
                "{id} may read the master credentials: {text}"
            );
        }
    }

    // RDS Proxy checks the passwords of whoever logs in through it.
    for (id, proxy) in template.of_type("AWS::RDS::DBProxy") {
        let secrets: Vec<&Value> = as_list(&proxy["Properties"]["Auth"])
            .into_iter()
            .map(|auth| &auth["SecretArn"])
            .collect();
        assert!(
            secrets.contains(&&writer),
            "{id}: Auth lacks {WRITER_SECRET_ID}; lead_writer could not log in through it"
        );
        assert!(
            secrets.contains(&&reference(READER_SECRET_ID)),
            "{id}: Auth lacks {READER_SECRET_ID}; the feed could not log in through it"
        );
        for (secret, who) in [
            (RELAY_SECRET_ID, "the relay"),
            (DESK_SECRET_ID, "the desk"),
            (CRM_SECRET_ID, "the CRM hand-off"),
        ] {
            assert!(
                secrets.contains(&&reference(secret)),
                "{id}: Auth lacks {secret}; {who} could not log in through it"
            );
        }
        let role = proxy["Properties"]["RoleArn"]["Fn::GetAtt"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: RoleArn is !GetAtt <role>.Arn"));
        let policies = serde_json::to_string(&template.resource(role)["Properties"]["Policies"])
            .expect("policies");
        assert!(
            policies.contains(&serde_json::to_string(&writer).expect("ref")),
            "{role}: {id} may not read {WRITER_SECRET_ID}"
        );
    }
}

#[test]
fn the_drain_is_fed_by_the_buffer_queue() {
    let template = Template::load();
    let (id, function) = template.function(DRAIN);

    // One event: the buffer queue, reporting which messages of a batch failed.
    let events = template.events(id);
    assert_eq!(events.len(), 1, "{id}: one event, the buffer queue");
    let (kind, props) = events.values().next().expect("event");
    assert_eq!(kind, "SQS", "{id}: an SQS event source");
    assert_eq!(
        props["Queue"],
        get_att(QUEUE_ID, "Arn"),
        "{id}: fed by {QUEUE_ID}"
    );
    assert!(
        as_list(&props["FunctionResponseTypes"]).contains(&&json!("ReportBatchItemFailures")),
        "{id}: FunctionResponseTypes [ReportBatchItemFailures]"
    );
    assert_eq!(
        number(&props["BatchSize"], "BatchSize"),
        10,
        "{id}: BatchSize"
    );
    let max_concurrency = number(
        &props["ScalingConfig"]["MaximumConcurrency"],
        "ScalingConfig.MaximumConcurrency",
    );
    assert_eq!(max_concurrency, 2, "{id}: spares the database");
    let reserved = number(
        &function["Properties"]["ReservedConcurrentExecutions"],
        "ReservedConcurrentExecutions",
    );
    assert!(
        reserved >= max_concurrency,
        "{id}: reserved concurrency {reserved} < MaximumConcurrency {max_concurrency} throttles the pollers"
    );
    // Same database as the sources: the Globals, not overridden.
    for name in [
        "DB_SECRET_ARN",
        "DB_HOST",
        "DB_PORT",
        "DB_NAME",
        "DB_SSLMODE",
    ] {
        assert!(
            function["Properties"]["Environment"]["Variables"]
                .get(name)
                .is_none(),
            "{id}: {name} comes from Globals, like the sources'"
        );
    }
    assert!(
        template.property(function, "VpcConfig").is_object(),
        "{id}: in the VPC, next to the database"
    );

    // It backs off on the queue that feeds it and dead-letters what can never be stored:
    // both URLs; of SQS, only changing the visibility of the buffer queue's messages and
    // sending to the dead-letter queue (SAM adds the poller's receive and delete).
    assert_eq!(
        template.env(function, "BUFFER_QUEUE_URL"),
        Some(reference(QUEUE_ID)),
        "{id}: BUFFER_QUEUE_URL is !Ref {QUEUE_ID}, the queue it backs off on"
    );
    assert_eq!(
        template.env(function, "DEAD_LETTER_QUEUE_URL"),
        Some(reference(DEAD_LETTER_QUEUE_ID)),
        "{id}: DEAD_LETTER_QUEUE_URL is !Ref {DEAD_LETTER_QUEUE_ID}"
    );
    let expected: BTreeSet<(String, String)> = [
        (
            "sqs:changemessagevisibility".to_owned(),
            get_att(QUEUE_ID, "Arn").to_string(),
        ),
        (
            "sqs:sendmessage".to_owned(),
            get_att(DEAD_LETTER_QUEUE_ID, "Arn").to_string(),
        ),
    ]
    .into();
    assert_eq!(
        template.sqs_permissions(id),
        expected,
        "{id}: sqs:ChangeMessageVisibility on {QUEUE_ID} and sqs:SendMessage on \
         {DEAD_LETTER_QUEUE_ID}, nothing else of SQS"
    );

    // The queue: encrypted, 14 days, and not visible again while a batch may still be
    // running.
    let queue = &template.resource(QUEUE_ID)["Properties"];
    let dlq = &template.resource(DEAD_LETTER_QUEUE_ID)["Properties"];
    for (name, props) in [(QUEUE_ID, queue), (DEAD_LETTER_QUEUE_ID, dlq)] {
        assert_eq!(props["SqsManagedSseEnabled"], true, "{name}: SSE");
        // The code encodes any lead the database would take under 1 MiB.
        assert_eq!(
            number(&props["MaximumMessageSize"], "MaximumMessageSize"),
            MAX_MESSAGE_SIZE,
            "{name}: MaximumMessageSize 1 MiB, so no lead is too large to queue"
        );
        assert_eq!(
            number(&props["MessageRetentionPeriod"], "MessageRetentionPeriod"),
            14 * 24 * 3600,
            "{name}: 14 days"
        );
    }
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"],
        get_att(DEAD_LETTER_QUEUE_ID, "Arn")
    );
    let timeout = number(&template.property(function, "Timeout"), "Timeout");
    let visibility = number(&queue["VisibilityTimeout"], "VisibilityTimeout");
    assert!(
        visibility >= 6 * timeout,
        "{QUEUE_ID}: VisibilityTimeout {visibility} < 6 x {id}'s Timeout {timeout}"
    );

    // A lead that waits for the database is tried, on the drain's backoff, through an
    // outage of well over a day (a maintenance window, a long outage), and dead-lettered
    // with time to spare before the retention ends (a redriven message keeps its first
    // enqueue time).
    let max_receives = number(
        &queue["RedrivePolicy"]["maxReceiveCount"],
        "maxReceiveCount",
    );
    let max_receives = u32::try_from(max_receives).expect("maxReceiveCount fits u32");
    assert!(
        max_receives <= 1000,
        "{QUEUE_ID}: SQS allows maxReceiveCount up to 1000"
    );
    let backoff = Backoff::SCHEDULE;
    let horizon = backoff.horizon(max_receives);
    assert!(
        horizon >= Backoff::OUTAGE,
        "{QUEUE_ID}: with maxReceiveCount {max_receives} and the drain's backoff a lead is \
         tried for {horizon:?} only; an outage of three days must drain by itself"
    );
    let retention = Duration::from_secs(number(
        &queue["MessageRetentionPeriod"],
        "MessageRetentionPeriod",
    ));
    let dead_lettered = backoff.dead_lettered_after(max_receives);
    assert!(
        dead_lettered <= retention / 2,
        "{QUEUE_ID}: a lead is dead-lettered after {dead_lettered:?}, leaving less than half \
         of the {retention:?} retention to replay it"
    );
    for receive in 1..=max_receives {
        let delay = backoff.delay(receive);
        assert!(
            delay <= Duration::from_secs(12 * 3600),
            "backoff after receive {receive}: {delay:?}, over SQS's 12 h"
        );
    }

    // An alarm as soon as one lead is in the dead-letter queue: its maximum over a minute
    // (SQS publishes every minute), one period.
    let alarmed = template.resources.values().any(|resource| {
        let props = &resource["Properties"];
        resource["Type"] == "AWS::CloudWatch::Alarm"
            && props["Namespace"] == "AWS/SQS"
            && props["MetricName"] == "ApproximateNumberOfMessagesVisible"
            && mentions(&props["Dimensions"], DEAD_LETTER_QUEUE_ID)
            && props["Statistic"] == "Maximum"
            && props["ComparisonOperator"] == "GreaterThanThreshold"
            && number(&props["Threshold"], "Threshold") == 0
            && number(&props["Period"], "Period") == 60
            && number(&props["EvaluationPeriods"], "EvaluationPeriods") == 1
            && props
                .get("DatapointsToAlarm")
                .is_none_or(|points| number(points, "DatapointsToAlarm") == 1)
            && !as_list(&props["AlarmActions"]).is_empty()
    });
    assert!(
        alarmed,
        "no alarm on {DEAD_LETTER_QUEUE_ID} holding one message, within a minute"
    );

    // Nothing else sends to the queues or changes their messages: the functions that take
    // leads in and the drain are checked above.
    for (binary, other_id) in &template.functions {
        let takes_leads_in = ALL.iter().any(|source| source.slug == binary)
            || binary == META_SYNC
            || binary == KNOWLARITY_SYNC
            || binary == DRAIN;
        // The desk and the CRM hand-off keep what they failed on, on their own
        // dead-letter queue only (the hand-off's poller permissions are SAM's).
        let own_dead_letters = match binary.as_str() {
            "desk" => Some("SalesDeskDeadLetterQueue"),
            "crm" => Some("CrmDeadLetterQueue"),
            _ => None,
        };
        if let Some(queue) = own_dead_letters {
            let keeps: BTreeSet<(String, String)> = [(
                "sqs:sendmessage".to_owned(),
                get_att(queue, "Arn").to_string(),
            )]
            .into();
            assert_eq!(template.sqs_permissions(other_id), keeps, "{other_id}");
        } else if !takes_leads_in {
            assert!(
                template.sqs_permissions(other_id).is_empty(),
                "{other_id}: no SQS permission"
            );
        }
    }

    // What `make replay-dlq` reads.
    for (output, value) in [
        ("BufferQueueUrl", reference(QUEUE_ID)),
        ("BufferQueueArn", get_att(QUEUE_ID, "Arn")),
        ("DeadLetterQueueUrl", reference(DEAD_LETTER_QUEUE_ID)),
        ("DeadLetterQueueArn", get_att(DEAD_LETTER_QUEUE_ID, "Arn")),
    ] {
        assert_eq!(
            template.outputs.get(output).map(|o| &o["Value"]),
            Some(&value),
            "Outputs.{output}"
        );
    }
}

/// A container holds one connection (see `shared::infra::store`), so reserved concurrency is
/// what bounds the connections.
#[test]
fn database_connections_are_bounded() {
    let template = Template::load();
    assert!(
        template
            .globals
            .get("ReservedConcurrentExecutions")
            .is_some(),
        "Globals: a function without its own reserved concurrency is capped all the same"
    );
    for id in template.functions.values() {
        let function = template.resource(id);
        assert!(
            !template
                .property(function, "ReservedConcurrentExecutions")
                .is_null(),
            "{id}: reserved concurrency caps its database connections"
        );
    }
}

/// The names in the first cell of every table row of a document: `Name`, or `Prefix*`
/// standing for every name it begins.
fn tabled(doc: &str) -> Vec<String> {
    read(doc)
        .lines()
        .filter_map(|line| line.strip_prefix('|')?.split('|').next())
        .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_owned))
        .collect::<Vec<_>>()
}

fn in_table(names: &[String], name: &str) -> bool {
    names.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => entry == name,
    })
}

/// The operator's guide has a row for every parameter, every output and every variable
/// the template sets.
#[test]
fn the_operators_tables_cover_the_templates_parameters_outputs_and_variables() {
    let template = Template::load();
    let names = tabled("docs/operations.md");
    let mut variables: BTreeSet<String> = template.globals_env().keys().cloned().collect();
    for id in template.functions.values() {
        let function = template.resource(id);
        if let Some(env) = function["Properties"]["Environment"]["Variables"].as_object() {
            variables.extend(env.keys().cloned());
        }
    }
    for (kind, list) in [
        (
            "parameter",
            template.parameters.keys().cloned().collect::<Vec<_>>(),
        ),
        ("output", template.outputs.keys().cloned().collect()),
        ("variable", variables.into_iter().collect()),
    ] {
        let missing: Vec<&String> = list.iter().filter(|name| !in_table(&names, name)).collect();
        assert!(
            missing.is_empty(),
            "docs/operations.md has no table row for the {kind}s {missing:?}"
        );
    }
}

/// The README and the operator's guide name every function deployed.
#[test]
fn the_docs_name_every_deployed_function() {
    let template = Template::load();
    for doc in ["README.md", "docs/operations.md"] {
        let text = read(doc);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let missing: Vec<&String> = template
            .functions
            .values()
            .filter(|id| !text.contains(&format!("`{id}`")))
            .collect();
        assert!(missing.is_empty(), "{doc} does not name {missing:?}");
    }
}

/// The engineering guide says what each test file proves: it names every one.
#[test]
fn the_engineering_guide_names_every_test_file() {
    let doc = read("docs/engineering.md");
    let mut dirs = vec![root().join("shared/tests")];
    for parent in ["functions", "tools"] {
        for name in subdirs(&root().join(parent)) {
            dirs.push(root().join(parent).join(name).join("tests"));
        }
    }
    let mut missing = Vec::new();
    for dir in dirs.iter().filter(|dir| dir.is_dir()) {
        for entry in std::fs::read_dir(dir).expect("a tests folder") {
            let file = entry.expect("a directory entry").path();
            if file.extension().is_some_and(|ext| ext == "rs") {
                let relative = file.strip_prefix(root()).expect("under the root");
                let name = format!("`{}`", relative.display());
                if !doc.contains(&name) {
                    missing.push(name);
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/engineering.md, Tests, lacks {missing:?}"
    );
}

/// The operator's guide says how much concurrency the first deploy needs; the figure is
/// the template's, whatever function is added.
#[test]
fn the_documented_reserved_concurrency_is_the_templates() {
    let template = Template::load();
    let reserved: u64 = template
        .functions
        .values()
        .map(|id| {
            let value = template.property(template.resource(id), "ReservedConcurrentExecutions");
            match value.get("Ref").and_then(Value::as_str) {
                Some(parameter) => number(
                    &template.parameters[parameter]["Default"],
                    &format!("{parameter}.Default"),
                ),
                None => number(&value, &format!("{id}.ReservedConcurrentExecutions")),
            }
        })
        .sum();
    let doc = read("docs/operations.md");
    let reserve = format!("the functions reserve **{reserved}** executions in all");
    let account = format!("least **{}**", reserved + 100);
    assert!(
        doc.contains(&reserve) && doc.contains(&account),
        "docs/operations.md must say `{reserve}` and `{account}` (100 stay unreserved)"
    );
}

#[test]
fn deployed_functions_get_no_static_keys_or_database_url() {
    let template = Template::load();
    let signed = SIGNED_DEV_VALUES.map(|(name, _)| name);
    for &name in ["API_KEYS", "DATABASE_URL"].iter().chain(&signed) {
        template.assert_local_only("Globals", name, template.globals_env().get(name));
        for id in template.functions.values() {
            let vars = &template.resource(id)["Properties"]["Environment"]["Variables"];
            template.assert_local_only(id, name, vars.get(name));
        }
    }
}

#[test]
fn every_variable_the_template_sets_is_read_by_the_code() {
    let template = Template::load();
    let code = names_in_code();
    let mut names: BTreeSet<String> = template.globals_env().keys().cloned().collect();
    for id in template.functions.values() {
        if let Some(vars) =
            template.resource(id)["Properties"]["Environment"]["Variables"].as_object()
        {
            names.extend(vars.keys().cloned());
        }
    }
    for name in names {
        assert!(
            code.contains(&format!("\"{name}\"")),
            "template.yaml sets {name}, which nothing in shared/src reads"
        );
    }
}

/// Every function logs to a log group of the stack, with the stack's retention, where the
/// operations guide sends operators: a function of its own, `/aws/lambda/<stack>-<binary>`;
/// the source functions share `/aws/lambda/<stack>-sources`, whose metric filters count
/// every source at once (keyed by the `source` each line carries). Each function's errors
/// are alarmed.
#[test]
fn every_function_has_a_log_group_and_an_errors_alarm() {
    let template = Template::load();
    let slugs = sources();
    let mut owners = BTreeMap::new();
    for (binary, id) in &template.functions {
        let source = slugs.contains(binary);
        let function = template.resource(id);
        let group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: LoggingConfig.LogGroup is !Ref <its log group>"));
        let group = template.resource(group_id);
        assert_eq!(group["Type"], "AWS::Logs::LogGroup", "{id}: {group_id}");
        let name = if source { "sources" } else { binary };
        assert_eq!(
            group["Properties"]["LogGroupName"],
            json!({ "Fn::Sub": format!("/aws/lambda/${{AWS::StackName}}-{name}") }),
            "{group_id}: LogGroupName, where the operations guide sends operators"
        );
        assert_eq!(
            group["Properties"]["RetentionInDays"],
            reference("LogRetentionDays"),
            "{group_id}: RetentionInDays"
        );
        let owner = if source { "the sources" } else { id };
        if let Some(other) = owners.insert(group_id.to_owned(), owner.to_owned()) {
            assert_eq!(
                other, owner,
                "{group_id} is the log group of {other} and {id}"
            );
        }

        let dimension = json!({ "Name": "FunctionName", "Value": reference(id) });
        let alarmed = template.resources.values().any(|resource| {
            let props = &resource["Properties"];
            resource["Type"] == "AWS::CloudWatch::Alarm"
                && props["Namespace"] == "AWS/Lambda"
                && props["MetricName"] == "Errors"
                && as_list(&props["Dimensions"]).contains(&&dimension)
                && !as_list(&props["AlarmActions"]).is_empty()
        });
        assert!(alarmed, "{id}: no alarm on its AWS/Lambda Errors");
    }
}

/// A source's alarms watch metrics that a filter on the sources' log group writes with a
/// `Source` dimension from the line's own `source`, so every alarm of every source can
/// fire from the one set of filters.
#[test]
fn every_source_alarm_watches_a_metric_the_sources_filters_write() {
    let template = Template::load();
    let group = &template.function(ALL[0].slug).1["Properties"]["LoggingConfig"]["LogGroup"];
    let written: Vec<(Value, Value)> = template
        .of_type("AWS::Logs::MetricFilter")
        .filter(|(_, filter)| &filter["Properties"]["LogGroupName"] == group)
        .map(|(id, filter)| {
            let transformation = &filter["Properties"]["MetricTransformations"][0];
            assert_eq!(
                transformation["Dimensions"],
                json!([{ "Key": "Source", "Value": "$.source" }]),
                "{id}: keyed by the line's source"
            );
            let (_, namespace, metric) = metric_filter(filter);
            (namespace, metric)
        })
        .collect();
    assert!(
        !written.is_empty(),
        "no metric filter on the sources' log group"
    );
    for source in ALL {
        let dimension = json!([{ "Name": "Source", "Value": source.slug }]);
        let alarms: Vec<(&String, &Value)> = template
            .of_type("AWS::CloudWatch::Alarm")
            .filter(|(_, alarm)| alarm["Properties"]["Dimensions"] == dimension)
            .collect();
        assert!(
            alarms.len() >= 4,
            "{}: its alarms on its metrics",
            source.slug
        );
        for (id, alarm) in alarms {
            let watched = (
                alarm["Properties"]["Namespace"].clone(),
                alarm["Properties"]["MetricName"].clone(),
            );
            assert!(
                written.contains(&watched),
                "{id}: no filter writes {watched:?}"
            );
        }
    }
}

/// `cargo lambda watch` reads its routes and each function's environment statically from
/// the root `Cargo.toml`; they cannot be derived from the code, so they are checked here.
/// A key source gets its development key; a signed source, and any function that reads
/// its secret, the development app secret and tokens (the event files are signed with it).
#[test]
fn make_dev_serves_every_source_on_its_route_with_its_dev_key() {
    let lambda = lambda_metadata();
    let router = lambda["watch"]["router"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let bins = lambda["bin"].as_object().cloned().unwrap_or_default();
    let signed_env: Map<String, Value> = SIGNED_DEV_VALUES
        .iter()
        .map(|(name, value)| ((*name).to_owned(), json!(value)))
        .collect();
    for source in ALL {
        let slug = source.slug;
        let route = source.route();
        let expected: Vec<Value> = methods(source)
            .iter()
            .map(|method| json!({ "method": method, "function": slug }))
            .collect();
        let mut served: Vec<Value> = as_list(router.get(&route).unwrap_or(&Value::Null))
            .into_iter()
            .cloned()
            .collect();
        served.sort_by_key(|route| route["method"].to_string());
        assert_eq!(
            served,
            expected,
            "Cargo.toml, [workspace.metadata.lambda.watch.router]: \"{route}\" = {}",
            serde_json::to_string(&expected).expect("routes")
        );
        let env = bins.get(slug).map(|bin| &bin["env"]);
        if keyed(source) {
            assert_eq!(
                env.map(|env| &env["API_KEYS"]),
                Some(&json!(dev_key(slug))),
                "Cargo.toml, [workspace.metadata.lambda.bin.{slug}.env]: API_KEYS = \"{}\"",
                dev_key(slug)
            );
        } else {
            for (name, value) in &signed_env {
                assert_eq!(
                    env.map(|env| &env[name]),
                    Some(value),
                    "Cargo.toml, [workspace.metadata.lambda.bin.{slug}.env]: {name} = {value}"
                );
            }
        }
    }
    let routes: BTreeSet<String> = router.keys().cloned().collect();
    let expected: BTreeSet<String> = ALL
        .iter()
        .map(|source| source.route())
        .chain(FEED_ROUTES.map(|route| {
            let (_, path) = route.split_once(' ').expect("METHOD /path");
            path.to_owned()
        }))
        .collect();
    assert_eq!(
        routes, expected,
        "Cargo.toml, [workspace.metadata.lambda.watch.router] vs shared::domain::source::ALL \
         and the feed"
    );
    assert_eq!(
        bins.get(FEED).map(|bin| &bin["env"]["FEED_API_KEYS"]),
        Some(&json!(dev_key(FEED))),
        "Cargo.toml, [workspace.metadata.lambda.bin.{FEED}.env]: FEED_API_KEYS"
    );
    let with_keys: BTreeSet<String> = bins
        .iter()
        .filter(|(_, bin)| bin["env"].get("API_KEYS").is_some())
        .map(|(name, _)| name.clone())
        .collect();
    let key_sources: BTreeSet<String> = ALL
        .iter()
        .filter(|source| keyed(source))
        .map(|source| source.slug.to_owned())
        .collect();
    assert_eq!(
        with_keys, key_sources,
        "Cargo.toml, functions given API_KEYS in [workspace.metadata.lambda.bin] vs the key \
         sources of shared::domain::source::ALL"
    );
    // Whoever is given a signed source's secrets is given all of them, the development ones.
    for (name, bin) in &bins {
        let given: Vec<&String> = signed_env
            .keys()
            .filter(|variable| bin["env"].get(variable.as_str()).is_some())
            .collect();
        if !given.is_empty() {
            for (variable, value) in &signed_env {
                assert_eq!(
                    bin["env"].get(variable),
                    Some(value),
                    "Cargo.toml, [workspace.metadata.lambda.bin.{name}.env]: {variable}"
                );
            }
        }
    }
}

/// `sam local --env-vars local/env.example.json` only overrides variables the template
/// declares for a function, so each entry must match a function and its declarations;
/// each key source gets its development key, and each function reading a signed source's
/// secret its development app secret and tokens.
#[test]
fn sam_local_env_file_covers_every_function_and_source_key() {
    let template = Template::load();
    let path = root().join("local").join("env.example.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let env: Map<String, Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let listed: BTreeSet<String> = env.keys().cloned().collect();
    let functions: BTreeSet<String> = template.functions.values().cloned().collect();
    assert_eq!(
        listed, functions,
        "{path:?}: one entry per function of template.yaml"
    );
    for (id, vars) in &env {
        let function = template.resource(id);
        let vars = vars
            .as_object()
            .unwrap_or_else(|| panic!("{path:?}: {id} is not an object of variables"));
        assert!(
            vars.contains_key("DATABASE_URL"),
            "{path:?}: {id} has no DATABASE_URL"
        );
        for name in vars.keys() {
            assert!(
                template.env(function, name).is_some(),
                "{path:?} sets {name} for {id}, which template.yaml does not declare for it \
                 (sam local would ignore it)"
            );
        }
    }
    for source in ALL {
        let (id, _) = template.function(source.slug);
        if keyed(source) {
            assert_eq!(
                env[id]["API_KEYS"],
                json!(dev_key(source.slug)),
                "{path:?}: {id}.API_KEYS"
            );
        }
    }
    // No queue under sam local: empty (a lead the database cannot take is a 500), both
    // queues alike, or the dead-letter queue alone would be refused.
    for id in template.functions.values() {
        for name in ["BUFFER_QUEUE_URL", "DEAD_LETTER_QUEUE_URL"] {
            if template.env(template.resource(id), name).is_some() {
                assert_eq!(env[id][name], json!(""), "{path:?}: {id}.{name}");
            }
        }
    }
    // Every function that reads a signed source's secret gets its development values in
    // its place (local ones win over META_SECRET_ARN), declared for sam local only.
    for id in template.functions.values() {
        let function = template.resource(id);
        if template.env(function, "META_SECRET_ARN").is_some() {
            for (name, value) in SIGNED_DEV_VALUES {
                assert!(
                    template.env(function, name).is_some(),
                    "template.yaml: {id} does not declare {name} (for sam local)"
                );
                assert_eq!(env[id][name], json!(value), "{path:?}: {id}.{name}");
            }
        }
    }
    // No lead_writer or lead_reader password to set under sam local (no Secrets Manager
    // there).
    for id in template.functions.values() {
        for name in [
            "DB_WRITER_SECRET_ARN",
            "DB_READER_SECRET_ARN",
            "DB_RELAY_SECRET_ARN",
            "DB_DESK_SECRET_ARN",
            "DB_CRM_SECRET_ARN",
        ] {
            if template.env(template.resource(id), name).is_some() {
                assert_eq!(env[id][name], json!(""), "{path:?}: {id}.{name}");
            }
        }
    }
    // The feed, with its development reader key.
    let (feed, _) = template.function(FEED);
    assert_eq!(
        env[feed]["FEED_API_KEYS"],
        json!(dev_key(FEED)),
        "{path:?}: {feed}.FEED_API_KEYS"
    );
}

/// The code bounds one request to `REQUEST_BUDGET_MS` (secret reads, insert, queueing); the
/// function's timeout must leave it that long, the gateway must wait for the function, and
/// both must answer before the partners give up at 10 s.
#[test]
fn source_functions_answer_before_the_partners_give_up() {
    let template = Template::load();
    for source in ALL {
        let (id, function) = template.function(source.slug);
        let budget = match template.env(function, "REQUEST_BUDGET_MS") {
            Some(value) => number(&value, "REQUEST_BUDGET_MS"),
            None => REQUEST_BUDGET_MS,
        };
        let timeout_ms = 1000 * number(&template.property(function, "Timeout"), "Timeout");
        assert!(
            timeout_ms > budget && timeout_ms < PARTNER_TIMEOUT_MS,
            "{id}: Timeout {timeout_ms} ms must be above the request budget ({budget} ms) \
             and below the partners' {PARTNER_TIMEOUT_MS} ms"
        );
        for (name, (_, props)) in template.events(id) {
            let integration = number(&props["TimeoutInMillis"], "TimeoutInMillis");
            assert!(
                integration > timeout_ms && integration < PARTNER_TIMEOUT_MS,
                "{id}.Events.{name}: TimeoutInMillis {integration} must be above the \
                 function's {timeout_ms} ms (its own answer comes first) and below \
                 {PARTNER_TIMEOUT_MS}"
            );
        }
    }
}

/// A template of a gateway response parsed as JSON (`$context.error.messageString` is
/// already a quoted JSON string).
fn gateway_body(owner: &str, template: &Value) -> Value {
    let text = template
        .as_str()
        .unwrap_or_else(|| panic!("{owner}: a template string"))
        .replace("$context.error.messageString", "\"message\"");
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{owner}: not JSON ({e}): {text}"));
    assert!(
        body.as_object()
            .is_some_and(|body| body.len() == 1 && body.get("error").is_some_and(Value::is_string)),
        "{owner}: the contract's {{\"error\":\"...\"}}, not {body}"
    );
    body
}

/// Partners retry a 5xx and never a 4xx: whatever the gateway answers on its own is in the
/// contract's JSON and content type, and every overload (a route's throttle, a quota, a
/// WAF block) is a retryable 503, never API Gateway's 429.
#[test]
fn the_gateway_answers_overloads_with_a_retryable_503_in_the_contracts_json() {
    let template = Template::load();
    let responses = template.resource(API_ID)["Properties"]["GatewayResponses"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for kind in ["DEFAULT_4XX", "DEFAULT_5XX"] {
        assert!(
            responses.contains_key(kind),
            "{API_ID}.GatewayResponses: no {kind}, so some of the gateway's answers are \
             {{\"message\":...}}"
        );
    }
    for (kind, response) in &responses {
        let owner = format!("{API_ID}.GatewayResponses.{kind}");
        assert_eq!(
            response["ResponseParameters"]["Headers"]["Content-Type"],
            "'application/json; charset=utf-8'",
            "{owner}: the contract's content type"
        );
        let templates = response["ResponseTemplates"]
            .as_object()
            .unwrap_or_else(|| panic!("{owner}: ResponseTemplates"));
        assert!(
            templates.contains_key("application/json"),
            "{owner}: an application/json template"
        );
        for (content_type, body) in templates {
            gateway_body(&format!("{owner}.{content_type}"), body);
        }
        if let Some(status) = response.get("StatusCode") {
            let status = number(status, "StatusCode");
            assert!(
                (400..600).contains(&status) && status != 429,
                "{owner}: StatusCode {status}"
            );
            if kind == "DEFAULT_5XX" {
                assert!(status >= 500, "{owner}: a 5xx stays a 5xx");
            }
        }
    }
    for kind in ["THROTTLED", "QUOTA_EXCEEDED", "WAF_FILTERED"] {
        let owner = format!("{API_ID}.GatewayResponses.{kind}");
        let response = responses
            .get(kind)
            .unwrap_or_else(|| panic!("{owner} is missing: API Gateway would answer a 4xx"));
        assert_eq!(
            number(&response["StatusCode"], "StatusCode"),
            503,
            "{owner}: a 503, which partners retry"
        );
        for (content_type, body) in response["ResponseTemplates"]
            .as_object()
            .expect("templates")
        {
            assert_eq!(
                gateway_body(&format!("{owner}.{content_type}"), body),
                json!({ "error": "Service unavailable" }),
                "{owner}.{content_type}"
            );
        }
    }
}

/// REST API keys and usage plans read the partners' own `X-API-Key` header and answer a
/// missing key and a wrong one alike (403 Forbidden): the key is the function's to check,
/// with the contract's 401/403. No authorizer either.
#[test]
fn the_gateway_checks_no_api_key_of_its_own() {
    let template = Template::load();
    for kind in [
        "AWS::ApiGateway::ApiKey",
        "AWS::ApiGateway::UsagePlan",
        "AWS::ApiGateway::UsagePlanKey",
        "AWS::ApiGateway::Authorizer",
    ] {
        let found: Vec<&String> = template.of_type(kind).map(|(id, _)| id).collect();
        assert!(found.is_empty(), "{kind}: {found:?}");
    }
    let auth = &template.resource(API_ID)["Properties"]["Auth"];
    for name in [
        "ApiKeyRequired",
        "UsagePlan",
        "Authorizers",
        "DefaultAuthorizer",
    ] {
        assert!(auth.get(name).is_none(), "{API_ID}.Auth.{name}");
    }
    for id in template.functions.values() {
        for (name, (_, props)) in template.events(id) {
            assert!(
                props["Auth"].is_null(),
                "{id}.Events.{name}.Auth: the function checks the key"
            );
        }
    }
}

/// Execution logs and data trace would write headers and bodies (keys and leads) to
/// CloudWatch; the access log names no header.
#[test]
fn the_gateway_logs_no_header_or_body() {
    let template = Template::load();
    let settings = template.method_settings();
    assert!(
        settings
            .iter()
            .any(|setting| setting["ResourcePath"] == "/*" && setting["HttpMethod"] == "*"),
        "{API_ID}.MethodSettings: an entry for every method (/*, *)"
    );
    for setting in &settings {
        assert!(
            setting["DataTraceEnabled"] == false && setting["LoggingLevel"] == "OFF",
            "{API_ID}.MethodSettings: DataTraceEnabled false and LoggingLevel OFF in {setting}"
        );
    }
    let format = template.resource(API_ID)["Properties"]["AccessLogSetting"]["Format"]
        .as_str()
        .expect("AccessLogSetting.Format")
        .to_lowercase();
    // A push that cannot set headers sends its key in the query string (`api_key`): no
    // variable that holds the query may be logged.
    for forbidden in [
        "header",
        "$input",
        "apikey",
        "api_key",
        "requestoverride",
        "querystring",
        "$method.request",
        "$request",
    ] {
        assert!(
            !format.contains(forbidden),
            "{API_ID}: the access log format mentions {forbidden}"
        );
    }
}

/// The WAF rules of a web ACL, each with the condition it exists under (a rule written as
/// `!If [Condition, rule, !Ref AWS::NoValue]`), in priority order.
fn waf_rules(acl_id: &str, acl: &Value) -> Vec<(Option<String>, Value)> {
    let mut rules: Vec<(Option<String>, Value)> = as_list(&acl["Rules"])
        .into_iter()
        .map(|rule| match rule.get("Fn::If").and_then(Value::as_array) {
            Some(parts) => {
                assert_eq!(
                    parts.get(2),
                    Some(&reference("AWS::NoValue")),
                    "{acl_id}: a conditional rule is !If [Condition, rule, !Ref AWS::NoValue]"
                );
                let condition = parts[0].as_str().expect("condition name").to_owned();
                (Some(condition), parts[1].clone())
            }
            None => (None, rule.clone()),
        })
        .collect();
    rules.sort_by_key(|(_, rule)| number(&rule["Priority"], "Priority"));
    let priorities: BTreeSet<u64> = rules
        .iter()
        .map(|(_, rule)| number(&rule["Priority"], "Priority"))
        .collect();
    assert_eq!(
        priorities.len(),
        rules.len(),
        "{acl_id}: one rule per priority"
    );
    rules
}

/// The web ACL on the REST API's stage: its logical id and properties.
fn web_acl(template: &Template) -> (&str, &Value) {
    let associations: Vec<&Value> = template
        .of_type("AWS::WAFv2::WebACLAssociation")
        .map(|(_, association)| &association["Properties"])
        .filter(|props| mentions(&props["ResourceArn"], API_ID))
        .collect();
    assert_eq!(associations.len(), 1, "one web ACL on {API_ID}'s stage");
    let acl_id = associations[0]["WebACLArn"]["Fn::GetAtt"][0]
        .as_str()
        .expect("WebACLArn: !GetAtt <web ACL>.Arn");
    (acl_id, template.resource(acl_id))
}

/// A rate-based rule's statement, if the rule blocks by rate per source IP.
fn per_ip_block(rule: &Value) -> Option<&Value> {
    let rate = &rule["Statement"]["RateBasedStatement"];
    (!rate.is_null() && rule["Action"].get("Block").is_some() && rate["AggregateKeyType"] == "IP")
        .then_some(rate)
}

/// Whether a per-IP rate statement counts only requests without a key: no `X-API-Key`
/// (absent or empty), and none of the query parameters a source may send its key as
/// (Knowlarity's push, which cannot set headers), so that such a push is not held as a
/// stranger's.
fn counts_keyless_only(rate: &Value) -> bool {
    let keyed = &rate["ScopeDownStatement"]["NotStatement"]["Statement"];
    let alternatives: Vec<&Value> = match keyed.get("OrStatement") {
        Some(or) => as_list(&or["Statements"]),
        None => vec![keyed],
    };
    let present = |field: &str, name: &str| {
        alternatives.iter().any(|statement| {
            let size = &statement["SizeConstraintStatement"];
            size["FieldToMatch"][field]["Name"]
                .as_str()
                .map(str::to_lowercase)
                .as_deref()
                == Some(name)
                && size["ComparisonOperator"] == "GT"
                && number(&size["Size"], "Size") == 0
        })
    };
    present("SingleHeader", "x-api-key")
        && ALL
            .iter()
            .filter(|source| source.query_push)
            .flat_map(|source| source.key_params)
            .all(|name| present("SingleQueryArgument", name))
}

/// A WAF in front of the stage rate-limits single IPs before they reach a route's budget,
/// keyless requests hardest; no managed rule set (they inspect bodies and would refuse
/// leads with a 403), and no sampled requests (they show the X-API-Key header).
#[test]
fn a_waf_rate_limits_single_ips_in_front_of_the_stage() {
    let template = Template::load();
    let (acl_id, acl) = web_acl(&template);
    let acl = &acl["Properties"];
    assert_eq!(acl["Scope"], "REGIONAL", "{acl_id}");
    assert!(
        acl["DefaultAction"].get("Allow").is_some(),
        "{acl_id}: allow by default"
    );
    assert_eq!(
        acl["VisibilityConfig"]["SampledRequestsEnabled"], false,
        "{acl_id}: no sampled requests"
    );
    let mut keyless = false;
    let mut any = false;
    for (_, rule) in waf_rules(acl_id, acl) {
        let name = &rule["Name"];
        assert!(
            rule["Statement"].get("ManagedRuleGroupStatement").is_none(),
            "{acl_id}.{name}: no managed rule sets"
        );
        assert_eq!(
            rule["VisibilityConfig"]["SampledRequestsEnabled"], false,
            "{acl_id}.{name}: no sampled requests"
        );
        if let Some(rate) = per_ip_block(&rule) {
            if rate.get("ScopeDownStatement").is_none() {
                any = true;
            } else if counts_keyless_only(rate) {
                keyless = true;
            }
        }
    }
    assert!(
        keyless,
        "{acl_id}: a rate-based rule blocking, per IP, requests without an x-api-key header"
    );
    assert!(
        any,
        "{acl_id}: a rate-based rule blocking, per IP, all requests"
    );
}

/// A partner's soft limit, in requests per second (120 a minute).
const PARTNER_SOFT_LIMIT_RPS: u64 = 2;
/// The rate-based rules' evaluation windows WAF accepts, in seconds.
const WAF_WINDOWS: [u64; 4] = [60, 120, 300, 600];
/// WAF's lowest rate limit.
const WAF_MIN_LIMIT: u64 = 10;

/// A rule's `Limit` for one value of `RouteRateLimit`: a literal, a parameter (at the
/// largest value it allows), or `!FindInMap [Map, !Ref RouteRateLimit, Key]`.
fn waf_limit(template: &Template, limit: &Value, route_rate: u64) -> u64 {
    if let Some(parameter) = limit.get("Ref").and_then(Value::as_str) {
        let max = &template.parameters[parameter]["MaxValue"];
        assert!(
            !max.is_null(),
            "{parameter}: a rate limit needs a MaxValue, or some allowed value breaks the bound"
        );
        return number(max, &format!("{parameter}.MaxValue"));
    }
    if let Some(parts) = limit.get("Fn::FindInMap").and_then(Value::as_array) {
        assert_eq!(
            parts[1],
            reference("RouteRateLimit"),
            "a rate limit looked up by the route's rate: {limit}"
        );
        let map = parts[0].as_str().expect("map name");
        let key = parts[2].as_str().expect("second-level key");
        let row = template.mappings.get(map).map_or(&Value::Null, |table| {
            &table[route_rate.to_string().as_str()][key]
        });
        assert!(
            !row.is_null(),
            "Mappings.{map}: no row for RouteRateLimit {route_rate}, which the parameter allows"
        );
        return number(row, &format!("Mappings.{map}.{route_rate}.{key}"));
    }
    number(limit, "Limit")
}

/// The bound the WAF exists for. Each route's throttle is one token bucket shared by every
/// caller, so any single IP, whatever headers or path it sends (a wrong `X-API-Key`
/// included), may send at most a quarter of a route's rate: it takes four addresses at
/// their limit to fill a route. This holds for every `RouteRateLimit` the template allows,
/// and still leaves a partner at its soft limit unblocked from one address; keyless
/// requests are held harder still, for every value their parameter allows.
#[test]
fn one_ip_gets_at_most_a_quarter_of_any_route_whatever_it_sends() {
    let template = Template::load();
    let (acl_id, acl) = web_acl(&template);
    let rules = waf_rules(acl_id, &acl["Properties"]);

    // A route's capacity is RouteRateLimit per second on every method.
    for setting in template.method_settings() {
        assert_eq!(
            setting["ThrottlingRateLimit"],
            reference("RouteRateLimit"),
            "{API_ID}.MethodSettings: every route's rate is RouteRateLimit, the rate the WAF's \
             limits follow: {setting}"
        );
    }
    let route_rates: Vec<u64> = as_list(&template.parameters["RouteRateLimit"]["AllowedValues"])
        .into_iter()
        .map(|value| number(value, "RouteRateLimit.AllowedValues"))
        .collect();
    assert!(
        !route_rates.is_empty(),
        "RouteRateLimit: AllowedValues, so every rate it may take has its WAF limit"
    );

    // Any request counts, whatever it sends: a per-IP rule with no scope-down, and ahead
    // of it nothing that lets a stranger through (a source's own addresses on its own
    // route are the next test's).
    let position = rules
        .iter()
        .position(|(condition, rule)| {
            condition.is_none()
                && per_ip_block(rule).is_some_and(|rate| rate.get("ScopeDownStatement").is_none())
        })
        .unwrap_or_else(|| {
            panic!("{acl_id}: an unconditional rate-based rule blocking, per IP, all requests")
        });
    let (_, any_rule) = &rules[position];
    for (_, earlier) in &rules[..position] {
        assert!(
            earlier["Action"].get("Block").is_some() || source_exemption(earlier).is_some(),
            "{acl_id}.{}: ahead of {}, only blocks or a source's own addresses on its own \
             route",
            earlier["Name"],
            any_rule["Name"]
        );
    }
    let rate = &any_rule["Statement"]["RateBasedStatement"];
    let window = number(&rate["EvaluationWindowSec"], "EvaluationWindowSec");
    assert!(WAF_WINDOWS.contains(&window), "{acl_id}: window {window} s");

    let keyless_rule = rules
        .iter()
        .filter_map(|(_, rule)| per_ip_block(rule))
        .find(|rate| counts_keyless_only(rate))
        .expect("a per-IP rule for requests without a key");
    let keyless_window = number(&keyless_rule["EvaluationWindowSec"], "EvaluationWindowSec");
    assert!(WAF_WINDOWS.contains(&keyless_window));

    for route_rate in route_rates {
        let limit = waf_limit(&template, &rate["Limit"], route_rate);
        let route_capacity = route_rate * window;
        assert!(
            limit >= WAF_MIN_LIMIT,
            "RouteRateLimit {route_rate}: limit {limit} < WAF's 10"
        );
        // One IP: at most a quarter of the route's capacity over the window.
        assert!(
            4 * limit <= route_capacity,
            "RouteRateLimit {route_rate}: one IP may send {limit} requests in {window} s, more \
             than a quarter of the route's {route_capacity}"
        );
        // So an IP that could alone push a partner at its soft limit into 503s (it needs
        // the rest of the route's rate: 8 rps of 10) is over its limit.
        let starving_rate = route_rate - PARTNER_SOFT_LIMIT_RPS;
        assert!(
            starving_rate * window > limit,
            "RouteRateLimit {route_rate}: an IP at {starving_rate} rps is never blocked"
        );
        // And a partner at its soft limit, from one address not listed, never trips it.
        assert!(
            PARTNER_SOFT_LIMIT_RPS * window <= limit,
            "RouteRateLimit {route_rate}: a partner at its soft limit ({PARTNER_SOFT_LIMIT_RPS} \
             rps) from one address is over the per-IP limit {limit} in {window} s"
        );
        // Keyless requests: a lower rate than any IP may send at all.
        let keyless_limit = waf_limit(&template, &keyless_rule["Limit"], route_rate);
        assert!(
            keyless_limit >= WAF_MIN_LIMIT,
            "keyless limit {keyless_limit} < WAF's 10"
        );
        assert!(
            keyless_limit * window < limit * keyless_window,
            "RouteRateLimit {route_rate}: keyless requests ({keyless_limit} in {keyless_window} \
             s) are not held harder than any request ({limit} in {window} s)"
        );
    }

    // The alarm that says a partner's address was blocked watches this rule.
    let watched = template
        .of_type("AWS::CloudWatch::Alarm")
        .any(|(_, alarm)| {
            let props = &alarm["Properties"];
            props["Namespace"] == "AWS/WAFV2"
                && props["MetricName"] == "BlockedRequests"
                && as_list(&props["Dimensions"]).iter().any(|dimension| {
                    dimension["Name"] == "Rule" && dimension["Value"] == any_rule["Name"]
                })
        });
    assert!(watched, "an alarm on the blocks of {}", any_rule["Name"]);
}

/// A rule allowing a source's own addresses on its own route: the IP set's logical id and
/// the path it is limited to.
fn source_exemption(rule: &Value) -> Option<(String, Value)> {
    rule["Action"].get("Allow")?;
    let statements = rule["Statement"]["AndStatement"]["Statements"].as_array()?;
    let [addresses, path] = statements.as_slice() else {
        return None;
    };
    let ip_set = addresses["IPSetReferenceStatement"]["Arn"]["Fn::GetAtt"]
        .as_array()
        .filter(|parts| parts.get(1).and_then(Value::as_str) == Some("Arn"))?
        .first()?
        .as_str()?
        .to_owned();
    let path = &path["ByteMatchStatement"];
    (path["FieldToMatch"]["UriPath"].is_object() && path["PositionalConstraint"] == "ENDS_WITH")
        .then_some(())?;
    Some((ip_set, path["SearchString"].clone()))
}

/// A partner's known addresses (its entry `source=CIDRs` in the one `SourceEgressCidrs`)
/// are never throttled by the rules meant for strangers, and only on its own route. A rule
/// is a list item, so the rules are slots: slot i's Allow rule, ahead of every rate-based
/// rule, pairs the IP set of the i-th entry's CIDRs with the route of the same entry's
/// source, and both exist only when that entry does. There is a slot for every source,
/// the parameter takes no more entries than there are slots, and no other rule allows.
#[test]
fn a_sources_own_addresses_skip_the_per_ip_limits_on_its_own_route_only() {
    let template = Template::load();
    let (acl_id, acl) = web_acl(&template);
    let acl_condition = json!({ "Condition": acl["Condition"] });
    let rules = waf_rules(acl_id, &acl["Properties"]);
    let first_rate_rule = rules
        .iter()
        .filter(|(_, rule)| !rule["Statement"]["RateBasedStatement"].is_null())
        .map(|(_, rule)| number(&rule["Priority"], "Priority"))
        .min()
        .expect("rate-based rules");
    let slots: Vec<&(Option<String>, Value)> = rules
        .iter()
        .filter(|(_, rule)| rule["Action"].get("Allow").is_some())
        .collect();
    assert!(
        slots.len() >= ALL.len(),
        "{acl_id}: a slot for every source"
    );

    // Every route is the one prefix and the source's slug, which is what an entry names.
    let slug = ALL[0].slug;
    let prefix = ALL[0].route();
    let prefix = prefix
        .strip_suffix(slug)
        .expect("a route ends with its slug");
    for source in ALL {
        assert_eq!(source.route(), format!("{prefix}{}", source.slug));
    }
    let padded =
        json!({ "Fn::Sub": format!("${{SourceEgressCidrs}}{}", ";".repeat(slots.len() - 1)) });
    for (index, (condition, rule)) in slots.iter().enumerate() {
        let name = &rule["Name"];
        let (ip_set_id, route) = source_exemption(rule).unwrap_or_else(|| {
            panic!("{acl_id}.{name}: an Allow rule is an IP set on a source's route")
        });
        assert!(
            number(&rule["Priority"], "Priority") < first_rate_rule,
            "{acl_id}.{name}: ahead of every rate-based rule"
        );
        let entry = json!({ "Fn::Select": [index, { "Fn::Split": [";", padded] }] });
        let part = |at: usize| json!({ "Fn::Select": [at, { "Fn::Split": ["=", entry] }] });
        assert_eq!(
            route,
            json!({ "Fn::Sub": [format!("{prefix}${{Source}}"), { "Source": part(0) }] }),
            "{acl_id}.{name}: the route of entry {index}'s source"
        );
        let condition = condition
            .clone()
            .unwrap_or_else(|| panic!("{acl_id}.{name}: exists only when its entry does"));
        assert_eq!(
            template.conditions.get(&condition),
            Some(
                &json!({ "Fn::And": [acl_condition, { "Fn::Not": [{ "Fn::Equals": [entry, ""] }] }] })
            ),
            "{condition}: true when entry {index} is there (and the WAF is on)"
        );
        let ip_set = template.resource(&ip_set_id);
        assert_eq!(ip_set["Type"], "AWS::WAFv2::IPSet", "{ip_set_id}");
        assert_eq!(
            ip_set["Condition"], condition,
            "{ip_set_id}: exists with its rule"
        );
        assert_eq!(ip_set["Properties"]["Scope"], "REGIONAL", "{ip_set_id}");
        assert_eq!(
            ip_set["Properties"]["Addresses"],
            json!({ "Fn::Split": [",", part(1)] }),
            "{ip_set_id}: the CIDRs of entry {index}"
        );
    }

    let parameter = &template.parameters["SourceEgressCidrs"];
    assert_eq!(parameter["Default"], "", "SourceEgressCidrs: optional");
    let pattern = parameter["AllowedPattern"]
        .as_str()
        .expect("SourceEgressCidrs: a pattern, so a malformed list fails before WAF sees it");
    let pattern = regex_lite::Regex::new(pattern).expect("SourceEgressCidrs.AllowedPattern");
    let entries: Vec<String> = (0..=slots.len())
        .map(|at| {
            format!(
                "{}=203.0.113.0/28,198.51.100.7/32",
                ALL[at % ALL.len()].slug
            )
        })
        .collect();
    assert!(pattern.is_match(""), "SourceEgressCidrs: empty");
    assert!(
        pattern.is_match(&entries[..slots.len()].join(";")),
        "SourceEgressCidrs: an entry for every slot"
    );
    let refused = [
        entries.join(";"),
        slug.to_owned(),
        format!("{slug}="),
        format!("{slug}=203.0.113.0/8"),
        format!("{slug}=203.0.113.0/28, 198.51.100.7/32"),
        format!("{slug}=203.0.113.0/28;"),
        "=203.0.113.0/28".to_owned(),
    ];
    for value in refused {
        assert!(
            !pattern.is_match(&value),
            "SourceEgressCidrs accepts {value:?}"
        );
    }
}

/// The `{ ... }` filter pattern and metric (namespace, name) of a metric filter.
fn metric_filter(filter: &Value) -> (String, Value, Value) {
    let props = &filter["Properties"];
    let transformation = &props["MetricTransformations"][0];
    (
        props["FilterPattern"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        transformation["MetricNamespace"].clone(),
        transformation["MetricName"].clone(),
    )
}

/// The metric filters behind the per-source alarms (written by `make template`) count
/// labels the code logs (`shared::edge::answer::label`, a signed source's `notification`,
/// `missing_signature`, `handshake_refused`...): a label renamed in the code without its
/// filter would leave an alarm that never fires. And the silence alarm's window,
/// `SilentSourceHours` hourly periods, stays inside CloudWatch's 7-day evaluation limit.
#[test]
fn the_metric_filters_count_labels_the_code_logs() {
    let template = Template::load();
    let code = names_in_code();
    let hours = template
        .parameters
        .get("SilentSourceHours")
        .expect("Parameters: SilentSourceHours");
    assert!(
        number(&hours["MinValue"], "SilentSourceHours.MinValue") >= 1
            && number(&hours["MaxValue"], "SilentSourceHours.MaxValue") * 3600 <= 7 * 24 * 3600,
        "SilentSourceHours: 1 hour to 7 days (CloudWatch's longest evaluation)"
    );
    let source_groups: Vec<&Value> = ALL
        .iter()
        .map(|source| &template.function(source.slug).1["Properties"]["LoggingConfig"]["LogGroup"])
        .collect();
    let mut filters = 0;
    for (id, filter) in template
        .of_type("AWS::Logs::MetricFilter")
        .filter(|(_, filter)| source_groups.contains(&&filter["Properties"]["LogGroupName"]))
    {
        let pattern = filter["Properties"]["FilterPattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: FilterPattern"));
        // The quoted words of a JSON filter pattern are the labels it compares with.
        for label in pattern.split('"').skip(1).step_by(2) {
            assert!(
                code.contains(&format!("\"{label}\"")),
                "{id}: its filter names \"{label}\", which nothing in shared/src logs"
            );
            filters += 1;
        }
    }
    assert!(filters > 0, "no metric filter names a label");
}

/// Every alarm notifies the alarm topic, and a deploy without a recipient is refused. The
/// gateway's overloads, the API's 5xx and a new database's storage, CPU and connections are
/// alarmed.
#[test]
fn every_alarm_reaches_someone() {
    let template = Template::load();
    let topic = json!({ "Fn::If": [
        "CreateAlarmTopic",
        reference("AlarmTopic"),
        reference("ExistingAlarmTopicArn"),
    ] });
    for (id, alarm) in template.of_type("AWS::CloudWatch::Alarm") {
        assert_eq!(
            alarm["Properties"]["AlarmActions"],
            json!([topic.clone()]),
            "{id}: AlarmActions"
        );
    }
    let required = template.rules.iter().any(|(_, rule)| {
        let asserts = serde_json::to_string(&rule["Assertions"]).expect("assertions");
        rule.get("RuleCondition").is_none()
            && asserts.contains("\"AlarmEmail\"")
            && asserts.contains("\"ExistingAlarmTopicArn\"")
    });
    assert!(
        required,
        "Rules: none requires AlarmEmail or ExistingAlarmTopicArn unconditionally"
    );

    let alarmed = |namespace: &str, metric: &str| {
        template
            .of_type("AWS::CloudWatch::Alarm")
            .any(|(_, alarm)| {
                alarm["Properties"]["Namespace"] == namespace
                    && alarm["Properties"]["MetricName"] == metric
            })
    };
    assert!(
        alarmed("AWS/ApiGateway", "5XXError"),
        "no alarm on the API's 5XXError"
    );
    for metric in ["FreeStorageSpace", "CPUUtilization", "DatabaseConnections"] {
        let alarm = template
            .of_type("AWS::CloudWatch::Alarm")
            .find(|(_, alarm)| {
                alarm["Properties"]["Namespace"] == "AWS/RDS"
                    && alarm["Properties"]["MetricName"] == metric
            });
        let (id, alarm) = alarm.unwrap_or_else(|| panic!("no alarm on the database's {metric}"));
        assert_eq!(alarm["Condition"], "CreateDatabase", "{id}");
        assert_eq!(
            alarm["Properties"]["Dimensions"],
            json!([{ "Name": "DBInstanceIdentifier", "Value": reference("Database") }]),
            "{id}"
        );
    }
    // The gateway's throttles and WAF blocks, from its access log.
    let api_log = &template.resource(API_ID)["Properties"]["AccessLogSetting"]["DestinationArn"]
        ["Fn::GetAtt"][0];
    let overload = template
        .of_type("AWS::Logs::MetricFilter")
        .map(|(_, filter)| (filter, metric_filter(filter)))
        .find(|(filter, (pattern, _, _))| {
            filter["Properties"]["LogGroupName"] == reference(api_log.as_str().unwrap_or_default())
                && pattern.contains("\"THROTTLED\"")
                && pattern.contains("\"WAF_FILTERED\"")
        });
    let (_, (_, namespace, metric)) = overload
        .expect("no metric filter on the API access log counting THROTTLED and WAF_FILTERED");
    assert!(
        template
            .of_type("AWS::CloudWatch::Alarm")
            .any(|(_, alarm)| {
                alarm["Properties"]["Namespace"] == namespace
                    && alarm["Properties"]["MetricName"] == metric
            }),
        "no alarm on the gateway's overloads ({metric})"
    );
}

/// Lead events: every function that stores leads names the stack's bus
/// (`EVENT_BUS_NAME`) and may put events on that bus only; the relay runs every minute;
/// the sales desk's rule sends every non-test `Lead stored` event's summary, as plain
/// text, to the new-leads topic, which only that rule may publish to and whose
/// subscriptions come from parameters; and a growing outbox is alarmed, from the line
/// the relay logs.
#[test]
fn lead_events_reach_the_sales_desk_from_every_storing_function() {
    let template = Template::load();
    let code = names_in_code();
    let bus = "LeadEventBus";
    assert_eq!(template.resource(bus)["Type"], "AWS::Events::EventBus");

    // Every function that stores leads: the sources, the drain, the pulls and the relay.
    let storing: Vec<String> = sources()
        .into_iter()
        .chain([DRAIN, META_SYNC, KNOWLARITY_SYNC, "relay"].map(String::from))
        .collect();
    for binary in &storing {
        let (id, function) = template.function(binary);
        assert_eq!(
            template.env(function, "EVENT_BUS_NAME"),
            Some(reference(bus)),
            "{id}: EVENT_BUS_NAME"
        );
        assert!(
            as_list(&function["Properties"]["Policies"])
                .contains(&&reference("PublishLeadEventsPolicy")),
            "{id}: PublishLeadEventsPolicy"
        );
        assert_eq!(
            template.grants(id, "events:putevents"),
            vec![get_att(bus, "Arn")],
            "{id}: PutEvents on the stack's bus only"
        );
        for statement in template.statements(id) {
            let puts = as_list(&statement["Action"]).iter().any(|action| {
                action
                    .as_str()
                    .is_some_and(|a| a.eq_ignore_ascii_case("events:PutEvents"))
            });
            if puts {
                assert_eq!(
                    statement["Condition"],
                    json!({ "StringEquals": { "events:source": shared::infra::aws::events::SOURCE } }),
                    "{id}: PutEvents only with the leads' own source"
                );
            }
        }
    }
    for (binary, id) in &template.functions {
        if !storing.contains(binary) {
            assert!(
                template.grants(id, "events:").is_empty(),
                "{id} stores no lead and may not publish events"
            );
        }
    }

    // The relay: every minute, one at a time, no retry of its own.
    let (id, function) = template.function("relay");
    let events = template.events(id);
    assert_eq!(events.len(), 1, "{id}: one event, its schedule");
    let (kind, props) = events.values().next().expect("event");
    assert_eq!(kind, "ScheduleV2", "{id}");
    assert_eq!(props["ScheduleExpression"], "rate(1 minute)", "{id}");
    assert!(props.get("Name").is_none(), "{id}: no fixed schedule name");
    assert_eq!(
        number(
            &function["Properties"]["ReservedConcurrentExecutions"],
            "ReservedConcurrentExecutions"
        ),
        1,
        "{id}: never two relays at once"
    );
    let timeout = number(&template.property(function, "Timeout"), "Timeout");
    assert!(
        timeout < 60,
        "{id}: Timeout {timeout} s ends before the next run"
    );
    assert!(template.routes(id).is_empty(), "{id}: no route");

    // The sales desk's rule: non-test Lead stored events, as their summary, to the topic.
    let rule_id = "LeadStoredToSalesDeskRule";
    let rule = template.resource(rule_id);
    assert_eq!(
        rule["Properties"]["EventBusName"],
        reference(bus),
        "{rule_id}"
    );
    let props = &rule["Properties"];
    assert_eq!(
        props["EventPattern"],
        json!({
            "source": ["mg-digital-leads"],
            "detail-type": ["Lead stored"],
            "detail": { "status": [{ "anything-but": "test" }] },
        }),
        "{rule_id}: EventPattern"
    );
    for literal in [
        "\"mg-digital-leads\"",
        "\"Lead stored\"",
        "'summary'",
        "'status'",
    ] {
        assert!(code.contains(literal), "shared/src no longer has {literal}");
    }
    // Its one target is the desk function, which tells the desk once per lead; a
    // delivery it cannot make is retried for a day, then kept on the desk's dead-letter
    // queue, as is an event the function failed on.
    let targets = as_list(&props["Targets"]);
    assert_eq!(targets.len(), 1, "{rule_id}: one target");
    let target = targets[0];
    let (desk_id, desk) = template.function("desk");
    assert_eq!(target["Arn"], get_att(desk_id, "Arn"), "{rule_id}");
    assert!(
        target.get("InputTransformer").is_none(),
        "{rule_id}: the whole event"
    );
    assert_eq!(
        target["RetryPolicy"],
        json!({ "MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400 }),
        "{rule_id}: retried for a day"
    );
    let dead_letters = get_att("SalesDeskDeadLetterQueue", "Arn");
    assert_eq!(target["DeadLetterConfig"]["Arn"], dead_letters, "{rule_id}");
    assert_eq!(
        desk["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"],
        dead_letters,
        "{desk_id}: a failed event is kept"
    );
    assert!(
        template
            .of_type("AWS::Lambda::Permission")
            .any(|(_, permission)| {
                permission["Properties"]["Principal"] == "events.amazonaws.com"
                    && permission["Properties"]["SourceArn"] == get_att(rule_id, "Arn")
                    && permission["Properties"]["FunctionName"] == get_att(desk_id, "Arn")
            }),
        "no permission for {rule_id} to invoke {desk_id}"
    );
    assert_eq!(
        template.env(desk, "NEW_LEADS_TOPIC_ARN"),
        Some(reference("NewLeadsTopic")),
        "{desk_id}: NEW_LEADS_TOPIC_ARN"
    );
    assert_eq!(
        template.grants(desk_id, "sns:"),
        vec![reference("NewLeadsTopic")],
        "{desk_id}: publishes to the desk's topic only"
    );
    assert_eq!(
        template.grants(desk_id, "kms:"),
        vec![get_att("TopicKey", "Arn")],
        "{desk_id}: the topic's key only"
    );
    for (binary, id) in &template.functions {
        // The CRM hand-off and speed to lead text phone numbers
        // (the_crm_hand_off_is_a_queue_fed_function_off_by_default).
        if !["desk", "crm", "crm-sla"].contains(&binary.as_str()) {
            assert!(
                template.grants(id, "sns:").is_empty(),
                "{id} publishes to no topic"
            );
        }
    }
    assert!(
        template
            .of_type("AWS::CloudWatch::Alarm")
            .any(|(_, alarm)| {
                alarm["Properties"]["Namespace"] == "AWS/Lambda"
                    && alarm["Properties"]["MetricName"] == "Errors"
                    && alarm["Properties"]["Dimensions"]
                        == json!([{ "Name": "FunctionName", "Value": reference(desk_id) }])
            }),
        "no alarm on {desk_id}'s errors"
    );
    assert!(
        template
            .of_type("AWS::CloudWatch::Alarm")
            .any(|(_, alarm)| {
                alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
                    && alarm["Properties"]["Dimensions"][0]["Value"]
                        == get_att("SalesDeskDeadLetterQueue", "QueueName")
            }),
        "no alarm on the desk's dead-letter queue"
    );
    let (policy_id, policy) = template
        .of_type("AWS::SNS::TopicPolicy")
        .find(|(_, policy)| {
            as_list(&policy["Properties"]["Topics"]).contains(&&reference("NewLeadsTopic"))
        })
        .expect("a policy on NewLeadsTopic");
    let statements = as_list(&policy["Properties"]["PolicyDocument"]["Statement"]);
    assert_eq!(statements.len(), 1, "{policy_id}");
    assert_eq!(
        *statements[0],
        json!({
            "Sid": statements[0]["Sid"],
            "Effect": "Allow",
            "Principal": { "AWS": get_att(&format!("{desk_id}Role"), "Arn") },
            "Action": "sns:Publish",
            "Resource": reference("NewLeadsTopic"),
        }),
        "{policy_id}: only the sales desk function publishes"
    );

    // The subscriptions: each from its parameter, only when set.
    let mut protocols = BTreeSet::new();
    for (id, subscription) in template
        .of_type("AWS::SNS::Subscription")
        .filter(|(_, s)| s["Properties"]["TopicArn"] == reference("NewLeadsTopic"))
    {
        let props = &subscription["Properties"];
        let parameter = props["Endpoint"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: Endpoint is a parameter"));
        assert_eq!(
            template.parameters[parameter]["Default"], "",
            "{id}: {parameter}"
        );
        let condition = subscription["Condition"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: subscribed only when {parameter} is set"));
        assert_eq!(
            template.conditions[condition],
            json!({ "Fn::Not": [{ "Fn::Equals": [reference(parameter), ""] }] }),
            "{id}: {condition}"
        );
        protocols.insert(props["Protocol"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(
        protocols,
        BTreeSet::from(["email".to_owned(), "sms".to_owned()]),
        "the sales desk by e-mail and SMS"
    );

    // A growing outbox: the relay's line, a metric of its oldest row's age, an alarm.
    let relay_group = function["Properties"]["LoggingConfig"]["LogGroup"].clone();
    let (filter_id, filter) = template
        .of_type("AWS::Logs::MetricFilter")
        .find(|(_, filter)| {
            filter["Properties"]["LogGroupName"] == relay_group
                && filter["Properties"]["MetricTransformations"][0]["MetricValue"]
                    == "$.oldest_age_s"
        })
        .expect("a metric of the outbox's oldest row's age, from the relay's log");
    assert!(
        code.contains("oldest_age_s") && code.contains("\"outbox relay run\""),
        "the relay logs oldest_age_s on its \"outbox relay run\" line"
    );
    let (_, namespace, metric) = metric_filter(filter);
    let alarmed = template
        .of_type("AWS::CloudWatch::Alarm")
        .any(|(_, alarm)| {
            alarm["Properties"]["Namespace"] == namespace
                && alarm["Properties"]["MetricName"] == metric
                && alarm["Properties"]["Threshold"] == reference("OutboxAgeAlarmSeconds")
        });
    assert!(alarmed, "{filter_id}: no alarm on {metric}");
}

/// The leads feed: GET (and the preflight's OPTIONS) on its route, its own generated
/// reader keys, logging in as `lead_reader` with its own generated secret, reading those
/// two secrets and nothing else (no partner's key, not lead_writer's credentials, no
/// queue), the dashboard's origins a parameter that refuses a wildcard, its key refusals
/// alarmed; and no other function refers to its secrets but migrate (which sets
/// lead_reader's password) and the RDS Proxy.
#[test]
fn the_feed_reads_as_lead_reader_with_its_own_keys_on_its_route() {
    let template = Template::load();
    let (id, function) = template.function(FEED);
    let routes: BTreeSet<String> = template.routes(id).into_iter().collect();
    assert_eq!(
        routes,
        FEED_ROUTES
            .map(str::to_owned)
            .into_iter()
            .collect::<BTreeSet<_>>(),
        "{id}: its routes"
    );

    let keys = reference(FEED_KEYS_SECRET_ID);
    let reader = reference(READER_SECRET_ID);
    assert_eq!(
        template.env(function, "DB_SECRET_ARN"),
        Some(reader.clone()),
        "{id}: logs in as lead_reader"
    );
    assert_eq!(
        template.env(function, "FEED_API_KEYS_SECRET_ARN"),
        Some(keys.clone()),
        "{id}"
    );
    assert_eq!(
        template.env(function, "FEED_ALLOWED_ORIGINS"),
        Some(reference("FeedAllowedOrigins")),
        "{id}: the dashboard's origins are a parameter"
    );
    template.assert_local_only(
        id,
        "FEED_API_KEYS",
        template.env(function, "FEED_API_KEYS").as_ref(),
    );
    for name in [
        "API_KEYS",
        "API_KEYS_SECRET_ARN",
        "BUFFER_QUEUE_URL",
        "DEAD_LETTER_QUEUE_URL",
        "META_SECRET_ARN",
    ] {
        assert!(template.env(function, name).is_none(), "{id}: no {name}");
    }
    let grants: BTreeSet<String> = template
        .grants(id, "secretsmanager:get")
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(
        grants,
        [&keys, &reader]
            .map(Value::to_string)
            .into_iter()
            .collect::<BTreeSet<_>>(),
        "{id}: reads its keys and lead_reader's credentials, nothing else"
    );
    assert!(template.sqs_permissions(id).is_empty(), "{id}: no queue");

    for secret_id in [FEED_KEYS_SECRET_ID, READER_SECRET_ID] {
        let secret = template.resource(secret_id);
        assert_eq!(secret["Type"], "AWS::SecretsManager::Secret", "{secret_id}");
        assert!(
            secret["Properties"].get("SecretString").is_none()
                && secret["Properties"].get("GenerateSecretString").is_some(),
            "{secret_id}: generated, never written in the template"
        );
        for (other_id, other) in &template.resources {
            let allowed = other_id == secret_id
                || other_id == id
                || other_id == "DatabaseProxy"
                || other_id == "DatabaseProxyRole"
                || template.outputs.values().any(|output| output == other)
                || (secret_id == READER_SECRET_ID && other_id == "MigrateFunction");
            assert!(
                allowed || !mentions(other, secret_id),
                "{other_id} refers to {secret_id}"
            );
        }
    }
    let generate = &template.resource(READER_SECRET_ID)["Properties"]["GenerateSecretString"];
    let shape: Value = serde_json::from_str(
        generate["SecretStringTemplate"]
            .as_str()
            .unwrap_or_default(),
    )
    .expect("SecretStringTemplate is JSON");
    assert_eq!(
        shape,
        json!({ "username": "lead_reader" }),
        "{READER_SECRET_ID}: the role the migration creates"
    );
    assert_eq!(generate["GenerateStringKey"], "password");
    let excluded = generate["ExcludeCharacters"].as_str().unwrap_or_default();
    for c in ['"', '\'', '\\', '@', '/', ' '] {
        assert!(
            excluded.contains(c),
            "{READER_SECRET_ID}: ExcludeCharacters lacks {c:?}"
        );
    }

    let origins = &template.parameters["FeedAllowedOrigins"];
    assert_eq!(origins["Type"], "String");
    assert_eq!(
        origins["AllowedPattern"], "^[^*]*$",
        "FeedAllowedOrigins refuses a wildcard"
    );

    // Its key refusals are counted from its log and alarmed.
    let (filter_id, _) = template
        .of_type("AWS::Logs::MetricFilter")
        .find(|(_, filter)| {
            filter["Properties"]["LogGroupName"] == reference("FeedLogGroup")
                && filter["Properties"]["MetricTransformations"][0]["MetricName"] == "KeyRefusals"
        })
        .expect("a KeyRefusals metric filter on the feed's log group");
    let pattern = template.resource(filter_id)["Properties"]["FilterPattern"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        pattern.contains("401") && pattern.contains("403"),
        "{filter_id}: {pattern}"
    );
    let alarmed = template
        .of_type("AWS::CloudWatch::Alarm")
        .any(|(_, alarm)| {
            let props = &alarm["Properties"];
            props["MetricName"] == "KeyRefusals"
                && as_list(&props["Dimensions"])
                    .contains(&&json!({ "Name": "Source", "Value": FEED }))
                && !as_list(&props["AlarmActions"]).is_empty()
        });
    assert!(alarmed, "no alarm on the feed's key refusals");
}

/// The topics carry names and phones (the sales desk's lines) and the alarms: each is
/// encrypted at rest with the stack's own key, rotated, whose policy lets EventBridge
/// and CloudWatch publish through it.
#[test]
fn the_topics_are_encrypted_with_a_key_that_lets_their_publishers_publish() {
    let template = Template::load();
    let topics: Vec<(&String, &Value)> = template.of_type("AWS::SNS::Topic").collect();
    assert!(topics.len() >= 2, "the new-leads and alarm topics");
    for (id, topic) in topics {
        let key = topic["Properties"]["KmsMasterKeyId"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: KmsMasterKeyId is !Ref <the stack's key>"));
        let key = template.resource(key);
        assert_eq!(key["Type"], "AWS::KMS::Key", "{id}: a customer-managed key");
        assert_eq!(
            key["Properties"]["EnableKeyRotation"], true,
            "{id}: rotated"
        );
        let statements = as_list(&key["Properties"]["KeyPolicy"]["Statement"]);
        for service in ["events.amazonaws.com", "cloudwatch.amazonaws.com"] {
            let allowed = statements.iter().any(|statement| {
                statement["Effect"] == "Allow"
                    && statement["Principal"]["Service"] == service
                    && ["kms:GenerateDataKey*", "kms:Decrypt"]
                        .iter()
                        .all(|action| as_list(&statement["Action"]).contains(&&json!(action)))
            });
            assert!(allowed, "{id}: its key does not let {service} publish");
        }
    }
}

/// The CRM hand-off: off while `CrmSecretArn` is empty (every resource of it under one
/// condition); a rule on non-test `Lead stored` events to its queue, retried for a day;
/// the queue redriving to its dead-letter queue after a day of minutes, alarmed; the
/// function fed by the queue with partial batch failures, logging in as `lead_crm`,
/// texting phone numbers and reading the CRM's user's secret.
#[test]
fn the_crm_hand_off_is_a_queue_fed_function_off_by_default() {
    let template = Template::load();
    assert_eq!(template.parameters["CrmSecretArn"]["Default"], "");
    assert_eq!(
        template.conditions["HandOffToCrm"],
        json!({ "Fn::Not": [{ "Fn::Equals": [reference("CrmSecretArn"), ""] }] })
    );
    for id in [
        "LeadStoredToCrmRule",
        "CrmQueue",
        "CrmDeadLetterQueue",
        "CrmQueuePolicy",
        "CrmFunction",
        "CrmLogGroup",
        "CrmErrorsAlarm",
        "CrmDeadLetterAlarm",
        "CrmUnreachableAlarm",
    ] {
        assert_eq!(template.resource(id)["Condition"], "HandOffToCrm", "{id}");
    }
    let rule = &template.resource("LeadStoredToCrmRule")["Properties"];
    assert_eq!(
        rule["EventPattern"]["detail"],
        json!({ "status": [{ "anything-but": "test" }] })
    );
    let target = as_list(&rule["Targets"])[0];
    assert_eq!(target["Arn"], get_att("CrmQueue", "Arn"));
    assert_eq!(target["RetryPolicy"]["MaximumEventAgeInSeconds"], 86400);
    let queue = &template.resource("CrmQueue")["Properties"];
    assert_eq!(
        queue["RedrivePolicy"],
        json!({ "deadLetterTargetArn": get_att("CrmDeadLetterQueue", "Arn"), "maxReceiveCount": 1440 })
    );
    let visibility = number(&queue["VisibilityTimeout"], "VisibilityTimeout");
    assert!(visibility * 1440 >= 86_400, "a day of retries");

    let (id, function) = template.function("crm");
    let events = template.events(id);
    let (kind, props) = events.values().next().expect("its queue");
    assert_eq!((events.len(), kind.as_str()), (1, "SQS"), "{id}");
    assert_eq!(props["Queue"], get_att("CrmQueue", "Arn"));
    assert_eq!(
        props["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    let timeout = number(&template.property(function, "Timeout"), "Timeout");
    assert!(
        visibility >= 6 * timeout,
        "{id}: visibility six times the timeout"
    );
    assert_eq!(
        template.env(function, "DB_SECRET_ARN"),
        Some(reference(CRM_SECRET_ID)),
        "{id} logs in as lead_crm"
    );
    assert_eq!(
        template.env(function, "CRM_DB_SECRET_ARN"),
        Some(reference("CrmSecretArn"))
    );
    assert_eq!(
        template.env(function, "CRM_DEAD_LETTER_QUEUE_URL"),
        Some(reference("CrmDeadLetterQueue"))
    );
    assert_eq!(
        template.grants(id, "sns:publish"),
        vec![json!("*")],
        "{id}: texts"
    );
    assert!(
        template.grants(id, "events:").is_empty(),
        "{id} stores no lead"
    );
    assert_eq!(
        template.env(function, "METRICS_NAMESPACE"),
        Some(json!({ "Fn::Sub": "MgDigitalLeads/${AWS::StackName}" })),
        "{id}: its metrics beside the stack's others"
    );
}

/// Speed to lead: on with the hand-off, every minute, never retried (the next run covers a
/// failed one), one run at a time; the hand-off's databases, texts and wording, its
/// thresholds and own wording from parameters; its errors alarmed; and a dashboard of
/// the figures the code emits.
#[test]
fn speed_to_lead_runs_every_minute_beside_the_hand_off() {
    let template = Template::load();
    for id in [
        "CrmSlaFunction",
        "CrmSlaLogGroup",
        "CrmSlaErrorsAlarm",
        "LeadsDashboard",
    ] {
        assert_eq!(template.resource(id)["Condition"], "HandOffToCrm", "{id}");
    }
    let (id, function) = template.function("crm-sla");
    let events = template.events(id);
    let (kind, props) = events.values().next().expect("its schedule");
    assert_eq!((events.len(), kind.as_str()), (1, "ScheduleV2"), "{id}");
    assert_eq!(props["ScheduleExpression"], "rate(1 minute)");
    let invoke = template.property(function, "EventInvokeConfig");
    assert_eq!(invoke["MaximumRetryAttempts"], 0, "{id}");
    assert_eq!(
        number(
            &template.property(function, "ReservedConcurrentExecutions"),
            "reserved"
        ),
        1
    );
    assert!(number(&template.property(function, "Timeout"), "Timeout") < 60);
    // The hand-off's own settings, so a lead is escalated in the words and through the
    // database the hand-off used.
    let (_, crm) = template.function("crm");
    for name in [
        "DB_SECRET_ARN",
        "CRM_DB_SECRET_ARN",
        "CRM_DB_HOST",
        "CRM_DB_PORT",
        "CRM_DB_NAME",
        "CRM_SOURCES",
        "CRM_SMS_SENDER_ID",
        "CRM_DLT_ENTITY_ID",
        "CRM_DLT_TEMPLATE_ID",
        "CRM_SMS_TEMPLATE",
        "METRICS_NAMESPACE",
    ] {
        assert_eq!(
            template.env(function, name),
            template.env(crm, name),
            "{id}: {name}"
        );
    }
    for (name, parameter) in [
        ("CRM_SLA_REMINDER_MINUTES", "CrmSlaReminderMinutes"),
        ("CRM_SLA_REASSIGN_MINUTES", "CrmSlaReassignMinutes"),
        ("CRM_SLA_MAX_REASSIGNMENTS", "CrmSlaMaxReassignments"),
        ("CRM_SLA_REMINDER_TEMPLATE", "CrmSlaReminderTemplate"),
        ("CRM_SLA_REASSIGNED_TEMPLATE", "CrmSlaReassignedTemplate"),
        ("CRM_SLA_GAVE_UP_TEMPLATE", "CrmSlaGaveUpTemplate"),
        ("CRM_DLT_REMINDER_TEMPLATE_ID", "CrmDltReminderTemplateId"),
        (
            "CRM_DLT_REASSIGNED_TEMPLATE_ID",
            "CrmDltReassignedTemplateId",
        ),
        ("CRM_DLT_GAVE_UP_TEMPLATE_ID", "CrmDltGaveUpTemplateId"),
    ] {
        assert_eq!(
            template.env(function, name),
            Some(reference(parameter)),
            "{id}: {name}"
        );
    }
    // The parameters' defaults are the code's.
    let defaults = shared::domain::crm::sla::Thresholds::default();
    for (parameter, value) in [
        ("CrmSlaReminderMinutes", defaults.reminder.as_secs() / 60),
        (
            "CrmSlaReassignMinutes",
            defaults.reassignment.as_secs() / 60,
        ),
        (
            "CrmSlaMaxReassignments",
            u64::from(defaults.max_reassignments),
        ),
    ] {
        assert_eq!(
            number(&template.parameters[parameter]["Default"], parameter),
            value,
            "{parameter}"
        );
    }
    assert_eq!(
        template.grants(id, "sns:publish"),
        vec![json!("*")],
        "{id}: texts"
    );
    let alarm = &template.resource("CrmSlaErrorsAlarm")["Properties"];
    assert_eq!(
        (&alarm["Namespace"], &alarm["MetricName"]),
        (&json!("AWS/Lambda"), &json!("Errors"))
    );
    assert!(as_list(&alarm["Dimensions"])
        .iter()
        .any(|dimension| dimension["Value"] == reference("CrmSlaFunction")));

    // The dashboard reads the names the code emits, and every dead-letter queue.
    let body = template.resource("LeadsDashboard")["Properties"]["DashboardBody"]["Fn::Sub"][0]
        .as_str()
        .expect("a dashboard body to substitute")
        .to_owned();
    let widgets: Value = serde_json::from_str(&body).expect("the dashboard body is JSON");
    assert!(as_list(&widgets["widgets"]).len() >= 6);
    for metric in [
        shared::infra::metrics::STORED_TO_SMS,
        shared::infra::metrics::STORED_TO_FIRST_TOUCH,
        shared::infra::metrics::LEADS,
    ] {
        assert!(
            body.contains(&format!("MetricName=\\\"{metric}\\\"")),
            "the dashboard shows {metric}"
        );
    }
    for (queue, _) in template
        .of_type("AWS::SQS::Queue")
        .filter(|(queue, _)| queue.ends_with("DeadLetterQueue"))
    {
        assert!(
            body.contains(&format!("${{{queue}.QueueName}}")),
            "the dashboard shows {queue}"
        );
    }
}
