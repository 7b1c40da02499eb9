#!/usr/bin/env bash
# Run the root-span tests against the oldest supported discord.py (2.4.0) in a throwaway venv.
#
#   scripts/check_oldest_discordpy.sh            # discord.py 2.4.0
#   DISCORD_PY_VERSION=2.5.2 scripts/check_oldest_discordpy.sh
#   KEEP_VENV=1 scripts/check_oldest_discordpy.sh   # keep the venv (path printed) for reruns
#
# Not part of CI (CI runs the newest discord.py); run it before a release or when touching the
# patch targets. Needs network access to the package index. Exits with pytest's status.
set -euo pipefail

VERSION="${DISCORD_PY_VERSION:-2.4.0}"
PYTHON="${PYTHON:-python3.11}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OLDEST_VENV:-$(mktemp -d -t otel-bot-dpy-XXXXXX)}"

cleanup() {
    if [[ -z "${KEEP_VENV:-}" && -z "${OLDEST_VENV:-}" ]]; then
        rm -rf "$VENV"
    else
        echo "venv kept at $VENV"
    fi
}
trap cleanup EXIT

if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
fi
# The package's dependencies and test extras (read from pyproject.toml), with the old discord.py.
# The package itself is imported from the tree (PYTHONPATH), so nothing is built or written there.
mapfile -t DEPS < <("$VENV/bin/python" - "$ROOT/pyproject.toml" <<'PY'
import re, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras = project.get("optional-dependencies", {})
seen, out = set(), []
def add(reqs):
    for req in reqs:
        m = re.match(r"^otel-bot\[(.*)\]$", req.replace(" ", ""))
        if m:
            for extra in m.group(1).split(","):
                if extra not in seen:
                    seen.add(extra)
                    add(extras.get(extra, []))
        elif not req.lower().startswith("discord.py"):
            out.append(req)
add(project["dependencies"])
add(extras.get("test", []))
print("\n".join(out))
PY
)
"$VENV/bin/pip" install -q "discord.py==$VERSION" "${DEPS[@]}"
"$VENV/bin/python" -c "import discord; print('discord.py', discord.__version__)"

TESTS=(
    tests/test_instrument.py
    tests/test_interactions.py
    tests/test_components.py
    tests/test_commands.py
    tests/test_events.py
)
cd "$ROOT"
# -p no:cacheprovider: do not write .pytest_cache into the shared tree from the other venv.
# The zero-code test needs the package installed (entry point); it runs in the main venv.
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${TESTS[@]}" -k "not opentelemetry_instrument" "$@"
