# Sourced by the scripts that need Python command-line tools (cargo-lambda, the SAM CLI,
# cfn-lint, moto_server). `python_tools COMMAND=PACKAGE ...` installs the packages whose
# command is not found into the project's own virtual environment, .local/venv, and puts
# its bin/ first on PATH. One way for every script: current Debian and Ubuntu refuse a
# bare `pip install` outside a virtual environment (PEP 668, "externally-managed-environment").

venv_bin="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.local/venv/bin"
case ":$PATH:" in *":$venv_bin:"*) ;; *) export PATH="$venv_bin:$PATH" ;; esac

python_tools() {
    local wanted=() pair
    for pair in "$@"; do
        command -v "${pair%%=*}" >/dev/null 2>&1 || wanted+=("${pair#*=}")
    done
    [ ${#wanted[@]} -gt 0 ] || return 0
    if [ ! -x "$venv_bin/pip" ]; then
        echo "python-tools: creating ${venv_bin%/bin}" >&2
        if ! python3 -m venv "${venv_bin%/bin}" 2>/dev/null; then
            # Debian's python3 ships venv's pip separately.
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
                rm -rf "${venv_bin%/bin}"
                python3 -m venv "${venv_bin%/bin}"
            else
                echo "python-tools: python3 -m venv failed; install python3-venv" >&2
                return 1
            fi
        fi
    fi
    echo "python-tools: pip install ${wanted[*]} (into ${venv_bin%/bin})" >&2
    "$venv_bin/pip" install --quiet "${wanted[@]}"
}
