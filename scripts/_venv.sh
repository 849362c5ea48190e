# Sourced by scripts/start and scripts/test: make .venv and install plancast into it.
# Usage: ensure_venv EXTRAS   (e.g. "server" or "server,test")
set -euo pipefail

PLANCAST_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PLANCAST_VENV:-$PLANCAST_ROOT/.venv}"

ensure_venv() {
    local extras="$1"
    local stamp="$VENV/.plancast-installed-$extras"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "plancast: creating a virtualenv in $VENV" >&2
        python3 -m venv "$VENV"
    fi
    if [ ! -f "$stamp" ] \
        || [ "$PLANCAST_ROOT/pyproject.toml" -nt "$stamp" ] \
        || [ "$PLANCAST_ROOT/requirements/constraints.txt" -nt "$stamp" ]; then
        echo "plancast: installing plancast[$extras] and its dependencies" >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            -c "$PLANCAST_ROOT/requirements/constraints.txt" -e "$PLANCAST_ROOT[$extras]"
        touch "$stamp"
    fi
}
