"""The peer when MLServer cannot be installed: a plain FastAPI endpoint that calls the model
once per request, on the same path and body as MLServer's V2 inference protocol.

Run by the bench as `uvicorn --factory bench.peer_fallback:app_from_env`, with
BENCH_PEER_MODEL_FILE (the joblib file the bench wrote) and BENCH_PEER_MODEL_NAME.
"""

from __future__ import annotations

import os
from typing import Any

import joblib
import numpy as np
import orjson
from fastapi import FastAPI, Request, Response


def create_app(model_name: str, estimator: Any) -> FastAPI:
    app = FastAPI(title="bench peer (fallback)", docs_url=None, redoc_url=None)

    @app.get(f"/v2/models/{model_name}/ready")
    def ready() -> Response:
        return Response(status_code=200)

    @app.post(f"/v2/models/{model_name}/infer")
    async def infer(request: Request) -> Response:
        body = orjson.loads(await request.body())
        tensor = body["inputs"][0]
        rows = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
        labels = estimator.predict(rows)
        probabilities = estimator.predict_proba(rows)
        answer = {
            "model_name": model_name,
            "outputs": [
                {
                    "name": "predict",
                    "shape": list(labels.shape),
                    "datatype": "INT64",
                    "data": labels.tolist(),
                },
                {
                    "name": "predict_proba",
                    "shape": list(probabilities.shape),
                    "datatype": "FP64",
                    "data": probabilities.ravel().tolist(),
                },
            ],
        }
        return Response(orjson.dumps(answer), media_type="application/json")

    return app


def app_from_env() -> FastAPI:
    return create_app(
        os.environ["BENCH_PEER_MODEL_NAME"], joblib.load(os.environ["BENCH_PEER_MODEL_FILE"])
    )
