#!/usr/bin/env bash
# Operations on the deployed stack (docs/operations.md, section Deploy):
#   scripts/stack.sh migrate      apply pending migrations: invoke MigrateFunction with {}
#   scripts/stack.sh replay-dlq   move every lead in the dead-letter queue back to the
#                                 buffer queue, for the drain to store (after fixing the cause)
#   scripts/stack.sh crm-backfill FROM UNTIL [AFTER]
#                                 hand the leads stored from FROM until UNTIL (dates, IST),
#                                 after the lead AFTER if given,
#                                 to the CRM: CrmFunction invoked pass after pass, progress shown
#   scripts/stack.sh crm-redrive  move the CRM hand-off's dead-letter queue back to its queue
# The stack and region are samconfig.toml's unless STACK_NAME / AWS_REGION are set.
# Needs AWS credentials, the SAM CLI (migrate) and the AWS CLI (replay-dlq).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

from_samconfig() { sed -n "s/^$1 *= *\"\(.*\)\"/\1/p" samconfig.toml | head -n1; }
stack=${STACK_NAME:-$(from_samconfig stack_name)}
region=${AWS_REGION:-$(from_samconfig region)}
export SAM_CLI_TELEMETRY=${SAM_CLI_TELEMETRY:-0}

output() {
    aws cloudformation describe-stacks --region "$region" --stack-name "$stack" \
        --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

case "${1:-}" in
migrate)
    echo "migrate: invoking MigrateFunction of stack $stack ($region)" >&2
    # One attempt: a retried invoke would only wait for the first one's migration lock.
    # The answer is {"applied":[<every migration version now applied>]}.
    response=$(AWS_MAX_ATTEMPTS=1 sam remote invoke MigrateFunction \
        --stack-name "$stack" --region "$region" --event '{}' --output json)
    printf '%s' "$response" | python3 -c '
import json, sys
response = json.load(sys.stdin)
print(response.get("Payload", ""))
error = response.get("FunctionError")
if error:
    sys.exit("migrate: failed (%s); see the log group /aws/lambda/%s-migrate" % (error, sys.argv[1]))
' "$stack"
    ;;
replay-dlq)
    dlq_arn=$(output DeadLetterQueueArn)
    dlq_url=$(output DeadLetterQueueUrl)
    queue_arn=$(output BufferQueueArn)
    if [ -z "$dlq_arn" ] || [ "$dlq_arn" = None ] || [ -z "$queue_arn" ] || [ "$queue_arn" = None ]; then
        echo "replay-dlq: stack $stack ($region) has no DeadLetterQueueArn/BufferQueueArn outputs" >&2
        exit 1
    fi
    waiting=$(aws sqs get-queue-attributes --region "$region" --queue-url "$dlq_url" \
        --attribute-names ApproximateNumberOfMessages \
        --query Attributes.ApproximateNumberOfMessages --output text)
    echo "replay-dlq: moving ~$waiting lead(s) from $dlq_arn to $queue_arn" >&2
    aws sqs start-message-move-task --region "$region" \
        --source-arn "$dlq_arn" --destination-arn "$queue_arn"
    echo "replay-dlq: progress: aws sqs list-message-move-tasks --region $region --source-arn $dlq_arn" >&2
    ;;
crm-backfill)
    from=${2:?usage: scripts/stack.sh crm-backfill FROM UNTIL (dates, e.g. 2026-11-01 2026-12-06)}
    until=${3:?usage: scripts/stack.sh crm-backfill FROM UNTIL}
    # A run stopped part-way carries on after the last lead it printed.
    after=${4:-}
    total=0
    echo "crm-backfill: the leads stored from $from until $until, to the CRM (stack $stack, $region)" >&2
    while :; do
        event=$(python3 -c 'import json, sys; print(json.dumps({"backfill": {"from": sys.argv[1], "until": sys.argv[2], **({"after": sys.argv[3]} if sys.argv[3] else {})}}))' "$from" "$until" "$after")
        response=$(AWS_MAX_ATTEMPTS=1 sam remote invoke CrmFunction \
            --stack-name "$stack" --region "$region" --event "$event" --output json)
        read -r handed refused last done < <(printf '%s' "$response" | python3 -c '
import json, sys
response = json.load(sys.stdin)
if response.get("FunctionError"):
    sys.exit("crm-backfill: failed (%s): %s" % (response["FunctionError"], response.get("Payload", "")))
report = json.loads(response["Payload"])
print(report["handed_off"], report["refused"], report.get("last") or "-", "yes" if report["done"] else "no")
')
        total=$((total + handed))
        [ "$last" != - ] && after=$last
        echo "crm-backfill: $total handed off so far ($refused refused in this pass), up to lead ${after:-none}" >&2
        [ "$done" = yes ] && break
    done
    echo "crm-backfill: done; running it again hands nothing off twice and texts nobody twice" >&2
    ;;
crm-redrive)
    dlq_url=$(output CrmDeadLetterQueueUrl)
    if [ -z "$dlq_url" ] || [ "$dlq_url" = None ]; then
        echo "crm-redrive: stack $stack ($region) has no CrmDeadLetterQueueUrl output (is CrmSecretArn set?)" >&2
        exit 1
    fi
    dlq_arn=$(aws sqs get-queue-attributes --region "$region" --queue-url "$dlq_url" \
        --attribute-names QueueArn --query Attributes.QueueArn --output text)
    queue_arn=$(output CrmQueueArn)
    echo "crm-redrive: moving $dlq_arn's leads back to $queue_arn" >&2
    # The destination named: some came from the rule or the function, not a redrive.
    aws sqs start-message-move-task --region "$region" --source-arn "$dlq_arn" --destination-arn "$queue_arn"
    echo "crm-redrive: progress: aws sqs list-message-move-tasks --region $region --source-arn $dlq_arn" >&2
    ;;
*)
    echo "usage: scripts/stack.sh migrate|replay-dlq|crm-backfill FROM UNTIL|crm-redrive" >&2
    exit 2
    ;;
esac
