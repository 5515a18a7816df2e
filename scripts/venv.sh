# shellcheck shell=bash
# Sourced by scripts/test and scripts/run-local: make sure $VENV exists and holds
# requirements-dev.txt, reinstalling whenever the requirements change (a stamp of their hash).
# Uses VENV (default .venv under the repository) and PYTHON (default python3).
ensure_venv() {
  local root venv python stamp wanted
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  venv=${VENV:-$root/.venv}
  python=${PYTHON:-python3}
  if [ ! -x "$venv/bin/python" ]; then
    printf '[setup] creating %s with %s (first run; a minute or two)\n' "$venv" "$($python --version)" >&2
    "$python" -m venv "$venv"
  fi
  stamp="$venv/.requirements.sha256"
  wanted=$(cd "$root" && cat requirements.txt requirements-dev.txt lib/pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    printf '[setup] installing requirements-dev.txt into %s\n' "$venv" >&2
    (cd "$root" && "$venv/bin/python" -m pip install --quiet --upgrade pip \
      && "$venv/bin/python" -m pip install --quiet -r requirements-dev.txt)
    echo "$wanted" >"$stamp"
  fi
  VENV=$venv
}
