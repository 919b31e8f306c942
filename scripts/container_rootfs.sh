#!/usr/bin/env bash
# Lays out the container's file system from a static etl binary (used by both stages of the
# Dockerfile, so that they produce the same image):
#
#   scripts/container_rootfs.sh BINARY DIR
#
# DIR/rootfs (root's): /etl (stripped), /sample (the bundled sample raw store),
# /etc/ssl/certs/ca-certificates.crt (CA roots), /etc/passwd and /etc/group (user etl, 10001).
# DIR/owned (copied as the user's): /data (the output root, the volume) and /tmp.
set -euo pipefail
bin="$1"
out="$2"
cd "$(dirname "$0")/.."
rm -rf "$out/rootfs" "$out/owned"
root="$out/rootfs"
mkdir -p "$root/etc/ssl/certs" "$out/owned/data" "$out/owned/tmp"
cp "$bin" "$root/etl"
strip "$root/etl"
cp -r data/sample "$root/sample"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
echo 'etl:x:10001:10001:medium-etl:/data:/nonexistent' > "$root/etc/passwd"
echo 'etl:x:10001:' > "$root/etc/group"
# glibc (linked in statically) resolves names from /etc/hosts, then DNS (/etc/resolv.conf)
echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
# not empty, so that a new named volume is initialized from it, owner included
echo "medium-etl output root: tables/, reports/, raw/ (see the README's Output layout)" \
    > "$out/owned/data/README"
chmod 1777 "$out/owned/tmp"
