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


class CarpError(Exception):
    """Base class of pycarp's own errors."""


class ConfigError(CarpError):
    """A configuration value is invalid; the message says which and why."""


class PacketError(CarpError):
    """A packet could not be decoded or failed a check."""

    def __init__(self, reason: DropReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
