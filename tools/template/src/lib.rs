//! Each source's part of `template.yaml`, written from its declaration in
//! [`shared::domain::source::ALL`]: its secret, function and alarms, and its outputs. What differs between sources follows from how each proves
//! itself (its [`Auth`]); everything else of the template is written by hand.
//!
//! The generated parts sit between marker comments, one pair per place in the template,
//! so the hand-written rest (comments included) is kept as it is.

use shared::domain::source::{Auth, Source, ALL};

/// Why a template cannot be regenerated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("template.yaml has no marker line `{0}`")]
    MissingMarker(String),
    #[error("template.yaml has the marker line `{0}` more than once")]
    RepeatedMarker(String),
}

/// The places in the template a source has a part in, in the template's order.
pub const PARTS: [Part; 2] = [Part::Resources, Part::Outputs];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Resources,
    Outputs,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Resources => "resources",
            Part::Outputs => "outputs",
        }
    }

    /// The comment that opens the part.
    pub fn begin(self) -> String {
        format!(
            "# --- generated from shared/src/domain/source.rs by make template: do not edit ({}) ---",
            self.name()
        )
    }

    /// The comment that closes the part.
    pub fn end(self) -> String {
        format!("# --- end of the generated {} ---", self.name())
    }

    /// The part's text for every source, unindented.
    fn render(self) -> String {
        let mut text = String::new();
        for source in ALL {
            let part = match self {
                Part::Resources => resources(source),
                Part::Outputs => outputs(source),
            };
            text.push_str(&fill(&part, source));
        }
        text
    }
}

/// `template` with every source's part between its markers written anew.
pub fn render(template: &str) -> Result<String, Error> {
    let mut lines: Vec<String> = template.lines().map(str::to_owned).collect();
    for part in PARTS {
        let begin = find_once(&lines, &part.begin())?;
        let end = begin
            + 1
            + find_once(&lines[begin + 1..], &part.end())
                .map_err(|_| Error::MissingMarker(part.end()))?;
        let indent: String = lines[begin].chars().take_while(|c| *c == ' ').collect();
        let generated: Vec<String> = part
            .render()
            .lines()
            .map(|line| {
                if line.is_empty() {
                    String::new()
                } else {
                    format!("{indent}{line}")
                }
            })
            .collect();
        lines.splice(begin + 1..end, generated);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(text)
}

fn find_once(lines: &[String], marker: &str) -> Result<usize, Error> {
    let mut found = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.trim() == marker);
    match (found.next(), found.next()) {
        (Some((index, _)), None) => Ok(index),
        (None, _) => Err(Error::MissingMarker(marker.to_owned())),
        (Some(_), Some(_)) => Err(Error::RepeatedMarker(marker.to_owned())),
    }
}

/// The logical-id stem of a source: its slug in PascalCase (`meta` → `Meta`).
pub fn stem(source: &Source) -> String {
    source
        .slug
        .split(['-', '_'])
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn fill(text: &str, source: &Source) -> String {
    let key_field = match source.auth {
        Auth::Body(fields) => fields.first().copied().unwrap_or_default(),
        Auth::Header | Auth::Signature => "",
    };
    text.replace("<Stem>", &stem(source))
        .replace("<slug>", source.slug)
        .replace("<Platform>", source.platform)
        .replace("<Product>", source.product)
        .replace("<route>", &source.route())
        .replace("<key field>", key_field)
}

/// The `(event name, method)` of each route of a source: a signed source also answers
/// its platform's subscription handshake, a `GET` on the same path, and a source whose
/// push may come as a query string (`query_push`) its `GET` push.
fn events(source: &Source) -> &'static [(&'static str, &'static str)] {
    match source.auth {
        Auth::Header | Auth::Body(_) if source.query_push => {
            &[("Lead", "POST"), ("QueryLead", "GET")]
        }
        Auth::Header | Auth::Body(_) => &[("Lead", "POST")],
        Auth::Signature => &[("Notification", "POST"), ("Handshake", "GET")],
    }
}

fn resources(source: &Source) -> String {
    let (secret, function, alarms) = match source.auth {
        Auth::Header => (
            KEY_SECRET.replace("<secret description>", HEADER_SECRET_DESCRIPTION),
            KEYED_FUNCTION.replace("<function description>", "<Product> lead webhook"),
            HEADER_ALARMS,
        ),
        Auth::Body(_) => (
            KEY_SECRET.replace("<secret description>", BODY_SECRET_DESCRIPTION),
            KEYED_FUNCTION.replace("<function description>", "<Product> lead form webhook"),
            BODY_ALARMS,
        ),
        Auth::Signature => (
            SIGNED_SECRET.to_owned(),
            SIGNED_FUNCTION.to_owned(),
            SIGNED_ALARMS,
        ),
    };
    let mut function = function;
    for (event, method) in events(source) {
        function.push_str(
            &ROUTE_EVENT
                .replace("<event>", event)
                .replace("<method>", method),
        );
    }
    [HEADING, &secret, &function, alarms, ERRORS_ALARM].concat()
}

fn outputs(source: &Source) -> String {
    match source.auth {
        Auth::Header => HEADER_OUTPUTS,
        Auth::Body(_) => BODY_OUTPUTS,
        Auth::Signature => SIGNED_OUTPUTS,
    }
    .to_owned()
}

const HEADING: &str = "
# ---------------------------------------------------------------- <Platform>
";

const HEADER_SECRET_DESCRIPTION: &str =
    "<Platform>'s X-API-Key (one key, or a JSON list of keys during a rotation)";

const BODY_SECRET_DESCRIPTION: &str = "The key of the <Product> lead forms' webhook, <key field> in the body (one key, or a JSON list of keys during a rotation)";

const KEY_SECRET: &str = r#"<Stem>ApiKeySecret:
  Type: AWS::SecretsManager::Secret
  DeletionPolicy: Delete
  UpdateReplacePolicy: Delete
  Properties:
    Name: !Sub ${AWS::StackName}/api-keys/<slug>
    Description: <secret description>
    GenerateSecretString:
      PasswordLength: 40
      ExcludePunctuation: true
      IncludeSpace: false
"#;

const SIGNED_SECRET: &str = r#"<Stem>Secret:
  Type: AWS::SecretsManager::Secret
  DeletionPolicy: Delete
  UpdateReplacePolicy: Delete
  Properties:
    Name: !Sub ${AWS::StackName}/<slug>
    Description: <Product> - app_secrets (current first), verify_token (generated), page_access_token and page_id; the operator fills all but verify_token
    GenerateSecretString:
      SecretStringTemplate: '{"app_secrets":[],"page_access_token":"","page_id":""}'
      GenerateStringKey: verify_token
      PasswordLength: 40
      ExcludePunctuation: true
      IncludeSpace: false
# <Platform>'s secrets: the <slug> function, the drain (leads queued unread) and <slug>-sync
# read them, and nothing else does.
Read<Stem>SecretPolicy:
  Type: AWS::IAM::ManagedPolicy
  Properties:
    Description: !Sub Read the <Platform> app secrets and page token of ${AWS::StackName}
    PolicyDocument:
      Version: "2012-10-17"
      Statement:
        - Sid: Read<Stem>Secret
          Effect: Allow
          Action: secretsmanager:GetSecretValue
          Resource: !Ref <Stem>Secret
"#;

const KEYED_FUNCTION: &str = r#"<Stem>Function:
  Type: AWS::Serverless::Function
  Metadata:
    BuildMethod: rust-cargolambda
    BuildProperties:
      Binary: <slug>
  Properties:
    Description: <function description>
    LoggingConfig:
      LogGroup: !Ref SourcesLogGroup
    Environment:
      Variables:
        API_KEYS_SECRET_ARN: !Ref <Stem>ApiKeySecret
        API_KEYS: !If [IsSamLocal, "", !Ref AWS::NoValue]
        BUFFER_QUEUE_URL: !Ref LeadBufferQueue
        DEAD_LETTER_QUEUE_URL: !Ref LeadBufferDeadLetterQueue
    Policies:
      - !Ref ReadWriterCredentialsPolicy
      - !Ref QueueLeadsPolicy
      - !Ref DeadLetterLeadsPolicy
      - !Ref PublishLeadEventsPolicy
      - Statement:
          - Sid: ReadOwnApiKeys
            Effect: Allow
            Action: secretsmanager:GetSecretValue
            Resource: !Ref <Stem>ApiKeySecret
    Events:
"#;

const SIGNED_FUNCTION: &str = r#"<Stem>Function:
  Type: AWS::Serverless::Function
  Metadata:
    BuildMethod: rust-cargolambda
    BuildProperties:
      Binary: <slug>
  Properties:
    Description: <Product> webhook (GET subscription handshake, POST signed notifications)
    LoggingConfig:
      LogGroup: !Ref SourcesLogGroup
    Environment:
      Variables:
        META_SECRET_ARN: !Ref <Stem>Secret
        GRAPH_API_VERSION: !Ref GraphApiVersion
        META_APP_SECRETS: !If [IsSamLocal, "", !Ref AWS::NoValue]
        META_VERIFY_TOKEN: !If [IsSamLocal, "", !Ref AWS::NoValue]
        META_PAGE_ACCESS_TOKEN: !If [IsSamLocal, "", !Ref AWS::NoValue]
        META_PAGE_ID: !If [IsSamLocal, "", !Ref AWS::NoValue]
        # Under sam local only: a Graph API stand-in's URL, for --env-vars to set.
        GRAPH_API_URL: !If [IsSamLocal, "", !Ref AWS::NoValue]
        BUFFER_QUEUE_URL: !Ref LeadBufferQueue
        DEAD_LETTER_QUEUE_URL: !Ref LeadBufferDeadLetterQueue
    Policies:
      - !Ref ReadWriterCredentialsPolicy
      - !Ref QueueLeadsPolicy
      - !Ref DeadLetterLeadsPolicy
      - !Ref PublishLeadEventsPolicy
      - !Ref Read<Stem>SecretPolicy
    Events:
"#;

const ROUTE_EVENT: &str = r#"      <event>:
        Type: Api
        Properties:
          RestApiId: !Ref LeadsRestApi
          Method: <method>
          Path: <route>
          TimeoutInMillis: 9000
"#;

/// An alarm on a count of a source's lines: any `$threshold` in `$period` seconds.
macro_rules! count_alarm {
    ($metric:literal, $period:literal, $threshold:literal, $description:expr) => {
        concat!(
            "<Stem>", $metric, "Alarm:\n",
            "  Type: AWS::CloudWatch::Alarm\n",
            "  Properties:\n",
            "    AlarmDescription: ", $description, "\n",
            "    Namespace: !Sub \"MgDigitalLeads/${AWS::StackName}\"\n",
            "    MetricName: ", $metric, "\n",
            "    Dimensions:\n",
            "      - { Name: Source, Value: <slug> }\n",
            "    Statistic: Sum\n",
            "    Period: ", $period, "\n",
            "    EvaluationPeriods: 1\n",
            "    Threshold: ", $threshold, "\n",
            "    ComparisonOperator: GreaterThanOrEqualToThreshold\n",
            "    TreatMissingData: notBreaching\n",
            "    AlarmActions: [!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref ExistingAlarmTopicArn]]\n",
            "    OKActions: [!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref ExistingAlarmTopicArn]]\n",
        )
    };
}

/// The four alarms on a source's metrics, each with its own description.
macro_rules! alarms {
    ($silent:expr, $rejected:expr, $refusals:expr, $misconfigured:expr) => {
        concat!(
            "# No data at all counts as silence (TreatMissingData: breaching): hourly periods, so the\n",
            "# window (SilentSourceHours, up to 168) stays inside CloudWatch's 7-day limit.\n",
            "<Stem>SilentAlarm:\n",
            "  Type: AWS::CloudWatch::Alarm\n",
            "  Properties:\n",
            "    AlarmDescription: !Sub ", $silent, "\n",
            "    Namespace: !Sub \"MgDigitalLeads/${AWS::StackName}\"\n",
            "    MetricName: AcceptedLeads\n",
            "    Dimensions:\n",
            "      - { Name: Source, Value: <slug> }\n",
            "    Statistic: Sum\n",
            "    Period: 3600\n",
            "    EvaluationPeriods: !Ref SilentSourceHours\n",
            "    DatapointsToAlarm: !Ref SilentSourceHours\n",
            "    Threshold: 1\n",
            "    ComparisonOperator: LessThanThreshold\n",
            "    TreatMissingData: breaching\n",
            "    AlarmActions: [!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref ExistingAlarmTopicArn]]\n",
            "    OKActions: [!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref ExistingAlarmTopicArn]]\n",
            count_alarm!("RejectedLeads", "900", "!Ref RejectedLeadsAlarmThreshold", $rejected),
            count_alarm!("KeyRefusals", "900", "!Ref KeyRefusalsAlarmThreshold", $refusals),
            count_alarm!("Misconfigured", "300", "1", $misconfigured),
        )
    };
}

const HEADER_ALARMS: &str = alarms!(
    "<Platform> has sent no lead that was accepted for ${SilentSourceHours} hours; check its integration (URL, key, field names) with the partner",
    "<Platform> leads are being refused after the key passed (400 invalid JSON or missing fields, 413); partners never retry a 4xx, so each is a lost lead (outcome and error in its log)",
    "Many requests on the <Platform> route are refused for their key (401/403); a partner with a dropped or mistyped key, or anonymous traffic (the API access log has the source IPs)",
    "The <Platform> function is misconfigured (database_denied, secret_unavailable or no_keys_configured in its log) and answers 500 or queues its leads (database_denied); was make migrate run, is the key secret a key or a JSON list?"
);

const BODY_ALARMS: &str = alarms!(
    "<Platform> has sent no lead that was accepted for ${SilentSourceHours} hours; check the lead forms' webhook settings (URL, key) in <Product>",
    "<Platform> leads are being refused after the key passed (400 invalid JSON or missing fields, 413); <Platform> does not retry a 4xx, so each is a lost lead (outcome and error in its log; <Product> keeps it 30 days for a CSV download)",
    "Many requests on the <Platform> route are refused for their key (401/403); a lead form whose webhook key is not the one in <Stem>ApiKeySecret, or anonymous traffic (the API access log has the source IPs)",
    "The <Platform> function is misconfigured (database_denied, secret_unavailable or no_keys_configured in its log) and answers 500 or queues its leads (database_denied); was make migrate run, is the key secret a key or a JSON list?"
);

const SIGNED_ALARMS: &str = alarms!(
    "<Platform> has sent no notification of an accepted lead for ${SilentSourceHours} hours; check the page's webhook subscription (leadgen) and the ads (<slug>-sync may still be storing their leads)",
    "<Platform> notifications are being refused after the signature passed (400 invalid JSON, 413); <Platform> does not redeliver them, but <slug>-sync still pulls their leads (outcome and error in its log)",
    "Many notifications on the <Platform> route are refused for their signature (401/403 missing_signature or invalid_signature); the app secret in <Stem>Secret is not the app's (a rotation?), or anonymous traffic (the API access log has the source IPs)",
    "The <Platform> function is misconfigured (database_denied, secret_unavailable, no_keys_configured, or a handshake answered 500, in its log) and answers 500 or queues its leads (database_denied); was make migrate run, is <Stem>Secret filled (app_secrets, page_access_token, page_id)?"
);

const ERRORS_ALARM: &str = r#"# Function errors are crashes and timeouts (handled failures are 500 responses, above).
<Stem>ErrorsAlarm:
  Type: AWS::CloudWatch::Alarm
  Properties:
    AlarmDescription: The <Platform> function failed (crash or timeout)
    Namespace: AWS/Lambda
    MetricName: Errors
    Dimensions:
      - { Name: FunctionName, Value: !Ref <Stem>Function }
    Statistic: Sum
    Period: 300
    EvaluationPeriods: 1
    Threshold: 1
    ComparisonOperator: GreaterThanOrEqualToThreshold
    TreatMissingData: notBreaching
    AlarmActions: [!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref ExistingAlarmTopicArn]]
    OKActions: [!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref ExistingAlarmTopicArn]]
"#;

/// A route's URL: the partner host name's, or the execute-api one with its stage.
macro_rules! endpoint_value {
    () => {
        concat!(
            "  Value: !If\n",
            "    - HasApiDomain\n",
            "    - !Sub https://${ApiDomainName}<route>\n",
            "    - !Sub https://${LeadsRestApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/live<route>\n",
        )
    };
}

const HEADER_OUTPUTS: &str = concat!(
    "<Stem>Endpoint:\n",
    "  Description: <Platform> posts its leads here (header X-API-Key, key in <Stem>ApiKeySecretArn); without ApiDomainName the path carries the stage (/live) and is not the partner's\n",
    endpoint_value!(),
    "<Stem>ApiKeySecretArn:\n",
    "  Description: <Platform>'s key (aws secretsmanager get-secret-value --secret-id <this>)\n",
    "  Value: !Ref <Stem>ApiKeySecret\n",
);

const BODY_OUTPUTS: &str = concat!(
    "<Stem>Endpoint:\n",
    "  Description: The Webhook URL of the <Product> lead forms (key in <Stem>ApiKeySecretArn, typed in as the webhook's Key); without ApiDomainName the path carries the stage (/live)\n",
    endpoint_value!(),
    "<Stem>ApiKeySecretArn:\n",
    "  Description: The <Product> lead forms' webhook key (aws secretsmanager get-secret-value --secret-id <this>)\n",
    "  Value: !Ref <Stem>ApiKeySecret\n",
);

const SIGNED_OUTPUTS: &str = concat!(
    "<Stem>Endpoint:\n",
    "  Description: The Callback URL of the <Platform> app's Webhooks (Page, leadgen), verified with the verify_token in <Stem>SecretName; without ApiDomainName the path carries the stage (/live)\n",
    endpoint_value!(),
    "<Stem>SecretArn:\n",
    "  Description: <Platform>'s secret (app_secrets, generated verify_token, page_access_token, page_id); fill it before subscribing the webhook\n",
    "  Value: !Ref <Stem>Secret\n",
    "<Stem>SecretName:\n",
    "  Description: The name of <Stem>SecretArn (aws secretsmanager get-secret-value --secret-id <this>)\n",
    "  Value: !Sub ${AWS::StackName}/<slug>\n",
);
