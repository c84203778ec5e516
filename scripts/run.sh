#!/usr/bin/env bash
# The run command (README "Run it"): on a fresh Debian 12 machine, as root, installs what is
# missing (PostgreSQL's server programs, bubblewrap and a jupyter-server virtualenv for the
# sandboxed process engine), builds the portal
# and runs it on embedded defaults (its own PostgreSQL under /var/lib/portal), printing a demo
# consumer and how to launch. Ctrl-C stops the portal and its
# database cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: run as root (it installs packages and runs the database as an unprivileged system user)" >&2
    exit 1
fi
if ! command -v swift >/dev/null; then
    echo "run.sh: the Swift 6 toolchain is required and is not packaged by Debian 12." >&2
    echo "        Install it from swift.org (or use a machine that has it), then run this again." >&2
    exit 1
fi
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v runuser >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
    echo "run.sh: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "run.sh: setting up the process engine (bubblewrap and a jupyter-server virtualenv)"
scripts/engine/setup-process-engine.sh >/dev/null

echo "run.sh: building (release; the first build takes several minutes)"
swift build -c release --product portal
PORTAL=$(swift build -c release --show-bin-path)/portal

export PORTAL_DATA_DIR=${PORTAL_DATA_DIR:-/var/lib/portal}
CONFIG=${PORTAL_CONFIG:-examples/portal.yaml}
mkdir -p "$PORTAL_DATA_DIR"
PUBLIC_URL=${PORTAL_PUBLIC_URL:-http://127.0.0.1:8080}
"$PORTAL" launch-link --config "$CONFIG" --key demo > "$PORTAL_DATA_DIR/demo-launch.html"

cat <<INFO

  Course environment portal — $PUBLIC_URL
  ----------------------------------------------------------------------------
  Demo LTI 1.1 consumer (configure it in your VLE as an external tool):
    Launch URL    $PUBLIC_URL/lti/launch
    Consumer key  demo
    Secret        demo-secret
  Try a launch without a VLE: open $PORTAL_DATA_DIR/demo-launch.html in a
  browser on this machine within 5 minutes (it works once), or make a new one:
    $PORTAL launch-link --config $CONFIG --key demo --roles Instructor > launch.html
  Data (and the embedded PostgreSQL) live in $PORTAL_DATA_DIR. Ctrl-C stops.

INFO
exec "$PORTAL" serve --config "$CONFIG"
