#!/usr/bin/env bash
# The demo: builds seldon-deploy, starts the local control plane (building it on first use,
# see testenv/README.md), and runs the whole lifecycle of a bundled example on it.
#
#   scripts/demo.sh [EXAMPLE] [seldon-deploy run flags...]
#
# EXAMPLE defaults to examples/iris-v1alpha2.yaml, the original program's manifest. The cluster
# stays up afterwards so you can try the other commands; `testenv/cluster down` stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

example=examples/iris-v1alpha2.yaml
if [[ $# -gt 0 && $1 != -* ]]; then example=$1; shift; fi

cargo build --release --locked --quiet
eval "$(testenv/cluster up)"
kubectl=$(testenv/cluster env | awk '/^bin:/{print $2}')/kubectl
"$kubectl" create namespace seldon-demo --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null

set -x
target/release/seldon-deploy run -n seldon-demo -f "$example" "$@"
{ set +x; } 2>/dev/null
echo
echo "The cluster is still up: export KUBECONFIG=$KUBECONFIG"
echo "Stop it with: testenv/cluster down"
