"""Exceptions raised by the protocol core."""

from __future__ import annotations

import enum


class DropReason(enum.Enum):
    """Why a received packet was not accepted (the counters of `status`)."""

    TOO_SHORT = "length"
    BAD_LENGTH = "length-field"
    BAD_TTL = "ttl"
    BAD_VERSION = "version"
    BAD_TYPE = "type"
    BAD_CHECKSUM = "checksum"
    BAD_DIGEST = "digest"
    NOT_IPV4 = "not-ipv4"
    REPLAY = "replay"  # its counter was already heard: a captured advertisement resent
    OWN_COUNTER = "own-counter"  # a counter we sent, from another address: looped or spoofed
    NOT_PEER = "peer"  # for a unicast host, from an address that is not one of its peers
    BAD_INTERVAL = "interval"  # VRRP: an advertisement interval of 0 (a takeover at once)


class CarpError(Exception):
    """Base class of pycarp's own errors."""


class ConfigError(CarpError):
    """A configuration value is invalid: which (``field``), why, and where it was written.

    ``field`` is the name of the setting: the dataclass field where the model
    raises, the option or key (``--advskew``, ``advskew``) once a front-end has
    named it in its own words; a tuple when several are at fault together, None
    when the error is about no one setting. ``origin`` says where the value came
    from (``ucarp.cfg:3 (ucarp options)``), None when nowhere in particular.
    str() is the line users see: ``origin: field: reason``.
    """

    def __init__(
        self, field: str | tuple[str, ...] | None, reason: str, origin: str | None = None
    ) -> None:
        self.fields: tuple[str, ...] = (field,) if isinstance(field, str) else field or ()
        self.reason = reason
        self.origin = origin
        super().__init__(": ".join(p for p in (origin, self.field, reason) if p is not None))

    @property
    def field(self) -> str | None:
        """The fields at fault as one name (``advbase/advskew``), or None."""
        return "/".join(self.fields) or None


class PacketError(CarpError):
    """A packet could not be decoded or failed a check."""

    def __init__(self, reason: DropReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
