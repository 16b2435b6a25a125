#!/usr/bin/env bash
# `make sam-local`: what `sam local invoke` and `sam local start-api` need on a machine with
# no Docker engine running, installed from the package registries only (Debian, PyPI).
#
#   scripts/sam-local.sh up       engine, then `sam build`, a PostgreSQL the containers reach
#                                 (127.0.0.1:5432 and the docker bridge, database `leads`),
#                                 the migrations (through MigrateFunction), and how to use it
#   scripts/sam-local.sh engine   only the engine: packages, dockerd, qemu for arm64, base image
#   scripts/sam-local.sh down     stop the PostgreSQL and the dockerd `up` started (by PID)
#   scripts/sam-local.sh bridge   print the docker bridge's address/prefix (172.17.0.1/16)
#
# The engine part:
# - dockerd, started in the background when none answers (no systemd here); its PID goes to
#   .local/sam-local/dockerd.pid. It listens on its unix socket only.
# - qemu-aarch64 registered with binfmt_misc by hand, so the arm64 bootstraps run on x86_64.
# - The functions' base image, public.ecr.aws/lambda/provided:al2023-arm64: pulled when the
#   registry answers; otherwise a stand-in with that tag is built FROM scratch out of
#   Debian's arm64 packages (docs/engineering.md, "Local invocation with SAM", says what differs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/python-tools.sh

state="$root/.local/sam-local"
image=public.ecr.aws/lambda/provided:al2023-arm64
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-ap-south-1}
export SAM_CLI_TELEMETRY=0

mkdir -p "$state"
say() { printf 'sam-local: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        die "needs root for: $*"
    fi
}

install_packages() {
    local apt=()
    command -v dockerd >/dev/null 2>&1 || apt+=(docker.io)
    [ -x /usr/bin/qemu-aarch64-static ] || apt+=(qemu-user-static)
    command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
        || apt+=(postgresql)
    command -v psql >/dev/null 2>&1 || apt+=(postgresql-client)
    command -v curl >/dev/null 2>&1 || apt+=(curl)
    command -v ip >/dev/null 2>&1 || apt+=(iproute2)
    command -v readelf >/dev/null 2>&1 || apt+=(binutils)
    if [ ${#apt[@]} -gt 0 ]; then
        say "apt-get install ${apt[*]}"
        as_root apt-get update -qq
        # No binfmt-support: it would register qemu through systemd; registration is done below.
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${apt[@]}" >/dev/null
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --no-create-home postgres
    fi
    python_tools sam=aws-sam-cli cargo-lambda=cargo-lambda
    if command -v rustup >/dev/null 2>&1; then
        rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
    fi
}

start_docker() {
    if docker info >/dev/null 2>&1; then
        return
    fi
    mkdir -p "$state"
    say "starting dockerd (log: $state/dockerd.log)"
    # setsid: the engine outlives this script (it serves the engineer's session) and is
    # stopped by `make sam-local-stop` through its PID file.
    # No userland proxy: it accepts a connection on a published port before anything in
    # the container listens, so SAM, which waits for the port to accept, would send the
    # event before the emulator (slow to start under qemu) is up, and get no answer.
    as_root setsid dockerd --host=unix:///var/run/docker.sock --pidfile="$state/dockerd.pid" \
        --userland-proxy=false \
        >"$state/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && return
        sleep 1
    done
    tail -20 "$state/dockerd.log" >&2
    die "dockerd did not answer within 60 s"
}

register_qemu() {
    local binfmt=/proc/sys/fs/binfmt_misc
    if [ ! -e "$binfmt/register" ]; then
        as_root mount -t binfmt_misc binfmt_misc "$binfmt"
    fi
    if [ ! -e "$binfmt/qemu-aarch64" ]; then
        # Debian's own entry; its F flag opens the interpreter now, so it also works
        # inside containers, which do not see the host's /usr/bin.
        as_root sh -c "cat /usr/lib/binfmt.d/qemu-aarch64.conf > $binfmt/register"
    fi
}

# The stand-in: busybox for a shell and the commands SAM's image build runs, glibc, libgcc
# and the CA certificates, all Debian bookworm arm64, under the real image's tag.
build_stand_in() {
    local work="$state/stand-in"
    local apt_dir="$work/apt"
    rm -rf "$work"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/etc/preferences.d" \
        "$apt_dir/etc/apt.conf.d" "$work/debs" "$work/rootfs"
    # Debian's own sources only (the host may list others for its architecture alone).
    mkdir -p "$apt_dir/etc/sources"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        cp /etc/apt/sources.list.d/debian.sources "$apt_dir/etc/sources/"
    else
        grep -h '^deb .*debian' /etc/apt/sources.list >"$apt_dir/etc/sources/debian.list"
    fi
    local sources=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt_dir/etc/sources")
    # Its own state, lists and cache: the host's architectures and package lists stay as
    # they are.
    local opts=(-o "APT::Architecture=arm64" -o "APT::Architectures::=arm64"
        -o "Dir::State=$apt_dir" -o "Dir::State::Lists=$apt_dir/lists"
        -o "Dir::State::status=/dev/null" -o "Dir::Cache=$apt_dir/cache"
        -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
        -o "Dir::Etc::Parts=$apt_dir/etc/apt.conf.d" "${sources[@]}" -o "Debug::NoLocking=1")
    say "stand-in image: apt-get download (arm64) busybox-static libc6 libgcc-s1 ca-certificates"
    apt-get "${opts[@]}" update -qq
    (cd "$work/debs" && apt-get "${opts[@]}" -o APT::Sandbox::User=root -qq \
        download busybox-static libc6 libgcc-s1 ca-certificates)
    for deb in "$work"/debs/*.deb; do
        dpkg-deb -x "$deb" "$work/rootfs"
    done
    local fs="$work/rootfs"
    mkdir -p "$fs/bin" "$fs/tmp" "$fs/var/task" "$fs/var/runtime" "$fs/opt" "$fs/etc/pki/tls/certs" \
        "$fs/etc/ssl/certs"
    chmod 1777 "$fs/tmp"
    # Every busybox applet as a command (sh, mv, chmod, ... for SAM's image build).
    local applet
    for applet in $(/usr/bin/qemu-aarch64-static "$fs/bin/busybox" --list); do
        [ -e "$fs/bin/$applet" ] || ln -s busybox "$fs/bin/$applet"
    done
    # One PEM bundle, where Debian and Amazon Linux keep it.
    cat "$fs"/usr/share/ca-certificates/mozilla/*.crt >"$fs/etc/ssl/certs/ca-certificates.crt"
    ln -sf /etc/ssl/certs/ca-certificates.crt "$fs/etc/pki/tls/certs/ca-bundle.crt"
    echo "root:x:0:0:root:/root:/bin/sh" >"$fs/etc/passwd"
    echo "root:x:0:" >"$fs/etc/group"
    # The real image's environment and working directory.
    cat >"$work/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin \
    LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib \
    LAMBDA_TASK_ROOT=/var/task \
    LAMBDA_RUNTIME_DIR=/var/runtime \
    LANG=en_US.UTF-8 \
    TZ=:/etc/localtime
WORKDIR /var/task
LABEL org.opencontainers.image.description="Stand-in for provided:al2023-arm64 built from Debian bookworm arm64 packages"
EOF
    DOCKER_BUILDKIT=0 docker build --platform linux/arm64 -t "$image" "$work" >"$state/stand-in.log" 2>&1 \
        || { tail -20 "$state/stand-in.log" >&2; die "building the stand-in failed (log: $state/stand-in.log)"; }
    rm -rf "$work"
}

ensure_image() {
    if docker image inspect "$image" >/dev/null 2>&1; then
        if [ -n "$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.description"}}' "$image")" ]; then
            say "base image: $image is the Debian stand-in (the registry was not reachable when it was built)"
        else
            say "base image: $image, the real one"
        fi
        return
    fi
    say "pulling $image"
    if timeout 600 docker pull --quiet --platform linux/arm64 "$image" >/dev/null 2>&1; then
        say "base image: $image, the real one (pulled)"
        return
    fi
    say "$image cannot be pulled here; building a stand-in with that tag from Debian's arm64 packages"
    build_stand_in
    say "base image: $image is the Debian stand-in (docs/engineering.md, \"Local invocation with SAM\")"
}

engine() {
    install_packages
    start_docker
    register_qemu
    ensure_image
}

pg_dir="$state/pg"

bridge() {
    # The docker bridge's address with its prefix, e.g. 172.17.0.1/16.
    ip -4 -o addr show docker0 | awk '{print $4}' | head -1
}

up() {
    local started
    started=$(date +%s)
    engine
    # Before the long build: a system PostgreSQL (installing the postgresql package starts
    # one) holds the port local/env.example.json names.
    if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && [ ! -f "$pg_dir/postmaster.pid" ]; then
        die "something already listens on 127.0.0.1:5432, where local/env.example.json expects this PostgreSQL; a system one (the postgresql package's) stops with: service postgresql stop"
    fi
    say "sam build"
    sam build --template-file template.yaml >"$state/sam-build.log" 2>&1 \
        || { tail -30 "$state/sam-build.log" >&2; die "sam build failed (log: $state/sam-build.log)"; }
    if [ ! -f "$pg_dir/postmaster.pid" ]; then
        say "starting PostgreSQL on 127.0.0.1:5432 and $(bridge) (data: $pg_dir)"
        PG_PORT=5432 PG_BRIDGE=$(bridge) "$root/scripts/pg.sh" start "$pg_dir" >/dev/null
    fi
    psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'leads'" \
        | grep -q 1 || psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE leads'
    say "applying migrations/: sam local invoke MigrateFunction"
    sam local invoke MigrateFunction --env-vars local/env.example.json \
        --add-host host.docker.internal:host-gateway --skip-pull-image >"$state/migrate.log" 2>&1 \
        || { tail -30 "$state/migrate.log" >&2; die "migrations failed (log: $state/migrate.log)"; }
    grep -q '"applied"' "$state/migrate.log" || { tail -30 "$state/migrate.log" >&2; die "migrations failed"; }
    say "ready in $(( $(date +%s) - started )) s"
    cat <<'EOF'

Ready. In this directory (docs/engineering.md, "Local invocation with SAM"):

  sam build
  sam local invoke KnowlarityFunction -e events/knowlarity/call-webhook.json \
      --env-vars local/env.example.json --add-host host.docker.internal:host-gateway --skip-pull-image

  sam local start-api --env-vars local/env.example.json \
      --add-host host.docker.internal:host-gateway --skip-pull-image
  curl -s -X POST http://127.0.0.1:3000/admin/mg-digital-leads/source/cardekho \
      -H 'X-API-Key: local-dev-cardekho-key' -H 'Content-Type: application/json' \
      -d '{"name":"Ravi Kumar","phone_number":"9876543210"}'

  psql postgres://postgres@127.0.0.1:5432/leads -c 'select id, platform, name from "mg-digital-leads"'

Stop the database (and the Docker engine, if this started it): make sam-local-stop
EOF
}

down() {
    if [ -f "$pg_dir/postmaster.pid" ]; then
        say "stopping PostgreSQL ($pg_dir)"
        "$root/scripts/pg.sh" stop "$pg_dir"
    fi
    if [ -f "$state/dockerd.pid" ]; then
        local pid
        pid=$(cat "$state/dockerd.pid")
        if kill -0 "$pid" 2>/dev/null; then
            say "stopping dockerd (PID $pid)"
            as_root kill "$pid"
            for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        fi
        rm -f "$state/dockerd.pid"
    fi
}

case "${1:-up}" in
up) up ;;
engine) engine ;;
bridge) bridge ;;
down) down ;;
*) die "usage: sam-local.sh up|engine|down|bridge" ;;
esac
