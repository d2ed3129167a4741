"""What became of one postback job: logged, counted, and answered to SQS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PostOutcome:
    # posted | rejected | failed | duplicate; for refunds and disputes also reversed |
    # adjusted | restored | recorded | not_ours | nothing_to_undo | superseded |
    # restore_needs_key (a restore Everflow's API key is needed for: recorded, not retried)
    status: str
    job_key: str
    http_status: int | None = None
    conversion_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}
