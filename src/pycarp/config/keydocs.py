"""What each TOML key means: the man pages' table of keys (options: optiondocs.py).

pycarp.cli.manpage renders pycarp(8) and pycarp.toml(5) from these entries
together with the tables that define the keys and options themselves
(pycarp.config.tomlkeys, pycarp.config.ucarp), so that their names, types,
short letters and places come from where they are defined. A test fails when
a key or an option has no entry, or an entry names neither: adding a key is
adding its KeyDoc.

Texts are plain sentences; `backquotes` mark what is typed literally.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHECK_DOCS", "HOST_DOCS", "PROCESS_DOCS", "REQUIRED", "KeyDoc"]

REQUIRED = "required"  # the default of a key or option that must be given


@dataclass(frozen=True)
class KeyDoc:
    """One key or option: what it does, the values it takes, its default."""

    text: str
    values: str = ""  # the range or the forms of its value: "0..255", "`on`, `strict` or `off`"
    # A TOML value ("1", "false", '"on"'), which must equal the model's default, or
    # words ("required", "none: multicast").
    default: str = ""


# Process options: at the top of a TOML file (and --facility, --debug, ... with it).
PROCESS_DOCS: dict[str, KeyDoc] = {
    "facility": KeyDoc(
        "The syslog facility of the log, or `none` to log to stderr only.",
        "a facility name (ucarp's names, any case) or `none`",
        '"daemon"',
    ),
    "debug": KeyDoc("Debug messages: a line per advertisement sent, too.", default="false"),
    "daemonize": KeyDoc("Run in the background.", default="false"),
    "control_socket": KeyDoc(
        "The control socket that `pycarp status` and the other client commands talk to, "
        "or `none` for no socket. The run directory is /run/pycarp, or "
        "/run/pycarp/netns-<inode> in a network namespace other than the machine's own "
        "(/var/run/pycarp on illumos).",
        "a path, or `none`",
        "`<run dir>/pycarp.sock`",
    ),
    "control_group": KeyDoc(
        "A group whose members may use the control socket too: the socket is made mode "
        "0660 and given to that group, instead of 0600. The group must exist, and pycarp "
        "must run as root or as a member.",
        "a group name or number",
        "none",
    ),
    "metrics": KeyDoc(
        "Where the Prometheus metrics endpoint listens: an IP address, not a name, and a "
        "port; an IPv6 address in brackets (`[::1]:9406`).",
        "`address:port`, port 1..65535",
        "none: no endpoint",
    ),
    "metrics_public": KeyDoc(
        "Must be `true` for a `metrics` address that is not a loopback address, so that a "
        "typo cannot expose the endpoint.",
        default="false",
    ),
    "groups": KeyDoc(
        "Demotion groups that no check counts in: only `pycarp demote` moves them.",
        "names, as a check's `name`",
        "[]",
    ),
    "realtime": KeyDoc(
        "Realtime scheduling of the event loop (SCHED_RR priority 10, memory locked). "
        "`auto` turns it on when a virtual host has `advbase = 0`.",
        "`auto`, `on` or `off`",
        '"auto"',
    ),
}

# Per-host keys: in [defaults] and in each [[vhost]] table.
HOST_DOCS: dict[str, KeyDoc] = {
    "interface": KeyDoc(
        "The network interface of the virtual host.", "an interface name", REQUIRED
    ),
    "srcip": KeyDoc(
        "This host's own IPv4 address: the source of its IPv4 advertisements. Required with "
        "IPv4 virtual addresses; an error in a [[vhost]] with IPv6 addresses only (one from "
        "[defaults] is not used there: IPv6 advertisements go from the interface's "
        "link-local address).",
        "an IPv4 address",
        "required with IPv4 virtual addresses",
    ),
    "vhid": KeyDoc(
        "The virtual host identifier, the same on every host that backs this one up; "
        "once per interface.",
        "1..255",
        REQUIRED,
    ),
    "addresses": KeyDoc(
        "The virtual addresses, IPv4 or IPv6 or both (one virtual host: MASTER or BACKUP "
        "for all of them). The prefix length, /32 or /128 when not given, is the one pycarp "
        "plumbs the address with.",
        "`a.b.c.d[/len]` or `2001:db8::1[/len]`, 1 or more",
        REQUIRED,
    ),
    "password": KeyDoc(
        "The shared password, sent as the UTF-8 bytes of the string. A CARP virtual host "
        "needs `password` or `password_file`, not both; a [[vhost]] that gives either "
        "replaces whichever one [defaults] gives.",
        "at most 19 bytes",
    ),
    "password_file": KeyDoc(
        "A file whose first line (without its newline) is the password, read as ucarp reads "
        "`--passfile`: for passwords that are not UTF-8 text. It must not be writable by its "
        "group or others.",
        "a path",
        "none",
    ),
    "advbase": KeyDoc(
        "Seconds between advertisements, to which advskew/256 s is added. `0` gives "
        "sub-second intervals and needs an advskew above 0.",
        "0..255",
        "1",
    ),
    "advskew": KeyDoc(
        "The interval's part in 1/256 s: the host with the shorter interval is the "
        "preferred master.",
        "0..255",
        "0",
    ),
    "deadratio": KeyDoc(
        "A backup takes over after this many intervals without an advertisement of the master.",
        "1 or more",
        "3",
    ),
    "preempt": KeyDoc(
        "A backup takes over from a master that advertises less often.", default="false"
    ),
    "neutral": KeyDoc("Do not run the down script at start as BACKUP.", default="false"),
    "mcast": KeyDoc(
        "The multicast group of the IPv4 advertisements (one per interface).",
        "an IPv4 multicast address",
        '"224.0.0.18"',
    ),
    "nomcast": KeyDoc(
        "Send the IPv4 advertisements to the Ethernet broadcast address, not the group.",
        default="false",
    ),
    "ignoreifstate": KeyDoc(
        "Ignore the interface's state: without carrier the host does not become BACKUP.",
        default="false",
    ),
    "upscript": KeyDoc(
        "Run as `<upscript> <interface> <vip> [<xparam>]`, once per virtual address, on "
        "becoming MASTER. It must be executable and writable only by its owner.",
        "a path",
        "none",
    ),
    "downscript": KeyDoc(
        "Run with the same arguments as the up script on leaving MASTER, and at start as BACKUP.",
        "a path",
        "none",
    ),
    "xparam": KeyDoc("An extra last argument for the up and down scripts.", "a string", "none"),
    "shutdown": KeyDoc("Run the down script when pycarp stops as MASTER.", default="false"),
    "plumb": KeyDoc(
        "pycarp adds and removes the virtual addresses itself, at the transitions.",
        default="`true` when there is no script, else `false`",
    ),
    "virtual_mac": KeyDoc(
        "Advertise from ucarp's MAC address 00:00:5e:00:00:<vhid> instead of the NIC's own "
        '(the same as `mac = "ucarp"`).',
        default="false",
    ),
    "replay": KeyDoc(
        "Replay protection: `on` drops an advertisement whose counter was heard before; "
        "`strict` also needs each sender's counter to grow (pycarp peers only); `off` "
        "checks nothing, as ucarp.",
        "`on`, `strict` or `off`",
        '"on"',
    ),
    "script_timeout": KeyDoc(
        "Seconds an up or down script may run; then its process group is killed.",
        "1..3600",
        "10",
    ),
    "track": KeyDoc(
        "The demotion groups this host tracks: while their counts add up to more than 0 "
        "it is demoted. A [[vhost]] that sets it replaces the whole list of [defaults].",
        "group names",
        "[]",
    ),
    "demotion": KeyDoc(
        "What a demoted host does: `penalty` advertises advskew + penalty (at most 255); "
        "`stepdown` becomes BACKUP and stays silent until it is no longer demoted.",
        "`penalty` or `stepdown`",
        '"penalty"',
    ),
    "penalty": KeyDoc("Added to advskew while the host is demoted.", "0..255", "100"),
    "peers": KeyDoc(
        "Unicast: advertisements go to each peer instead of the group and are accepted "
        "only from them. A link-local IPv6 peer is on the interface (`fe80::2` or "
        "`fe80::2%eth0`).",
        "IPv4 or IPv6 addresses, 1 or more",
        "none: multicast",
    ),
    "min_ttl": KeyDoc(
        "With `peers`: the lowest TTL accepted from a peer (255: peers on this segment only).",
        "1..255",
        "1",
    ),
    "protocol": KeyDoc(
        "The protocol spoken: `carp` (ucarp's and BSD's) or `vrrp3` (VRRPv3, RFC 5798, with "
        "the vhid as its VRID). A VRRP virtual host uses priority, advert_int and "
        "preempt_delay instead of advbase, advskew and a password (it has none), preempts "
        "unless preempt is set false, and is IPv4 or IPv6, not both.",
        "`carp` or `vrrp3`",
        '"carp"',
    ),
    "priority": KeyDoc(
        "VRRP: the priority; the virtual host of the highest is master. 255 is for the "
        "owner of the addresses.",
        "1..255",
        "100",
    ),
    "advert_int": KeyDoc(
        "VRRP: seconds between advertisements.", "0.01..40.95, in steps of 0.01", "1"
    ),
    "preempt_delay": KeyDoc(
        "VRRP: seconds a master of lower priority is left before this host preempts it.",
        "0..1000",
        "0",
    ),
    "mac": KeyDoc(
        "The MAC address the host's frames come from: `interface`, the NIC's own; `ucarp`, "
        "ucarp's 00:00:5e:00:00:<vhid> for advertisements only (as virtual_mac); "
        "`virtual`, VRRP's (and BSD CARP's) 00:00:5e:00:01:<vhid> for advertisements, "
        "announcements and the addresses themselves, on a macvlan, which needs pycarp to "
        "plumb the addresses.",
        "`interface`, `ucarp` or `virtual`",
        "`interface`; with VRRP `virtual` when pycarp plumbs the addresses",
    ),
}

# The keys of a [[check]] table.
CHECK_DOCS: dict[str, KeyDoc] = {
    "name": KeyDoc(
        "Names the check in logs, status and metrics; unique.",
        "1 to 63 letters, digits, `_`, `.` or `-`, starting with a letter or digit",
        REQUIRED,
    ),
    "type": KeyDoc(
        "What the check does: runs a command, opens a TCP connection, asks an HTTP(S) URL, "
        "or watches an interface's carrier.",
        "`command`, `tcp`, `http` or `carrier`",
        REQUIRED,
    ),
    "interval": KeyDoc("Seconds from one run to the next.", "0.1..3600", "2"),
    "timeout": KeyDoc("Seconds after which a run is killed, and fails.", "0.1..3600", "1"),
    "rise": KeyDoc("Passes in a row that make the check healthy.", "1..100", "2"),
    "fall": KeyDoc("Failures in a row that make the check failing.", "1..100", "2"),
    "group": KeyDoc(
        "The demotion group the check counts in; several checks may share one.",
        "a name, as `name`",
        "the check's name",
    ),
    "command": KeyDoc(
        "`command` checks: the program (an absolute path) and its arguments, run without a "
        "shell; with `shell = true`, one string for `/bin/sh -c`. Passes on exit status 0.",
        "an array of strings, or a string with `shell`",
    ),
    "shell": KeyDoc("`command` checks: run `command` with `/bin/sh -c`.", default="false"),
    "host": KeyDoc(
        "`tcp` checks: passes when a connection to `host` and `port` opens.",
        "an address or a name",
    ),
    "port": KeyDoc("`tcp` checks: the port.", "1..65535"),
    "url": KeyDoc(
        "`http` checks: passes when a GET of the URL answers with status `expect` "
        "(redirects are not followed).",
        "an `http://` or `https://` URL",
    ),
    "expect": KeyDoc("`http` checks: the status that passes.", "100..599", "200"),
    "interface": KeyDoc(
        "`carrier` checks: passes while the interface has carrier.", "an interface name"
    ),
}
