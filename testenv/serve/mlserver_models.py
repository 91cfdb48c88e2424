"""MLServer (v2 / Open Inference protocol) runtimes for testenv's model servers.

`testenv/cluster` runs one MLServer per behaviour from the mlserver virtualenv, with this module
on PYTHONPATH and SDEP_SERVE_BEHAVIOUR set. `RowSum` is the model: testenv's serve-controller
loads one under each graph node name of a v2 predictor (POST /v2/repository/models/NAME/load),
so POST /v2/models/<graph node name>/infer answers. `Probes`, loaded at start-up, adds the
executor's probe paths /ready and /live (200, empty body). See testenv/README.md.

Behaviours:
  ok           first input [[a, b], [c, d]] -> output "sum", shape [2, 1], FP64: [a+b, c+d]
  error-500    500 {"error": "..."} (MLServerError with status 500)
  wrong-shape  200, output "sum" of shape [2, 2]: each row's sum twice
"""

import os

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import MLServerError
from mlserver.handlers import custom_handler
from mlserver.types import InferenceRequest, InferenceResponse
from starlette.responses import Response

BEHAVIOUR = os.environ.get("SDEP_SERVE_BEHAVIOUR", "ok")


class RowSum(MLModel):
    """Each input row's sum, of the request's first input."""

    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        if BEHAVIOUR == "error-500":
            raise MLServerError("testenv model server: test.seldon-deploy/serve is error-500", status_code=500)
        if not payload.inputs:
            raise MLServerError("no inputs", status_code=400)
        x = np.asarray(NumpyCodec.decode_input(payload.inputs[0]), dtype=np.float64)
        x = x.reshape(1, -1) if x.ndim < 2 else x.reshape(x.shape[0], -1)
        sums = x.sum(axis=1, keepdims=True)
        if BEHAVIOUR == "wrong-shape":
            sums = np.hstack([sums, sums])
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output(name="sum", payload=sums)],
        )


class Probes(MLModel):
    """The executor's probe paths, which MLServer itself does not serve."""

    async def load(self) -> bool:
        return True

    @custom_handler(rest_path="/ready", rest_method="GET")
    async def executor_ready(self) -> Response:
        return Response(status_code=200)

    @custom_handler(rest_path="/live", rest_method="GET")
    async def executor_live(self) -> Response:
        return Response(status_code=200)
