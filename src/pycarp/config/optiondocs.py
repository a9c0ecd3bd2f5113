"""What each command-line option means, for pycarp(8): most say what their TOML key says.

The options themselves (names, letters, values) are pycarp.config.ucarp's
table; see pycarp.config.keydocs for how the entries are used.
"""

from __future__ import annotations

from pycarp.config.keydocs import HOST_DOCS, PROCESS_DOCS, REQUIRED, KeyDoc

__all__ = ["OPTION_DOCS"]

# The command-line options, by their first long name. A flag's default is to be off.
OPTION_DOCS: dict[str, KeyDoc] = {
    "interface": KeyDoc(
        "The network interface of the virtual host (pycarp does not pick one as ucarp does).",
        default=REQUIRED,
    ),
    "srcip": KeyDoc("This host's own IPv4 address, the advertisements' source.", default=REQUIRED),
    "mcast": HOST_DOCS["mcast"],
    "vhid": HOST_DOCS["vhid"],
    "pass": KeyDoc(
        "The shared password. Any user can read it in ps(1): --passfile or PYCARP_PASSWORD "
        "keep it out of the command line. One of --pass, --passfile and PYCARP_PASSWORD is "
        "required; the last of --pass and --passfile given wins.",
        "at most 19 bytes",
    ),
    "passfile": KeyDoc(
        "Read the password from the first line of the file (without its newline). The file "
        "must not be writable by its group or others.",
    ),
    "preempt": HOST_DOCS["preempt"],
    "neutral": HOST_DOCS["neutral"],
    "addr": KeyDoc(
        "The virtual address: one IPv4 address (several, and IPv6 ones, are for TOML files).",
        default=REQUIRED,
    ),
    "help": KeyDoc("Print a summary of the options and exit."),
    "advbase": HOST_DOCS["advbase"],
    "advskew": HOST_DOCS["advskew"],
    "upscript": HOST_DOCS["upscript"],
    "downscript": HOST_DOCS["downscript"],
    "deadratio": HOST_DOCS["deadratio"],
    "debug": PROCESS_DOCS["debug"],
    "shutdown": HOST_DOCS["shutdown"],
    "daemonize": PROCESS_DOCS["daemonize"],
    "ignoreifstate": HOST_DOCS["ignoreifstate"],
    "nomcast": HOST_DOCS["nomcast"],
    "facility": PROCESS_DOCS["facility"],
    "xparam": HOST_DOCS["xparam"],
    "virtual-mac": HOST_DOCS["virtual_mac"],
    "mac": HOST_DOCS["mac"],
    "protocol": HOST_DOCS["protocol"],
    "priority": HOST_DOCS["priority"],
    "advert-int": HOST_DOCS["advert_int"],
    "preempt-delay": HOST_DOCS["preempt_delay"],
    "replay": HOST_DOCS["replay"],
    "script-timeout": HOST_DOCS["script_timeout"],
    "config": KeyDoc(
        "Read options from the file first (the command line overrides them): ucarp options, "
        "one or more a line, lines joined by a trailing backslash, `#` comments; or a TOML "
        "file of any number of virtual hosts (see pycarp.toml(5)). A name ending in `.toml`, "
        "or a file whose first line that is neither blank nor a comment does not start with "
        "`-`, is TOML.",
    ),
    "version": KeyDoc("Print the version and exit."),
    "control-socket": KeyDoc(
        "The control socket that `pycarp status` and the other client commands talk to, or "
        "`none`. The run directory is /run/pycarp, or /run/pycarp/netns-<inode> in a network "
        "namespace other than the machine's own (/var/run/pycarp on illumos).",
        "a path, or `none`",
        "`<run dir>/<interface>-<vhid>.sock`; with a TOML file `<run dir>/pycarp.sock`",
    ),
    "control-group": PROCESS_DOCS["control_group"],
    "realtime": PROCESS_DOCS["realtime"],
    "check-config": KeyDoc(
        "Read the file as --config does, with the rest of the command line, print a summary "
        "of the configuration (exit status 0) or every problem found (exit status 2), and "
        "exit without starting anything.",
    ),
    "no-machine-checks": KeyDoc(
        "With --check-config: do not check this machine's interfaces, scripts and password "
        "files, for a configuration meant for another host.",
    ),
}
