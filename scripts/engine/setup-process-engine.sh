#!/usr/bin/env bash
# Prepares this host for the portal's sandboxed local-process engine (bubblewrap + jupyter-server):
#
#   scripts/engine/setup-process-engine.sh [VENV]      # default VENV=/opt/portal/jupyter-venv
#
# - apt-installs bubblewrap, python3-venv and util-linux (setpriv) when missing;
# - creates VENV with the same Python packages as the container image
#   (images/portal-jupyter/requirements.txt), using Debian's /usr/bin/python3 so that it works
#   inside a sandbox that only sees /usr (never a pyenv/conda interpreter from the host);
# - skips the pip step when VENV already matches the requirements (stamp file VENV/.portal-stamp).
# Idempotent and non-interactive. Prints VENV as its last line.
# See docs/ENGINES.md and scripts/engine/sandbox-example.sh for the bwrap invocation.
set -euo pipefail

VENV=${1:-/opt/portal/jupyter-venv}
HERE=$(cd "$(dirname "$0")/../../images/portal-jupyter" && pwd)
REQ=$HERE/requirements.txt
PY=/usr/bin/python3

log() { echo "setup-process-engine.sh: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }
umask 022                                # the sandbox user must be able to read the venv

PACKAGES=(bubblewrap python3 python3-venv util-linux ca-certificates)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then apt-get update -qq; fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

STAMP="$VENV/.portal-stamp"
want=$( (cat "$REQ"; "$PY" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-16)
# Same Jupyter defaults as the image: no extension manager (students cannot pip-install
# JupyterLab extensions through the UI), no update checks, no news fetching. Cheap: every run.
install_config() {
    mkdir -p "$VENV/etc/jupyter/labconfig"
    install -m 644 "$HERE/jupyter_server_config.json" "$VENV/etc/jupyter/jupyter_server_config.json"
    install -m 644 "$HERE/page_config.json" "$VENV/etc/jupyter/labconfig/page_config.json"
}
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] &&
   "$VENV/bin/python" -c 'import jupyter_server, jupyterlab, ipykernel, jupyter_server_proxy' 2>/dev/null; then
    install_config
    log "$VENV is up to date"
    echo "$VENV"; exit 0
fi

log "creating $VENV"
start=$(date +%s)
# Built in place (venv scripts embed their path); the stamp is written last, so an interrupted run
# is redone from scratch next time.
if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ] && [ -n "$(ls -A "$VENV" 2>/dev/null)" ]; then
    log "$VENV exists and is not a Python venv; refusing to replace it"; exit 1
fi
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
env -u PIP_FIND_LINKS PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    "$VENV/bin/pip" install -q --no-cache-dir -r "$REQ"
"$VENV/bin/python" -m compileall -q "$VENV/lib" >/dev/null 2>&1 || true
install_config
chmod -R a+rX "$VENV"
echo "$want" > "$STAMP"
"$VENV/bin/python" -c 'import jupyter_server, jupyterlab, ipykernel, jupyter_server_proxy; print("jupyter-server", jupyter_server.__version__)' >&2
log "created $VENV in $(( $(date +%s) - start )) s"
echo "$VENV"
