"""The prose of the man pages that no table holds: descriptions, subcommands, examples.

Texts are plain sentences with `backquotes` around what is typed literally
(pycarp.cli.roff marks them up). What a table does hold (options, keys,
their defaults, signals, exit statuses, file names) is pycarp.cli.manpage's
to take from there.
"""

from __future__ import annotations

__all__ = [
    "DAEMON_DESCRIPTION",
    "DAEMON_EXAMPLES",
    "DAEMON_SEE_ALSO",
    "SUBCOMMAND_DOCS",
    "TOML_CHECKS",
    "TOML_DESCRIPTION",
    "TOML_EXAMPLE",
    "TOML_HOSTS",
    "TOML_PROCESS",
    "TOML_SEE_ALSO",
]

DAEMON_DESCRIPTION = (
    "pycarp keeps virtual IP addresses on one of several hosts with CARP, the Common Address "
    "Redundancy Protocol. It is a drop-in replacement for ucarp 1.5.2: the same options, the "
    "same up and down script convention and the same packets on the wire, so that pycarp and "
    "ucarp hosts back each other up.",
    "A host starts as BACKUP and becomes MASTER when it has heard no master for deadratio "
    "advertisement intervals. As MASTER it runs its up script (without scripts it adds the "
    "addresses itself), announces the addresses with gratuitous ARP and advertises every "
    "advbase + advskew/256 seconds; leaving MASTER, it runs its down script. Scripts run in "
    "the background and never delay an advertisement.",
    "The options describe one virtual host; a TOML file given to --config describes any "
    "number of them, on one or several interfaces (see pycarp.toml(5)). Everything is "
    "checked before anything starts: a bad value is a one-line error naming the option, "
    "and exit status 2.",
    "Long options may be abbreviated to any prefix of one name. A value goes as `--vhid=5`, "
    "`--vhid 5`, `-v 5` or `-v5`, and short flags cluster (`-Pz`). Numbers may be "
    "hexadecimal (`0x1f`) or, as in ucarp, octal (`017`). Later options override earlier "
    "ones, and the command line overrides the options of a --config file.",
)

# What each subcommand takes (after `pycarp <name>`) and does, by the name it has there.
SUBCOMMAND_DOCS: dict[str, tuple[str, str]] = {
    "demo": (
        "[--plot FILE.png]",
        "The reference scenario in network namespaces named pycarp-*: two zones share a "
        "virtual IP, the master crashes and returns, the new master stops gracefully, and "
        "the outages a client saw are printed. Needs root and Linux.",
    ),
    "check-config": (
        "FILE [--no-machine-checks] [options]",
        "The same as `pycarp --check-config FILE [options]`.",
    ),
    "status": (
        "[--json] [--control-socket PATH]",
        "The state of each virtual host, check and demotion group of the running daemons.",
    ),
    "stepdown": (
        "[VHID] [--control-socket PATH]",
        "MASTER virtual hosts step down to BACKUP, as on SIGUSR2.",
    ),
    "promote": (
        "[VHID] [--control-socket PATH]",
        "Virtual hosts become MASTER now, whatever the election says, until they leave MASTER.",
    ),
    "demote": (
        "GROUP [+N|-N] [--control-socket PATH]",
        "Change the manual part of a demotion group's count (default +1, never below 0) on "
        "every daemon that has the group; `+0` only shows it.",
    ),
    "events": (
        "[--json] [--count N] [--timeout S] [--control-socket PATH]",
        "Print the daemons' events as they happen: transitions, check results, demotions.",
    ),
    "reload": (
        "[VHID] [--control-socket PATH]",
        "A running daemon reads its configuration again, with every check; a bad one is "
        "reported and the running configuration kept.",
    ),
    "render": (
        "KIND [options]",
        "Print the files that deploy pycarp: service definitions, scripts, hooks "
        "(`pycarp render --help` lists the kinds).",
    ),
    "check": (
        "MANIFEST.json... [--config FILE] [--vip ADDR]",
        "Check the vmadm manifests of SmartOS zones that share a virtual IP with CARP.",
    ),
    "lab": (
        "COMMAND [arguments]",
        "A lab of zones in network namespaces, built from vmadm manifests: `up`, `run`, "
        "`status`, `crash`, `stop`, `partition`, `heal`, `down` and more.",
    ),
}

DAEMON_EXAMPLES = (
    (
        "One virtual address with scripts, as with ucarp:",
        (
            "pycarp --interface=eth0 --srcip=198.51.100.201 --vhid=101 \\",
            "       --passfile=/etc/pycarp/secret --addr=198.51.100.200 \\",
            "       --upscript=/etc/vip-up.sh --downscript=/etc/vip-down.sh --shutdown",
        ),
    ),
    (
        "Several virtual hosts from a TOML file, checked first:",
        (
            "pycarp --check-config /etc/pycarp/pycarp.toml",
            "pycarp --config /etc/pycarp/pycarp.toml",
        ),
    ),
    (
        "The running daemons, and a hand-over to the peer:",
        ("pycarp status", "pycarp stepdown"),
    ),
)

DAEMON_SEE_ALSO = ("pycarp.toml(5)", "ucarp(8)", "keepalived(8)", "ip(8)", "systemd.service(5)")

TOML_DESCRIPTION = (
    "A TOML file given to `pycarp --config` describes any number of virtual hosts, on one or "
    "several interfaces, served by one pycarp process. A file is TOML when its name ends in "
    "`.toml`, or when the first line that is neither blank nor a `#` comment does not "
    "start with `-` (such a file holds ucarp options).",
    "The file has process options at the top, before any table; an optional [defaults] "
    "table; one [[vhost]] table per virtual host; and [[check]] tables for health checks. "
    'Types are strict: `advskew = "100"` (a string) and `preempt = 1` (not a boolean) are '
    "errors. Relative paths are taken from the file's directory.",
    "Every problem is reported, each on one line naming the file, the table and the key "
    "(`pycarp.toml (TOML): vhost[2] (vhid 103): advskew: 300 is outside 0..255`), and "
    "nothing starts until the whole file is right. `pycarp --check-config FILE` checks a "
    "file without starting anything.",
)
TOML_PROCESS = (
    "At the top of the file, before any table. --facility, --debug, --daemonize, and the "
    "other options that may go with a TOML file, override them.",
)
TOML_HOSTS = (
    "In a [[vhost]] table, one per virtual host, or in [defaults]: every [[vhost]] table "
    "gets each key of [defaults] that it does not set itself. A value from [defaults] that "
    "is wrong for one virtual host is reported as `advskew (from [defaults])`.",
    "A vhid may be used once per interface; a virtual address may be claimed by one virtual "
    "host only, and may not be another one's srcip; the IPv4 virtual hosts of an interface "
    "share one mcast group.",
)
TOML_CHECKS = (
    "In a [[check]] table, one per health check. A check runs every interval seconds; "
    "rise passes in a row make it healthy, fall failures in a row failing. While it is not "
    "healthy (and before its first result) it adds one to its demotion group, and every "
    "virtual host that tracks the group is demoted. Every group a host tracks must be "
    "defined by a check or by groups, and every group must be tracked by a [[vhost]].",
)
TOML_EXAMPLE = (
    'facility = "daemon"',
    'metrics = "127.0.0.1:9406"',
    "",
    "[defaults]",
    'interface = "eth0"',
    'srcip = "198.51.100.201"',
    'password_file = "/etc/pycarp/secret"',
    'track = ["web"]',
    "",
    "[[vhost]]",
    "vhid = 101",
    'addresses = ["198.51.100.200/24"]',
    "preempt = true",
    "",
    "[[vhost]]",
    "vhid = 102",
    'addresses = ["198.51.100.220", "2001:db8::220/64"]',
    "advskew = 100",
    'upscript = "/etc/pycarp/vip-up.sh"',
    'downscript = "/etc/pycarp/vip-down.sh"',
    "",
    "[[check]]",
    'name = "web"',
    'type = "http"',
    'url = "http://198.51.100.10:8080/health"',
)
TOML_SEE_ALSO = ("pycarp(8)", "ucarp(8)")
