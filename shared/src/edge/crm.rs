//! The CRM hand-off's edge. On Lambda: batches of the hand-off's queue (the `Lead
//! stored` events a rule sends it) to the hand-off, the messages it could not hand off
//! back to Lambda, to come again after the queue's visibility timeout; and a direct
//! invocation `{"backfill": {"from": …, "until": …, "after": …}}` to one pass of a
//! backfill, bounded by the invocation's deadline. Run by hand: `crm backfill --from …
//! --until …` goes through the span with its progress shown, `crm follow` hands off
//! each lead as it is stored (`make dev`).

use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::SqsEvent;
use futures_util::future::LocalBoxFuture;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::domain::lead::record;
use crate::domain::listing;
use crate::pipeline::crm::{Backfilled, Handoff, Span};

/// Kept back from an invocation's deadline for its answer.
const RESERVE: Duration = Duration::from_secs(2);

/// How often `crm follow` looks for new leads.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// Serves the hand-off on Lambda, or runs what `args` ask for by hand.
pub fn serve<'a>(
    handoff: &'a Handoff,
    args: &'a [String],
) -> LocalBoxFuture<'a, Result<(), lambda_runtime::Error>> {
    Box::pin(serve_unboxed(handoff, args))
}

async fn serve_unboxed(handoff: &Handoff, args: &[String]) -> Result<(), lambda_runtime::Error> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return by_hand(handoff, args).await;
    }
    tracing::info!("CRM hand-off ready");
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        if event.payload.get("Records").is_some() {
            let batch: SqsEvent = serde_json::from_value(event.payload)?;
            return Ok::<_, lambda_runtime::Error>(serde_json::to_value(
                handoff.handle(batch).await,
            )?);
        }
        let Some(request) = event.payload.get("backfill") else {
            return Err("neither a batch of the hand-off's queue nor {\"backfill\": …}".into());
        };
        let text = |name: &str| request.get(name).and_then(Value::as_str).map(str::to_owned);
        let span = span(text("from").as_deref(), text("until").as_deref())?;
        let left = record::from_unix_ms(event.context.deadline)
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .saturating_sub(RESERVE);
        let report = handoff
            .backfill(span, text("after"), Instant::now() + left)
            .await?;
        tracing::info!(?report, "CRM backfill pass");
        Ok(serde_json::to_value(report)?)
    }))
    .await
}

/// A backfill's span from its two dates (as the leads feed reads `fromDate` and
/// `toDate`: a date is a whole day, IST unless an offset is given).
pub fn span(from: Option<&str>, until: Option<&str>) -> Result<Span, lambda_runtime::Error> {
    let from = from.ok_or("a backfill needs from (a date or date-time)")?;
    let until = until.ok_or("a backfill needs until (a date or date-time)")?;
    let from_ms = listing::moment("from", from, false)? / 1000;
    let until_ms = listing::moment("until", until, true)? / 1000;
    if from_ms >= until_ms {
        return Err("from is after until".into());
    }
    Ok(Span { from_ms, until_ms })
}

async fn by_hand(handoff: &Handoff, args: &[String]) -> Result<(), lambda_runtime::Error> {
    let value = |name: &str| {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|at| args.get(at + 1))
            .map(String::as_str)
    };
    match args.first().map(String::as_str) {
        Some("backfill") => {
            let span = span(value("--from"), value("--until"))?;
            let mut last = value("--after").map(str::to_owned);
            let mut total = Backfilled::default();
            loop {
                let pass = handoff
                    .backfill(span, last.clone(), Instant::now() + Duration::from_secs(10))
                    .await?;
                total.handed_off += pass.handed_off;
                total.refused += pass.refused;
                last = pass.last.clone();
                eprintln!(
                    "crm backfill: {} handed off, {} refused, up to lead {}",
                    total.handed_off,
                    total.refused,
                    last.as_deref().unwrap_or("-")
                );
                if pass.done {
                    return Ok(());
                }
            }
        }
        Some("follow") => {
            // From the leads stored in the last day: those of a `make dev` just started.
            let now = record::unix_ms(SystemTime::now()) as i64;
            const DAY_MS: i64 = 86_400_000;
            let span = Span {
                from_ms: now - DAY_MS,
                until_ms: now + 3650 * DAY_MS,
            };
            tracing::info!("CRM hand-off following the lead table");
            let mut last = None;
            loop {
                match handoff
                    .backfill(span, last.clone(), Instant::now() + FOLLOW_EVERY)
                    .await
                {
                    Ok(pass) => last = pass.last.or(last),
                    Err(error) => tracing::error!(error = %error, "hand-off failed; trying again"),
                }
                tokio::time::sleep(FOLLOW_EVERY).await;
            }
        }
        _ => Err("run by hand: crm backfill --from <date> --until <date> [--after <lead id>], or crm follow".into()),
    }
}
