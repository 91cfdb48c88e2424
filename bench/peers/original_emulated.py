#!/usr/bin/env python3
"""Fallback peer: the original Go program (github.com/lavelle96/seldon-deployment, main.go and
seldon/seldonDeploymentController.go at e8c02d1, 2021-05-01), re-implemented step by step for
when it cannot be built. Used only by the benchmark, never by the product.

usage: original_emulated.py KUBECONFIG NAMESPACE SDEP.json

Faithful to the original:
* POST the SeldonDeployment (typed client: the body is re-encoded as machinelearning.seldon.io/v1);
* wait for N=1, then N=2: GET every 4 s; done when ANY status.deploymentStatus entry has
  availableReplicas == N (a missing key counts as 0); logs the same line per entry that is not;
* scale: on the object cached by the last GET, set spec.replicas, every predictors[].replicas and
  every componentSpecs[].replicas to 2, then a full PUT (no retry: a 409 ends the program, as the
  original panics);
* plain DELETE (background propagation), no wait;
* one keep-alive connection, no timeouts, no retries.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib.kube import Api, sdep_path  # noqa: E402


def log(msg: str) -> None:
    print(time.strftime("%Y/%m/%d %H:%M:%S ") + msg, file=sys.stderr, flush=True)


def wait_until(api: Api, ns: str, name: str, n: int) -> dict:
    while True:
        obj = api.get(sdep_path(ns, name))
        available = False
        for st in ((obj.get("status") or {}).get("deploymentStatus") or {}).values():
            if st.get("availableReplicas", 0) != n:
                log(f"Deployment currently not at desired replica count: {n}, available replicas: "
                    f"{st.get('availableReplicas', 0)} ")
            else:
                available = True
        if available:
            return obj
        time.sleep(4)


def main() -> int:
    kubeconfig, ns, path = sys.argv[1:4]
    api = Api(kubeconfig, user_agent="seldon-deployment-emulated/v0.0.0 (linux/amd64) kubernetes/$Format")
    log(f"Using kubeconfig file:  {kubeconfig}")
    log(f"Using namespace:  {ns}")
    with open(path) as f:
        sdep = json.load(f)
    sdep["apiVersion"] = "machinelearning.seldon.io/v1"
    created = api.request("POST", sdep_path(ns), sdep)
    name = created["metadata"]["name"]
    log(f"Created seldon deployment {name} successfully")
    obj = wait_until(api, ns, name, 1)
    replicas = 2
    obj["spec"]["replicas"] = replicas
    for p in obj["spec"].get("predictors") or []:
        p["replicas"] = replicas
        for c in p.get("componentSpecs") or []:
            c["replicas"] = replicas
    api.request("PUT", sdep_path(ns, name), obj)
    wait_until(api, ns, name, replicas)
    api.request("DELETE", sdep_path(ns, name))
    log(f"Deleted seldon deployment {name} successfully")
    return 0


if __name__ == "__main__":
    sys.exit(main())
