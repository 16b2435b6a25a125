#!/usr/bin/env bash
# `make validate`: what CI checks of the deployment, with no AWS account and no Docker:
#   1. sam validate --lint   the SAM template is valid and lint-clean
#   2. cfn-lint template.yaml
#   3. sam build             every function builds with cargo-lambda for arm64 /
#                            provided.al2023 (artifacts in .aws-sam/build/<Function>/bootstrap)
# Installs aws-sam-cli, cfn-lint and cargo-lambda into .local/venv when they are missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# SAM and cfn-lint need a region even offline; no telemetry from CI.
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-ap-south-1}
export SAM_CLI_TELEMETRY=0

. scripts/python-tools.sh
python_tools sam=aws-sam-cli cfn-lint=cfn-lint cargo-lambda=cargo-lambda
# cargo-lambda cross-compiles with zig (a dependency of the pip package); the Rust
# standard library for the target comes from rustup.
if command -v rustup >/dev/null 2>&1; then
    rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
fi

step() { printf '\nvalidate: %s\n' "$*" >&2; }

step "sam validate --lint"
sam validate --lint --template-file template.yaml

step "cfn-lint template.yaml"
cfn-lint template.yaml

step "sam build (cargo-lambda, arm64, release)"
start=$(date +%s)
sam build --template-file template.yaml
echo "validate: sam build took $(( $(date +%s) - start )) s" >&2

# Every function of the template has its bootstrap, an arm64 (aarch64) ELF executable.
status=0
for dir in .aws-sam/build/*Function; do
    bootstrap="$dir/bootstrap"
    # ELF magic, then e_machine at offset 18: 0xb7 0x00 is EM_AARCH64.
    if [ -x "$bootstrap" ] && [ "$(od -An -tx1 -j0 -N4 "$bootstrap" | tr -d ' ')" = 7f454c46 ] \
        && [ "$(od -An -tx1 -j18 -N2 "$bootstrap" | tr -d ' ')" = b700 ]; then
        printf 'validate: %-28s %8d bytes, arm64\n' "$bootstrap" "$(wc -c <"$bootstrap")" >&2
    else
        echo "validate: $bootstrap is missing or not an arm64 executable" >&2
        status=1
    fi
done
expected=$(grep -c 'Type: AWS::Serverless::Function$' template.yaml)
built=$(find .aws-sam/build -name bootstrap | wc -l)
if [ "$built" -ne "$expected" ]; then
    echo "validate: $built bootstraps built for $expected functions in template.yaml" >&2
    status=1
fi
exit "$status"
