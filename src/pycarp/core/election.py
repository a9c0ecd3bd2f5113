"""The election rule: which of two hosts is master, as ucarp 1.5.2 decides it,
with OpenBSD's demote counts before it (ucarp sends 0 and ignores them).

The shorter advertisement interval wins; equal intervals go to the lower
source address in ucarp's byte order (IPv6: the lower link-local address).
A backup also takes over from a master that advertises less often than its
master-down interval (a leaving master sends 255/255). A protocol with
another rule (VRRPv3's priorities) is another module with these two functions.
"""

from __future__ import annotations

from pycarp.core import timing
from pycarp.core.actions import Reason
from pycarp.core.packet import Address
from pycarp.core.timing import Interval


def master_yields(
    ours: Interval,
    theirs: Interval,
    ip: Address,
    their_ip: Address,
    *,
    demote: int = 0,
    their_demote: int = 0,
) -> bool:
    """A MASTER hears another: whether it steps down (else it re-asserts).

    OpenBSD's rule comes first: the less demoted host wins, whatever its interval.
    """
    if their_demote != demote:
        return their_demote < demote
    if theirs != ours:
        return theirs < ours
    return timing.ucarp_order(their_ip) < timing.ucarp_order(ip)


def backup_takes_over(
    ours: Interval,
    theirs: Interval,
    threshold: Interval,
    *,
    preempt: bool,
    faulted: bool,
    demote: int = 0,
    their_demote: int = 0,
) -> Reason | None:
    """A BACKUP hears a master: why it takes over now, None to keep listening.

    `ours` is the interval we advertise now (255/255 while faulted: no
    preempting then), `threshold` the master-down interval with the skew we
    advertise now. A faulted host does not take over from a leaving master
    either, so two faulted hosts do not hand the addresses back and forth.
    With OpenBSD's demote counts, a master more demoted than we are is taken
    over even without preempt, and one less demoted is never preempted.
    """
    if their_demote > demote and not faulted:
        return Reason.PEER_DEMOTED
    if preempt and ours < theirs and their_demote >= demote:
        return Reason.PREEMPT
    if not faulted and threshold < theirs:
        return Reason.MASTER_LEAVING
    return None
