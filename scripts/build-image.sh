#!/bin/sh
# Build the image offline from the static x86_64 binary (FROM scratch: nothing to pull).
# Usage: scripts/build-image.sh [TAG]   (default kubelet-remediate:<version>)
# Writes target/image/kubelet-remediate.oci.tar too: what a registry would receive
# (podman load, skopeo copy oci-archive:... docker://REGISTRY/...).
set -eu
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
tag=${1:-kubelet-remediate:$version}
bin=target/x86_64-unknown-linux-musl/release/kubelet-remediate
[ -x "$bin" ] || cargo build --release --locked --target x86_64-unknown-linux-musl
ctx=target/image
rm -rf "$ctx" && mkdir -p "$ctx"
cp deploy/image/Containerfile "$ctx/"
cp "$bin" "$ctx/kubelet-remediate"
rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if command -v podman >/dev/null 2>&1; then
  podman build --quiet --build-arg VERSION="$version" --build-arg REVISION="$rev" -t "$tag" -f "$ctx/Containerfile" "$ctx"
  podman save --quiet --format oci-archive -o "$ctx/kubelet-remediate.oci.tar" "$tag"
else
  buildah bud --quiet --build-arg VERSION="$version" --build-arg REVISION="$rev" -t "$tag" -f "$ctx/Containerfile" "$ctx"
  buildah push --quiet "$tag" "oci-archive:$ctx/kubelet-remediate.oci.tar"
fi
echo "$tag ($ctx/kubelet-remediate.oci.tar)"
