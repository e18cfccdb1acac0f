#!/usr/bin/env bash
# Installs wstest, the Autobahn TestSuite (PyPI `autobahntestsuite`), into
# conformance/.venv, pinned by requirements.txt. The suite runs on Python
# 2.7 only: the interpreter is looked up on PATH, under pyenv, and in
# /usr/bin; virtualenv (the last release that creates 2.7 environments) is
# installed beside it into conformance/.tools. Idempotent: a second run only
# checks a stamp.
set -euo pipefail
cd "$(dirname "$0")"

say() { echo "conformance/install.sh: $*" >&2; }

if cmp -s requirements.txt .venv/.tether-requirements 2>/dev/null \
    && .venv/bin/wstest --help >/dev/null 2>&1; then
    exit 0
fi

py2=""
for candidate in python2.7 "$HOME"/.pyenv/versions/2.7*/bin/python2.7 /usr/local/bin/python2.7 /usr/bin/python2.7; do
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (2, 7)' >/dev/null 2>&1; then
        py2="$candidate"
        break
    fi
done
if [ -z "$py2" ]; then
    say "no Python 2.7 interpreter found (wstest runs on Python 2.7 only);"
    say "install one (e.g. pyenv install 2.7.18) and run this again"
    exit 1
fi
say "installing wstest into conformance/.venv with $py2 (about a minute)"
rm -rf .venv .tools
"$py2" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target .tools "virtualenv==20.15.1" 2>&1 | grep -v DEPRECATION >&2 || true
PYTHONPATH=.tools "$py2" -m virtualenv --quiet .venv
.venv/bin/pip install --quiet --disable-pip-version-check --no-python-version-warning \
    -r requirements.txt 2>&1 | grep -v DEPRECATION >&2 || true
.venv/bin/wstest --help >/dev/null
cp requirements.txt .venv/.tether-requirements
