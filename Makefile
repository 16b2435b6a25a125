# Lead ingestion: the everyday commands. See README.md and docs/.
.PHONY: dev test lint unit check-fmt clippy clean-db bench bench-events bench-feed bench-crm bench-sla

# The Python tools the scripts install (cargo-lambda, the SAM CLI, cfn-lint, moto_server)
# live in the project's own virtual environment (scripts/python-tools.sh).
export PATH := $(CURDIR)/.local/venv/bin:$(PATH)
MOTO := bash -c '. scripts/python-tools.sh && python_tools moto_server="moto[server]"'

## Build (progress shown), then serve every source function on http://127.0.0.1:9000 with a
## local database; the routes and development keys are listed once all answer.
dev:
	scripts/dev.sh

## Everything CI runs: formatting, lints, unit and integration tests on a real PostgreSQL.
test: check-fmt clippy
	$(MOTO)
	scripts/with-db.sh cargo test --workspace --locked

check-fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings

## Only the pure unit tests (no database needed).
unit:
	cargo test --workspace --lib --locked

## Throw away the database `make dev` keeps between runs.
clean-db:
	-scripts/pg.sh stop .local/pg-dev
	rm -rf .local/pg-dev .local/pg-dev.initdb.log

## Cold start, warm latency against the durable database floor, peak RSS, binary sizes
## (not part of `test`), on a PostgreSQL of its own that commits durably. Prints the table;
## writes docs/performance.md whole (every figure from the run), with a copy and the
## figures as JSON under .local/bench/. Quick look, leaving the document alone:
## make bench BENCH_ARGS='--cold-runs 3 --warm-runs 3 --warmup 50 --invocations 500 --no-doc'
bench:
	tools/bench/run.sh $(BENCH_ARGS)

## From a lead's arrival to its Lead stored event at a subscriber, and a backlog of 5,000
## events after an EventBridge outage until the outbox is empty (local stand-ins for
## EventBridge and SQS): prints the figures and writes their block of docs/performance.md
## (the block alone; `make bench` keeps it).
bench-events:
	$(MOTO)
	LEAD_EVENTS_PERFORMANCE_DOC=$(CURDIR)/docs/performance.md scripts/with-db.sh \
		cargo test --locked -p shared --test lead_events -- --include-ignored --nocapture \
		--test-threads 1 a_lead_reaches_the_subscriber a_backlog_after_an_outage
## From a Lead stored event to its salesperson's SMS through the CRM hand-off (the CRM's
## database a throwaway cluster of its own, SNS on moto), one container, then two at
## once (not part of `test`): prints the figures and writes their block of
## docs/performance.md (the block alone; `make bench` keeps it).
bench-crm:
	$(MOTO)
	CRM_PERFORMANCE_DOC=$(CURDIR)/docs/performance.md scripts/with-db.sh \
		cargo test --locked -p shared --test crm -- --include-ignored --nocapture bench_the_hand_off

## Speed to lead's run over 5,000 leads the hand-off assigned (not part of `test`): the first
## run and the median of five more, on throwaway clusters; writes its block of
## docs/performance.md.
bench-sla:
	CRM_PERFORMANCE_DOC=$(CURDIR)/docs/performance.md scripts/with-db.sh \
		cargo test --locked -p shared --test crm -- --include-ignored --nocapture bench_the_sla_run

## The leads feed's queries on 100,000 leads (not part of `test`): p50 of the first page,
## a page deep in the walk, a phone lookup and searches, on a database it creates and drops
## (a throwaway cluster when DATABASE_URL is unset). Writes its section of
## docs/performance.md; `make bench` keeps that section. BENCH_FEED_ARGS='--no-doc' leaves
## the document alone.
bench-feed:
	PG_CLUSTER=pg-bench-feed scripts/with-db.sh cargo run --release --locked -p feed-bench -- $(BENCH_FEED_ARGS)

.PHONY: validate migrate replay-dlq template crm-backfill crm-redrive

## Write each source's part of template.yaml (its function, secret, route settings, WAF
## exemption, alarms and outputs) from its declaration in shared/src/domain/source.rs. Run it
## after adding or changing a source; `make test` fails while the template is stale.
template:
	cargo run --quiet --locked -p template


## The deployment checks CI runs: sam validate --lint, cfn-lint, sam build (arm64
## bootstraps in .aws-sam/build). Installs the SAM CLI, cfn-lint, cargo-lambda if missing.
validate:
	scripts/validate.sh

## Apply pending migrations on the deployed stack (invokes MigrateFunction inside the VPC).
## Stack and region: samconfig.toml's, or STACK_NAME=... AWS_REGION=...
migrate:
	scripts/stack.sh migrate

## After fixing what sent leads to the dead-letter queue: move them back to the buffer
## queue for the drain function to store.
replay-dlq:
	scripts/stack.sh replay-dlq

## Hand the leads stored before the CRM hand-off was on to the CRM, by the same rules:
## make crm-backfill FROM=2026-11-01 UNTIL=2026-12-06 (dates in IST, both included;
## AFTER=<lead id> carries on after a lead a stopped run printed).
## Running it again hands nothing off twice and texts nobody twice. docs/crm.md.
crm-backfill:
	scripts/stack.sh crm-backfill "$(FROM)" "$(UNTIL)" "$(AFTER)"

## After fixing what sent leads to the CRM hand-off's dead-letter queue: move them back.
crm-redrive:
	scripts/stack.sh crm-redrive

.PHONY: load

## Ten times the partners' soft limit for a sustained minute through `cargo lambda watch`,
## then checks no 5xx and every accepted lead stored exactly once (not part of `test`).
## Prints the table; writes it and a JSON copy under .local/load/.
load:
	scripts/load.sh $(LOAD_ARGS)

.PHONY: sam-local sam-local-stop test-sam-local

## What `sam local invoke` / `start-api` need (docs/engineering.md, "Local invocation with SAM"): installs
## Docker, qemu and the SAM CLI if missing, starts dockerd, registers qemu for arm64, pulls
## the base image (or builds its stand-in), runs `sam build`, starts PostgreSQL on
## 127.0.0.1:5432 and the docker bridge, and migrates it.
sam-local:
	scripts/sam-local.sh up

## Stop the PostgreSQL (and the dockerd) `make sam-local` started.
sam-local-stop:
	scripts/sam-local.sh down

## Every event file through `sam local` on the `sam build` output, and a request on each
## route through `sam local start-api` (CI runs it after `make validate`).
test-sam-local:
	scripts/sam-local-test.sh
