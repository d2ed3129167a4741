"""A job's ledger entry as the poster reads it, and which states are final."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Begin = Literal["go", "resume", "done", "busy"]
# Final: a delivery of the job again changes nothing. "failed" is not among them:
# a permanently refused job sent back by `redrive` (cause fixed) is tried again.
FINAL_STATES = (
    "posted",
    "rejected",
    "reversed",
    "adjusted",
    "restored",
    "recorded",
    "not_ours",
    "nothing_to_undo",
    "superseded",
)


# Not final, and taken again by the next delivery: a retryable failure; a permanent
# refusal sent back by `redrive`; a restore that needed the Everflow API key
# (``domain.undo``), delivered again once the key is set.
RETAKEN_STATES = ("retryable", "failed", "restore_needs_key")


@dataclass(frozen=True)
class LedgerEntry:
    job_key: str
    status: str
    attempts: int
    item: Mapping[str, Any]
