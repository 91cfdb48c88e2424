#!/usr/bin/env bash
# Ship a new version of a live SeldonDeployment with kubectl only, as a shell-script user would:
#   kubectl apply -f FILE, then wait.
#
# usage: kubectl-update.sh NAMESPACE FILE wait|rollout
#   KUBECTL   kubectl command (may be a wrapper, e.g. "rusage-exec OUT kubectl"); default kubectl
#   TIMEOUT   per-wait timeout (default 300s)
#
# Prints "BENCH <epoch seconds> <event>" lines on stdout between steps (start, applied, ready).
#
# Waits:
#   wait:    `kubectl wait --for=condition=ready sdep/NAME`: the recipe in Seldon's docs and
#            notebooks. SeldonDeployment v1 has no observedGeneration: right after the apply,
#            Ready is still the True written for the previous version. During the rollout the
#            operator sets it False while a new pod is not ready and True again each time one
#            turns Ready (it asks for no unavailable pod, not for the old pods to be gone), so
#            this returns while old pods still serve.
#   rollout: `kubectl rollout status` on each Deployment labelled seldon-deployment-id=NAME, one
#            after the other (Seldon's docs do it for `.items[0]`; here for every one). Right
#            after the apply the operator may not have updated a Deployment yet, and rollout
#            status then reports the previous rollout as complete. It also ignores the
#            SeldonDeployment: it can end before the operator says Available again.
set -euo pipefail
ns=$1 file=$2 mode=$3
read -r -a KC <<<"${KUBECTL:-kubectl}"
TIMEOUT=${TIMEOUT:-300s}
mark() { echo "BENCH $EPOCHREALTIME $1"; }

mark start
ref=$("${KC[@]}" -n "$ns" apply -f "$file" -o name)   # seldondeployment.machinelearning.seldon.io/NAME
mark applied
case $mode in
  wait)
    "${KC[@]}" -n "$ns" wait "$ref" --for=condition=ready --timeout="$TIMEOUT" >/dev/null
    ;;
  rollout)
    deps=$("${KC[@]}" -n "$ns" get deployments -l "seldon-deployment-id=${ref##*/}" -o name)
    for d in $deps; do
      "${KC[@]}" -n "$ns" rollout status "$d" --timeout="$TIMEOUT" >/dev/null
    done
    ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
mark ready
