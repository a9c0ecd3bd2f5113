"""`pycarp lab`: zones from vmadm manifests, pycarp in them, faults (see docs/lab.md).

Every subcommand finds the lab by name in /run/pycarp-lab/<name>/state.json,
so each can run in a process of its own. Errors are one line, exit status 1
(2 for a bad command line).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pycarp.cli.parser import Parser
from pycarp.lab.errors import LabError
from pycarp.lab.zones import ZoneLab, ZoneStatus
from pycarp.vmadm.manifest import ManifestError

__all__ = ["main"]

PROG = "pycarp lab"
DEFAULT_NAME = "lab"


def _parser() -> argparse.ArgumentParser:
    # Errors without " (see --help)" and abbreviated options allowed: as this command always was.
    parser = Parser(
        prog=PROG,
        description="A lab of zones built from vmadm manifests.",
        hint=False,
        allow_abbrev=True,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, hint=False, allow_abbrev=True)
        p.add_argument("--name", default=DEFAULT_NAME, help="the lab (default: lab)")
        return p

    add("up", "build the lab: one zone per manifest").add_argument(
        "manifests", nargs="+", metavar="MANIFEST.json"
    )
    add("run", "start pycarp in a zone: pycarp lab run ZONE -- ARGS...").add_argument("zone")
    add("status", "pycarp's state in each zone, and whether the client reaches each VIP")
    add("crash", "SIGKILL the zone's pycarp and take its link down").add_argument("zone")
    add("stop", "SIGTERM the zone's pycarp (graceful hand-over)").add_argument("zone")
    add("restart", "link up, start the zone's pycarp again").add_argument("zone")
    add("partition", "cut zones off the network").add_argument("zones", nargs="+")
    add("heal", "reconnect every zone")
    add("down", "stop everything and delete the lab")
    return parser


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    extra: list[str] = []
    if "--" in args:  # everything after "--" goes to pycarp untouched
        cut = args.index("--")
        args, extra = args[:cut], args[cut + 1 :]
    ns = _parser().parse_args(args)
    if extra and ns.command != "run":
        _parser().error(f"only `run` takes arguments after --, not `{ns.command}`")
    if os.geteuid() != 0:
        sys.stderr.write(f"{PROG}: error: must run as root (it makes network namespaces)\n")
        return 1
    try:
        return _dispatch(ns, extra)
    except (LabError, ManifestError) as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130


def _dispatch(ns: argparse.Namespace, extra: list[str]) -> int:
    if ns.command == "up":
        lab = ZoneLab.up(ns.manifests, ns.name)
        print(_describe(lab))
        return 0
    if ns.command == "down":
        removed = ZoneLab.teardown(ns.name)
        print(f"lab {ns.name}: removed {len(removed)} namespaces" if removed else "nothing to do")
        return 0
    lab = ZoneLab.load(ns.name)
    if ns.command == "run":
        pid = lab.run(ns.zone, extra)
        zone = lab.zones[ns.zone]
        print(f"{ns.zone}: pycarp started, pid {pid}, log {zone.log_file}")
    elif ns.command == "status":
        statuses = lab.status()
        print(_render(statuses))
        for vip in lab.reach(statuses):
            print(vip.describe())
    elif ns.command == "crash":
        lab.crash(ns.zone)
        print(f"{ns.zone}: crashed (pycarp killed, link down)")
    elif ns.command == "stop":
        if not lab.stop(ns.zone):
            raise LabError(f"{ns.zone}: pycarp did not exit within 10 s of SIGTERM")
        print(f"{ns.zone}: stopped")
    elif ns.command == "restart":
        pid = lab.restart(ns.zone)
        print(f"{ns.zone}: pycarp restarted, pid {pid}")
    elif ns.command == "partition":
        lab.partition(*ns.zones)
        print(f"partitioned: {', '.join(ns.zones)}")
    elif ns.command == "heal":
        lab.heal()
        print("healed: every zone is on its network again")
    return 0


def _describe(lab: ZoneLab) -> str:
    lines = [f"lab {lab.name}: state in {lab.rundir}"]
    for zone in lab.zones.values():
        for nic in zone.nics:
            ip_s, mac_s = _yes(nic.allow_ip_spoofing), _yes(nic.allow_mac_spoofing)
            spoof = f"ip spoofing {ip_s}, mac spoofing {mac_s}"
            lines.append(
                f"  zone {zone.alias} (netns {zone.netns}, hostname {zone.hostname}):"
                f" {nic.name} {nic.ip}/{nic.prefix} {nic.mac} on {nic.nic_tag}, {spoof}"
            )
    for client in lab.clients.values():
        lines.append(f"  client on {client.nic_tag}: netns {client.netns}, {client.ip}")
    lines.append(f"next: pycarp lab run ZONE --name {lab.name} -- --interface=net0 ...")
    return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "allowed" if flag else "no"


def _render(statuses: Sequence[ZoneStatus]) -> str:
    rows = [("ZONE", "PID", "LINK", "VHID", "STATE")]
    for st in statuses:
        link = "down" if st.link_down else "cut" if st.partitioned else "up"
        pid = str(st.pid) if st.pid else "-"
        if not st.running:
            rows.append((st.zone, pid, link, "-", "not running"))
        elif st.error:
            rows.append((st.zone, pid, link, "-", f"no answer: {st.error}"))
        for host in st.hosts:
            rows.append((st.zone, pid, link, str(host["vhid"]), str(host["state"])))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[4] for r in rows
    ]
    return "\n".join(line.rstrip() for line in out)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
