#!/usr/bin/env bash
# The seldon-deploy lifecycle done with kubectl only, as a shell-script user would:
#   create -> wait ready -> patch replicas to N -> wait -> delete --wait
#
# usage: kubectl-lifecycle.sh NAMESPACE FILE N [recipe|strict]
#   KUBECTL   kubectl command (may be a wrapper, e.g. "rusage-exec OUT kubectl"); default kubectl
#   TIMEOUT   per-wait timeout (default 300s)
#
# Prints "BENCH <epoch seconds> <event>" lines on stdout between phases.
#
# Waits, the best a single `kubectl wait --for` (kubectl 1.35 takes one --for) can do here:
#   recipe: --for=jsonpath='{.status.state}'=Available for both waits; `delete --wait`
#           (background cascade: returns once the SeldonDeployment is gone, its Deployments may
#           still exist). This is what Seldon's docs do. SeldonDeployment v1 has no
#           observedGeneration, so the second wait can pass on the stale status written
#           before the operator reacted to the patch.
#   strict: second wait first waits, per Deployment listed in status.deploymentStatus, for
#           availableReplicas=N, then for state=Available; delete with --cascade=foreground,
#           so --wait lasts until the owned Deployments are gone too.
#
# Scaling: `kubectl scale` only sets spec.replicas through the /scale subresource, which the
# predictor-level replicas of the iris example override (Seldon's precedence: componentSpec >
# predictor > spec). So the script sends one JSON patch of `add` ops for spec.replicas, every
# predictors[i].replicas, and predictors[i].componentSpecs[j].replicas where that is already set.
# (Setting an unset componentSpec level, as the original program does, changes the pod template:
# the operator embeds the predictor, componentSpecs included, in the executor's environment, so
# the Deployment rolls all its pods.)
set -euo pipefail
ns=$1 file=$2 n=$3 mode=${4:-recipe}
read -r -a KC <<<"${KUBECTL:-kubectl}"
TIMEOUT=${TIMEOUT:-300s}
mark() { echo "BENCH $EPOCHREALTIME $1"; }

mark start
ref=$("${KC[@]}" -n "$ns" create -f "$file" -o name)   # seldondeployment.machinelearning.seldon.io/NAME
mark created

# Wait 1; print the predictor/componentSpec layout and the Deployment names for the next steps.
layout=$("${KC[@]}" -n "$ns" wait "$ref" --for=jsonpath='{.status.state}'=Available --timeout="$TIMEOUT" \
  -o go-template='{{range .spec.predictors}}p{{range .componentSpecs}}{{if .replicas}}C{{else}}c{{end}}{{end}} {{end}}|{{range $k, $v := .status.deploymentStatus}}{{$k}} {{end}}')
mark ready1

ops="{\"op\":\"add\",\"path\":\"/spec/replicas\",\"value\":$n}"
i=0
for p in ${layout%%|*}; do
  ops="$ops,{\"op\":\"add\",\"path\":\"/spec/predictors/$i/replicas\",\"value\":$n}"
  for ((j = 0; j < ${#p} - 1; j++)); do
    [[ ${p:j+1:1} == C ]] || continue
    ops="$ops,{\"op\":\"add\",\"path\":\"/spec/predictors/$i/componentSpecs/$j/replicas\",\"value\":$n}"
  done
  i=$((i + 1))
done
"${KC[@]}" -n "$ns" patch "$ref" --type=json -p "[$ops]" >/dev/null
mark scaled

if [[ $mode == strict ]]; then
  for d in ${layout#*|}; do
    "${KC[@]}" -n "$ns" wait "$ref" --for=jsonpath="{.status.deploymentStatus['$d'].availableReplicas}"=$n \
      --timeout="$TIMEOUT" >/dev/null
  done
fi
"${KC[@]}" -n "$ns" wait "$ref" --for=jsonpath='{.status.state}'=Available --timeout="$TIMEOUT" >/dev/null
mark ready2

if [[ $mode == strict ]]; then
  "${KC[@]}" -n "$ns" delete "$ref" --wait --cascade=foreground --timeout="$TIMEOUT" >/dev/null
else
  "${KC[@]}" -n "$ns" delete "$ref" --wait --timeout="$TIMEOUT" >/dev/null
fi
mark gone
