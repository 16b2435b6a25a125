# Lead ingestion: the everyday commands. See README.md.
.PHONY: dev test lint unit check-fmt clippy clean-db

## Serve all three functions on http://127.0.0.1:9000 with a local database.
dev:
	scripts/dev.sh

## Everything CI runs: formatting, lints, unit and integration tests on a real PostgreSQL.
test: check-fmt clippy
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
