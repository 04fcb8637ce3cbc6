"""`ClaimConfig`: whether and how a build claims tasks in its registry.

Kept apart from the claimer (`_claims`), which needs the registry and so SQLAlchemy:
`import stardag` names this class without importing either. The invariant it keeps:
a heartbeat always comes before a live claim could expire.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, model_validator

ENV_VAR = "STARDAG_CLAIMS"  # "0", "off", "false" or "none": builds claim nothing by default
_OFF = ("0", "off", "false", "none")


class ClaimConfig(BaseModel):
    """How a build claims tasks in its registry (`sd.build(..., claims=ClaimConfig())`).

    Attributes:
        ttl: seconds a claim lives without a heartbeat; a killed builder's claims are
            taken over this long after its last heartbeat.
        heartbeat: seconds between renewals of every claim this build holds (less than `ttl`).
        poll: first wait, in seconds, before asking again about a task another builder holds;
            doubled after each unchanged answer up to `max_poll`.
        max_poll: the longest wait between two questions about held tasks.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ttl: float = Field(default=60.0, gt=0)
    heartbeat: float = Field(default=10.0, gt=0)
    poll: float = Field(default=0.05, gt=0)
    max_poll: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _heartbeat_within_ttl(self) -> ClaimConfig:
        if self.heartbeat >= self.ttl:
            raise ValueError(
                f"heartbeat ({self.heartbeat} s) must be shorter than ttl ({self.ttl} s), "
                "or live claims would expire between renewals"
            )
        return self


def default_claims() -> ClaimConfig | None:
    """What a build claims by default: `ClaimConfig()`; None when `STARDAG_CLAIMS` is off."""
    if os.environ.get(ENV_VAR, "").strip().lower() in _OFF:
        return None
    return ClaimConfig()
