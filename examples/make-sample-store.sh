#!/bin/sh
# Build examples/sample-store: a small containers-storage store (vfs driver) made by
# podman 4.3.1 and buildah 1.28.2, for trying libimage on a real store:
#
#   libimage --root examples/sample-store images
#
# Contents: localhost/alpha:1 (also tagged localhost/alpha:latest and
# quay.io/example/alpha:1, with a label), localhost/beta:1, a dangling image, a
# child of alpha (localhost/alpha-child:1, built with buildah from + copy + commit)
# and a buildah working container on beta. Every layer holds one small text file.
#
# podman's own files are removed afterwards (<root>/libpod, defaultNetworkBackend);
# the lock files stay, so the store is locked and read exactly like podman's. The run
# root is a throw-away directory: nothing under it is needed to read the store.
#
# Run as root (podman and buildah need no daemon there). The old sample store is
# replaced.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
store="$here/sample-store"
run=$(mktemp -d /tmp/sample-run.XXXXXX) # podman refuses run roots over 50 characters
work=$(mktemp -d)
trap 'rm -rf "$run" "$work"' EXIT

podman() {
    command podman --root "$store" --runroot "$run" --storage-driver vfs \
        --cgroup-manager cgroupfs --events-backend none "$@"
}
buildah() {
    command buildah --root "$store" --runroot "$run" --storage-driver vfs "$@"
}
# layer_tar NAME: a tarball holding NAME.txt, owned by root, with a fixed time.
layer_tar() {
    mkdir -p "$work/$1"
    printf '%s\n' "$1" >"$work/$1/$1.txt"
    tar -C "$work/$1" --owner=0 --group=0 --mtime=@0 -cf "$work/$1.tar" "$1.txt"
}

rm -rf "$store"

layer_tar alpha
podman import -q --change LABEL=org.example.role=base "$work/alpha.tar" localhost/alpha:1
podman tag localhost/alpha:1 localhost/alpha:latest quay.io/example/alpha:1

layer_tar beta
podman import -q "$work/beta.tar" localhost/beta:1

layer_tar dangling
podman import -q "$work/dangling.tar"

printf 'child\n' >"$work/child.txt"
child=$(buildah from -q localhost/alpha:1)
buildah copy -q "$child" "$work/child.txt" /child.txt
buildah config --label org.example.role=child "$child"
buildah commit -q "$child" localhost/alpha-child:1
buildah rm "$child" >/dev/null

buildah from -q --name sample-working localhost/beta:1 >/dev/null

podman images -a

# Only containers-storage stays: podman's database and network choice go.
rm -rf "$store/libpod" "$store/defaultNetworkBackend"
