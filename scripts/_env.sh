# Shared by scripts/demo and scripts/test: make (once) and activate the project's venv.
# Usage: source scripts/_env.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${STARDAG_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV and installing stardag with its dev tools..." >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
fi
stamp="$VENV/.stardag-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]" >&2
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
