#!/usr/bin/env bash
# Installs the pinned interop peers (interop/README.md): Node's `ws` from
# package-lock.json into interop/node_modules, Python's `websockets` from
# requirements.txt into interop/.venv, and Debian's Chromium, tinyproxy and
# microsocks (the proxies of the proxy tests). Idempotent and
# quiet; a second run only checks stamps and takes well under a second.
set -euo pipefail
cd "$(dirname "$0")"

say() { echo "interop/install.sh: $*" >&2; }

# Debian packages, with one `apt-get update` for all of them.
missing_packages=()
command -v node >/dev/null || missing_packages+=(nodejs)
command -v npm >/dev/null || missing_packages+=(npm)
command -v python3 >/dev/null || missing_packages+=(python3)
if command -v python3 >/dev/null && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    missing_packages+=(python3-venv)
fi
# fonts-liberation: recommends are skipped below, and a browser with no font
# at all is a needless risk
[ -x /usr/bin/chromium ] || missing_packages+=(chromium fonts-liberation)
# the proxies `tether connect --proxy` is tested through
# (crates/tether-cli/tests/proxy.rs, the adapters' proxy tests): an HTTP
# CONNECT proxy and a SOCKS5 server with username/password
command -v tinyproxy >/dev/null || [ -x /usr/bin/tinyproxy ] || missing_packages+=(tinyproxy)
command -v microsocks >/dev/null || [ -x /usr/bin/microsocks ] || missing_packages+=(microsocks)
if [ ${#missing_packages[@]} -gt 0 ]; then
    say "installing ${missing_packages[*]} with apt-get"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing_packages[@]}" >/dev/null
fi

# Node's ws, exactly as locked. The stamp is a copy of the lockfile.
if ! cmp -s package-lock.json node_modules/.tether-lock 2>/dev/null; then
    say "npm ci (ws)"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
    cp package-lock.json node_modules/.tether-lock
fi

# Python's websockets in a venv. The stamp is a copy of requirements.txt.
if ! cmp -s requirements.txt .venv/.tether-requirements 2>/dev/null \
    || ! .venv/bin/python -c 'import websockets, hypercorn, aioquic' 2>/dev/null; then
    say "pip install -r requirements.txt (websockets, hypercorn, aioquic) into interop/.venv"
    rm -rf .venv
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
    cp requirements.txt .venv/.tether-requirements
fi
