#!/bin/sh
# Static (musl) release binaries for x86_64 and aarch64: they run on any Linux node, whatever
# its glibc (EKS Amazon Linux 2 has 2.26, RHEL 8 2.28). aarch64 links with rust-lld
# (.cargo/config.toml). Output: target/<triple>/release/kubelet-remediate.
set -eu
cd "$(dirname "$0")/.."
rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl >/dev/null
for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  cargo build --release --locked --target "$t"
  echo "target/$t/release/kubelet-remediate"
done
