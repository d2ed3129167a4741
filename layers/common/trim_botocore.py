"""Keep in a built layer's botocore only the data the bridge reads when it creates clients.

A process's first botocore client parses the whole endpoints.json (1.2 MB, every AWS
service), and each client its service model, which is mostly documentation: about
30 ms of every cold start. The bridge's clients come from
``stripe_everflow.adapters.aws``, which allows only its SERVICES. For those this keeps
(1) their entries in endpoints.json, with every partition's regions and defaults, so
their endpoints resolve exactly as with the full file, and (2) their service models
without the "documentation" texts (docstrings, never read to make or parse a call),
uncompressed (botocore reads service-2.json before service-2.json.gz).

Usage (layers/common/Makefile): ``python trim_botocore.py LAYER_PYTHON_DIR``.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any


def trimmed(endpoints: dict[str, Any], services: tuple[str, ...]) -> dict[str, Any]:
    """``endpoints`` (botocore's endpoints.json) with only ``services`` in each partition."""
    partitions = [
        {**partition, "services": {k: v for k, v in partition["services"].items() if k in services}}
        for partition in endpoints["partitions"]
    ]
    return {**endpoints, "partitions": partitions}


def undocumented(model: Any) -> Any:
    """A service model without its "documentation" texts (a member so named is a dict)."""
    if isinstance(model, dict):
        return {
            key: undocumented(value)
            for key, value in model.items()
            if not (key == "documentation" and isinstance(value, str))
        }
    if isinstance(model, list):
        return [undocumented(value) for value in model]
    return model


def main(layer: Path) -> None:
    sys.path.insert(0, str(layer))
    from stripe_everflow.adapters.aws import SERVICES

    data = layer / "botocore" / "data"
    endpoints = json.loads((data / "endpoints.json").read_text("utf-8"))
    (data / "endpoints.json").write_text(json.dumps(trimmed(endpoints, SERVICES)), "utf-8")
    for service in SERVICES:
        for compressed in (data / service).glob("*/service-2.json.gz"):
            model = json.loads(gzip.decompress(compressed.read_bytes()))
            compressed.with_suffix("").write_text(json.dumps(undocumented(model)), "utf-8")
            compressed.unlink()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
