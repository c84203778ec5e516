# Shared steps of the images' mmdebstrap customize hooks (images/*/customize-hook.sh source this
# after setting ROOT, the root filesystem, and HERE, the image's directory).
#
# Only the pip step needs the host's CA bundle (outbound TLS may go through an intercepting proxy
# whose CA is trusted by the host only). It is copied in under /tmp for that step and removed right
# after; the images keep Debian's own /etc/ssl/certs bundle (from ca-certificates, Mozilla roots).

in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 HOME=/root PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$@"; }

remove_build_inputs() {
    rm -f "$ROOT/tmp/host-ca.crt" "$ROOT/tmp/requirements.txt"
}

# /opt/venv with the image's requirements.txt from PyPI; what was installed in portal-freeze.txt.
python_venv() {
    trap remove_build_inputs EXIT
    cp "$HERE/requirements.txt" "$ROOT/tmp/requirements.txt"
    if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
        cp /etc/ssl/certs/ca-certificates.crt "$ROOT/tmp/host-ca.crt"
    else
        cp "$ROOT/etc/ssl/certs/ca-certificates.crt" "$ROOT/tmp/host-ca.crt"
    fi
    in_root python3 -m venv /opt/venv
    in_root /opt/venv/bin/pip install -q --no-cache-dir --cert /tmp/host-ca.crt -r /tmp/requirements.txt
    in_root /opt/venv/bin/pip freeze > "$ROOT/opt/venv/portal-freeze.txt"
    remove_build_inputs
    trap - EXIT
}

# The user the portal runs servers as: uid/gid 1000, home /home/jovyan (the portal mounts it).
add_user() { # comment
    in_root groupadd -g 1000 jovyan
    in_root useradd -u 1000 -g 1000 -m -d /home/jovyan -s /bin/bash -c "$1" jovyan
}

# Leave nothing from the build host behind, and keep the image small.
finish_rootfs() { # hostname
    rm -f "$ROOT/etc/resolv.conf" "$ROOT/etc/hostname"
    : > "$ROOT/etc/resolv.conf"
    echo "$1" > "$ROOT/etc/hostname"
    rm -rf "$ROOT/root/.cache" "$ROOT/tmp/"* "$ROOT/var/cache/apt/"*.bin "$ROOT/var/lib/apt/lists/"*
}
