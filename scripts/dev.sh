#!/usr/bin/env bash
# `make dev`: a database, the migrations, and every source function on its production
# path at http://127.0.0.1:9000 with its development key (Meta: its development app
# secret and tokens). The routes, keys and secrets are the ones the root Cargo.toml
# declares for `cargo lambda watch` (shared/tests/template.rs checks them against
# shared::domain::source::ALL); the list below is read from there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

address=127.0.0.1
port=9000
say() { printf 'dev: %s\n' "$*" >&2; }

. scripts/python-tools.sh
python_tools cargo-lambda=cargo-lambda

if (exec 3<>"/dev/tcp/$address/$port") 2>/dev/null; then
    say "something already listens on $address:$port (another make dev?); stop it first"
    exit 1
fi

# "METHOD PATH FUNCTION PROOF" per route, from the metadata cargo-lambda reads: PROOF is
# key=<development key>, or app-secret=<development app secret> for a signed source.
mapfile -t served < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
config = json.load(sys.stdin)["metadata"]["lambda"]
for path, routes in config["watch"]["router"].items():
    for route in routes:
        name = route["function"]
        env = config.get("bin", {}).get(name, {}).get("env", {})
        if "API_KEYS" in env:
            proof = "key=" + env["API_KEYS"]
        elif "META_APP_SECRETS" in env:
            proof = "app-secret=" + env["META_APP_SECRETS"]
        elif "FEED_API_KEYS" in env:
            proof = "key=" + env["FEED_API_KEYS"]
        else:
            proof = "-"
        print(route["method"], path, name, proof)
')
if [ ${#served[@]} -eq 0 ]; then
    say "no routes in Cargo.toml's [workspace.metadata.lambda.watch.router]"
    exit 1
fi
# Each function once (Meta serves two methods).
functions=()
for line in "${served[@]}"; do
    read -r _ _ name _ <<<"$line"
    case " ${functions[*]} " in *" $name "*) ;; *) functions+=("$name") ;; esac
done
bins=(--bin migrate --bin crm --bin crm-sla)
for name in "${functions[@]}"; do bins+=(--bin "$name"); done

# `cargo lambda watch` starts a function with `cargo run --bin <name>` at the workspace
# root: the dev profile, this environment's target dir, and no `-p`, so the dependencies'
# features are unified over the default members (Cargo.toml). The same `--bin` build leaves it
# nothing to compile (a `-p` build selects other features, and watch would rebuild).
say "building migrate and ${functions[*]}: cargo build ${bins[*]}"
say "a first build compiles every dependency: how long depends on the machine (cargo shows its progress); later ones take seconds"
start=$SECONDS
cargo build "${bins[@]}"
say "built in $((SECONDS - start)) s"

helper=
followers=()
cleanup() {
    if [ -n "$helper" ]; then kill "$helper" 2>/dev/null || true; fi
    for follower in "${followers[@]}"; do kill "$follower" 2>/dev/null || true; done
    if [ -n "${pg_dir:-}" ]; then "$root/scripts/pg.sh" stop "$pg_dir"; fi
}
trap cleanup EXIT
# Ctrl-C (or kill) is how `make dev` is meant to end: the EXIT trap stops what this script
# started, and the exit is a success, so make reports no error.
trap 'exit 0' INT TERM

if [ -z "${DATABASE_URL:-}" ]; then
    pg_dir="$root/.local/pg-dev"
    # Kept between runs so rows stay visible; `make clean-db` throws it away.
    "$root/scripts/pg.sh" stop "$pg_dir" 2>/dev/null || true
    DATABASE_URL=$("$root/scripts/pg.sh" start "$pg_dir")
    export DATABASE_URL
fi
say "applying migrations/ to $DATABASE_URL"
cargo run --quiet --bin migrate || {
    say "migrate failed; a .local/pg-dev from before a change to migrations/ is started afresh by 'make clean-db'"
    exit 1
}

base="http://$address:$port"

# The CRM hand-off: a `crm` database beside the leads' with the CRM's tables
# (local/crm.sql), two CREs and a round-robin rule (local/crm-dev.sql), made once; every
# lead stored is handed off to it, assigned, and its text written to this log, not sent;
# speed to lead runs beside it, its reminders and team leads' texts written there too.
crm_url="${DATABASE_URL%/*}/crm"
if ! psql "$DATABASE_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = 'crm'" | grep -q 1; then
    say "creating the CRM's database $crm_url (local/crm.sql, local/crm-dev.sql)"
    psql -q "$DATABASE_URL" -c 'CREATE DATABASE crm'
    psql -q -v ON_ERROR_STOP=1 "$crm_url" -f local/crm.sql -f local/crm-dev.sql
fi
# Texts go to the log: no AWS is asked for, nor its region looked up.
CRM_DATABASE_URL="$crm_url" CRM_SMS=log AWS_EC2_METADATA_DISABLED=true cargo run --quiet --bin crm -- follow &
followers+=($!)
CRM_DATABASE_URL="$crm_url" CRM_SMS=log AWS_EC2_METADATA_DISABLED=true cargo run --quiet --bin crm-sla -- follow &
followers+=($!)

# Starts each function with a request without a key or body (nothing stored: a partner's
# answered 401; Google's 400, since its key would be in the body it lacks; Meta's handshake
# without its token, 403), so the banner only appears once every function answers at once.
announce() {
    local line method path name key code
    for _ in $(seq 1 600); do
        if (exec 3<>"/dev/tcp/$address/$port") 2>/dev/null; then break; fi
        sleep 0.2
    done
    say "starting each function with a request without a key or body (nothing stored: 401; Google's, whose key goes in the body, 400; Meta's GET, 403; the feed's preflight, 204)"
    for line in "${served[@]}"; do
        read -r method path name key <<<"$line"
        code=$(curl -s -o /dev/null -w '%{http_code} in %{time_total} s' -X "$method" "$base$path") || true
        say "$name: $code"
    done
    {
        echo
        echo "  Database   $DATABASE_URL"
        echo "  Functions  (beside each URL: the development key, sent as X-API-Key, or for Google as"
        echo "             google_key in the body; Meta's app secret, which signs X-Hub-Signature-256)"
        local width=0
        for line in "${served[@]}"; do
            read -r method path name key <<<"$line"
            if [ ${#path} -gt "$width" ]; then width=${#path}; fi
        done
        for line in "${served[@]}"; do
            read -r method path name key <<<"$line"
            printf '             %-4s %-*s  %s\n' "$method" "$((${#base} + width))" "$base$path" "$key"
        done
        cat <<INFO

  Try:  curl -s $base/admin/mg-digital-leads/source/cardekho \\
          -H 'X-API-Key: local-dev-cardekho-key' -H 'Content-Type: application/json' \\
          -d '{"name":"Ravi Kumar","phone_number":"9876543210","car_model":"Tata Nexon EV"}'
        export PATH="$root/.local/venv/bin:\$PATH"   # where cargo lambda and sam are
        cargo lambda invoke --invoke-address $address knowlarity --data-file events/knowlarity/call-webhook.json
        cargo lambda invoke --invoke-address $address google --data-file events/google/lead.json
        curl -s '$base/admin/mg-digital-leads/source/meta?hub.mode=subscribe&hub.verify_token=local-dev-meta-verify-token&hub.challenge=42'
        psql "$DATABASE_URL" -c 'select id, platform, name, phone_number, status from "mg-digital-leads"'
        psql "$crm_url" -c 'select id, full_name, phone_number_normalized, assigned_to, status from leads_master'
        curl -s '$base/admin/mg-digital-leads?limit=5' -H 'X-API-Key: local-dev-feed-key'

  Ready. A change to the code rebuilds and restarts the functions. Ctrl-C stops them and
  the database.

INFO
    }
}
announce &
helper=$!

# Meta's functions read leads from GRAPH_API_URL (the real Graph API when unset, which knows
# no development token): `GRAPH_API_URL=http://127.0.0.1:<port> make dev` points them at a
# stand-in.
env_vars=(--env-var "DATABASE_URL=$DATABASE_URL")
if [ -n "${GRAPH_API_URL:-}" ]; then
    say "Meta's functions read leads from GRAPH_API_URL=$GRAPH_API_URL"
    env_vars+=(--env-var "GRAPH_API_URL=$GRAPH_API_URL")
fi

# In the foreground, so Ctrl-C reaches it; not exec, so the EXIT trap stops the database.
cargo lambda watch -A "$address" -P "$port" "${env_vars[@]}"
