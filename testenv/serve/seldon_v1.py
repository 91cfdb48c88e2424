"""A Seldon protocol (v1) model server for testenv: the real seldon-core Python microservice app
(seldon_core.wrapper, the one `seldon-core-microservice` serves) with a tiny deterministic model.

It stands in for a predictor's executor (container seldon-container-engine) behind KWOK's
port-forward, so it also answers the executor's probe paths, /ready and /live (200, empty body),
which the microservice alone does not serve. Run by `testenv/cluster` from the seldon-core
virtualenv; see testenv/README.md ("Model servers behind port-forward").

Behaviours (--behaviour, one process each):
  ok           [[a, b], [c, d]] -> [[a+b], [c+d]]: each input row's sum, names ["sum"]
  error-500    500 with seldon-core's error payload (status.status 1, MICROSERVICE_INTERNAL_ERROR)
  wrong-shape  200 with each row's sum twice: [[a+b, a+b], [c+d, c+d]], names ["sum", "sum"]
"""

import argparse
import logging
import os
import threading

import numpy as np
from seldon_core.metrics import SeldonMetrics
from seldon_core.wrapper import get_rest_microservice
from werkzeug.serving import make_server

BEHAVIOURS = ("ok", "error-500", "wrong-shape")


class InProcessMetrics(SeldonMetrics):
    """seldon-core keeps custom metrics in a multiprocessing Manager, a second process that would
    outlive this one when it is killed; a single process needs only a lock and a dict."""

    def __init__(self):  # pylint: disable=super-init-not-called
        self._manager = None
        self._lock = threading.Lock()
        self.data = {}
        self.worker_id_func = os.getpid
        self._extra_default_labels = {}

    def __del__(self):
        pass


class RowSum:
    """The user model, as seldon-core calls it: predict(X, feature_names)."""

    def __init__(self, behaviour):
        self.behaviour = behaviour

    def class_names(self):
        return ["sum", "sum"] if self.behaviour == "wrong-shape" else ["sum"]

    def predict(self, X, features_names=None):  # noqa: N803 (seldon-core's name)
        if self.behaviour == "error-500":
            raise RuntimeError("testenv model server: test.seldon-deploy/serve is error-500")
        x = np.asarray(X, dtype=float)
        x = x.reshape(1, -1) if x.ndim < 2 else x.reshape(x.shape[0], -1)
        sums = x.sum(axis=1, keepdims=True)
        if self.behaviour == "wrong-shape":
            return np.hstack([sums, sums])
        return sums


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--behaviour", choices=BEHAVIOURS, default="ok")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    app = get_rest_microservice(RowSum(args.behaviour), InProcessMetrics())
    # The executor's probes: 200 once it listens (its /ready checks that the graph's containers
    # accept connections, which this one process does by answering).
    app.add_url_rule("/ready", "executor_ready", lambda: ("", 200))
    app.add_url_rule("/live", "executor_live", lambda: ("", 200))
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    logging.info("serving the seldon protocol (%s) on 127.0.0.1:%d", args.behaviour, args.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
