"""Keep in a built layer's botocore only the endpoint data of the services the bridge calls.

botocore reads its whole endpoints.json (1.2 MB, every AWS service) when a process
creates its first client: about 25 ms of every cold start, for 3 services. The bridge's
clients come from ``stripe_everflow.adapters.aws``, which allows only its SERVICES;
this keeps those services' entries (and every partition's regions and defaults), so
botocore resolves their endpoints exactly as with the full file.

Usage (layers/common/Makefile): ``python trim_botocore.py LAYER_PYTHON_DIR``.
"""

from __future__ import annotations

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


def main(layer: Path) -> None:
    sys.path.insert(0, str(layer))
    from stripe_everflow.adapters.aws import SERVICES

    path = layer / "botocore" / "data" / "endpoints.json"
    endpoints = json.loads(path.read_text("utf-8"))
    path.write_text(json.dumps(trimmed(endpoints, SERVICES), indent=1), "utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
