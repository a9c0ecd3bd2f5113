"""What a virtual host advertises: advbase, advskew and the demote byte, from its condition.

One place decides it, so that the election (election.py) and the wire agree.
"""

from __future__ import annotations

from typing import NamedTuple

from pycarp.core.checkconfig import MAX_GROUP
from pycarp.core.config import VirtualHostConfig
from pycarp.core.timing import SUPPRESSED_ADVSKEW
from pycarp.core.vrrp import LEAVING as VRRP_LEAVING
from pycarp.core.vrrp import OWNER

LEAVING = 255  # advbase and advskew of a master that is leaving (or faulted)


class Priority(NamedTuple):
    advbase: int
    advskew: int
    demote: int


def advertised(
    config: VirtualHostConfig,
    *,
    leaving: bool = False,
    promoted: bool = False,
    demote: int = 0,
    suppressed: bool = False,
) -> Priority:
    """The priority a host advertises now.

    A leaving or faulted host sends 255/255. A promoted one sends advskew 0
    and demote 0 (an operator asked for it to win). A demoted one in penalty
    mode adds its penalty to advskew; failing sends raise it to 240 at least.
    The sum is clamped, never wrapped: at most 255 (254 with advbase 255,
    whose 255/255 means leaving), at least 1 with advbase 0 (else the
    interval would be 0).
    """
    if leaving:
        return Priority(LEAVING, LEAVING, 0 if promoted else min(demote, MAX_GROUP))
    advbase = config.advbase
    if promoted:
        skew, demote = 0, 0
    else:
        skew, demote = config.advskew, min(demote, MAX_GROUP)
        if demote and config.demotion == "penalty":
            skew += config.penalty
    if suppressed:
        skew = max(skew, SUPPRESSED_ADVSKEW)
    highest = LEAVING - 1 if advbase == LEAVING else LEAVING
    lowest = 1 if advbase == 0 else 0
    return Priority(advbase, max(lowest, min(skew, highest)), demote)


def vrrp_priority(
    config: VirtualHostConfig,
    *,
    leaving: bool = False,
    promoted: bool = False,
    demote: int = 0,
    suppressed: bool = False,
) -> int:
    """The VRRP priority a host advertises now, by the same conditions as advertised().

    Leaving or faulted: 0 (RFC 5798's "stop being master"). Promoted: 255.
    Demoted in penalty mode: less the penalty, at least 1; failing sends: 1.
    """
    if leaving:
        return VRRP_LEAVING
    if promoted:
        return OWNER
    priority = config.priority
    if demote and config.demotion == "penalty":
        priority -= config.penalty
    if suppressed:
        priority = 1
    return max(1, min(priority, OWNER))
