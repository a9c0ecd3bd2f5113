"""The lab's one error."""

from __future__ import annotations

__all__ = ["LabError"]


class LabError(Exception):
    """The lab could not be built or changed; the message says what failed."""
