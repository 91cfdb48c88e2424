#!/usr/bin/env bash
# Builds the release archive for one target and writes the krew manifest.
#
#   scripts/release.sh [--target TRIPLE] [--binary PATH] [--out DIR] [--manifest FILE]
#
# The archive, DIR/seldon-deploy-<version>-<target>.tar.gz (default DIR: dist/), holds the
# binary `seldon-deploy`, the entries `kubectl-sdep` (the kubectl plugin) and
# `kubectl_complete-sdep` (its completion, kubectl >= 1.26), and LICENSE. krew extracts regular
# files only (no links), so the two entries are small bash scripts that run the binary under
# their own name, which is how it knows its role.
#
# The manifest (default: plugins/sdep.yaml) gets one platform per archive of this version in
# DIR, with its sha256 and the URL of $SDEP_RELEASE_URL, a template in which {version} and
# {archive} are replaced (default: GitHub releases of $SDEP_RELEASE_REPO). Build each target
# (with --target, on a machine that can) into the same DIR, then write the manifest once more.
#
# --binary packages an already built binary of the host target instead of building one
# (`cargo build --release --locked`); the tests package their debug build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target="" binary="" out=dist manifest=plugins/sdep.yaml
while (($#)); do
  case $1 in
    --target) target=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --manifest) manifest=$2; shift 2 ;;
    *) sed -n '2,19p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
  esac
done

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[[ -n $version ]] || { echo "release: no version in Cargo.toml" >&2; exit 1; }
host=$(rustc -vV | sed -n 's/^host: //p')
target=${target:-$host}
if [[ -z $binary ]]; then
  if [[ $target == "$host" ]]; then
    cargo build --release --locked
    binary=target/release/seldon-deploy
  else
    cargo build --release --locked --target "$target"
    binary=target/$target/release/seldon-deploy
  fi
elif [[ $target != "$host" ]]; then
  echo "release: --binary packages the host target ($host), not $target" >&2; exit 2
fi
[[ -x $binary ]] || { echo "release: no binary at $binary" >&2; exit 1; }

# krew's os/arch for a Rust target triple.
platform() {
  local os arch
  case $1 in
    *-linux-*) os=linux ;; *-apple-darwin) os=darwin ;;
    *) echo "release: no krew platform for $1" >&2; return 1 ;;
  esac
  case $1 in
    x86_64-*) arch=amd64 ;; aarch64-*) arch=arm64 ;;
    *) echo "release: no krew architecture for $1" >&2; return 1 ;;
  esac
  printf '%s %s\n' "$os" "$arch"
}
platform "$target" >/dev/null

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$binary" "$stage/seldon-deploy"
chmod 755 "$stage/seldon-deploy"
# Symbols and debug info are most of a binary's size (a debug build's 200 MB): not shipped.
if [[ $target == "$host" ]] && command -v strip >/dev/null; then strip "$stage/seldon-deploy"; fi
cp LICENSE "$stage/LICENSE"
for entry in kubectl-sdep kubectl_complete-sdep; do
  cat >"$stage/$entry" <<'SCRIPT'
#!/usr/bin/env bash
# Runs seldon-deploy, which sits beside this file (krew links here from its bin directory),
# under this file's name: the name tells it to act as the kubectl plugin `sdep` or as its
# completion.
self=${BASH_SOURCE[0]}
while [[ -L $self ]]; do
  link=$(readlink "$self")
  if [[ $link == /* ]]; then self=$link; else self=$(dirname "$self")/$link; fi
done
exec -a "$0" "$(dirname "$self")/seldon-deploy" "$@"
SCRIPT
  chmod 755 "$stage/$entry"
done

mkdir -p "$out"
archive="seldon-deploy-$version-$target.tar.gz"
# Reproducible: sorted names, no owners, a fixed time, no name or time in the gzip header.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$stage" -cf - \
  LICENSE kubectl-sdep kubectl_complete-sdep seldon-deploy | gzip -n -9 >"$out/$archive"
echo "release: $out/$archive" >&2

default_url='https://github.com/'${SDEP_RELEASE_REPO:-seldon-deploy/seldon-deploy}'/releases/download/v{version}/{archive}'
url_template=${SDEP_RELEASE_URL:-$default_url}
mkdir -p "$(dirname "$manifest")"
{
  cat <<YAML
# Written by scripts/release.sh: the krew plugin manifest of seldon-deploy $version.
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: sdep
spec:
  version: v$version
  shortDescription: Create, wait for, scale, update and delete Seldon Core v1 SeldonDeployments
  description: |
    seldon-deploy runs the lifecycle of Seldon Core v1 SeldonDeployments (create, wait until
    ready, scale, delete) and ships new versions into live ones (apply: wait for the whole
    rollout, roll back with --atomic), streaming their events, with a summary table, JSON or
    JUnit at the end.
  caveats: |
    For completion of kubectl sdep (kubectl >= 1.26), put kubectl_complete-sdep on the PATH:
      ln -s "\${KREW_ROOT:-\$HOME/.krew}/store/sdep/v$version/kubectl_complete-sdep" "\${KREW_ROOT:-\$HOME/.krew}/bin/"
  platforms:
YAML
  for a in "$out"/seldon-deploy-"$version"-*.tar.gz; do
    name=$(basename "$a")
    t=${name#seldon-deploy-"$version"-}; t=${t%.tar.gz}
    read -r os arch < <(platform "$t")
    sum=$(sha256sum "$a" | cut -d' ' -f1)
    url=${url_template//\{version\}/$version}; url=${url//\{archive\}/$name}
    cat <<YAML
  - selector:
      matchLabels:
        os: $os
        arch: $arch
    uri: $url
    sha256: $sum
    bin: kubectl-sdep
    files:
    - from: "*"
      to: .
YAML
  done
} >"$manifest"
echo "release: $manifest" >&2
