"""``pycarp check``: are these vmadm manifests right for sharing a VIP with CARP?

Reads the zones' ``vmadm create`` manifests and the VIP (from pycarp's
config, or ``--vip``) and explains each problem with the file, the JSON
path and the fix (pycarp.vmadm.rules). Nothing here looks at this machine:
the config is read with check_machine=False, as it is meant for the zones,
not for this host.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from ipaddress import AddressValueError, IPv4Address

from pycarp.cli.parser import EXIT_USAGE, Parser
from pycarp.config.load import TOML_FORMAT, read_config_file, settings_of_file
from pycarp.core.errors import ConfigError
from pycarp.vmadm.manifest import Manifest, read_json, read_manifest
from pycarp.vmadm.rules import ERROR, Problem, Vip, check, error, reading_problems, unique

PROG = "pycarp check"
EXIT_OK = 0
EXIT_PROBLEMS = 1


def read_manifests(paths: Sequence[str], problems: list[Problem]) -> list[Manifest]:
    """The manifests that could be read, each with what reading it found in ``problems``."""
    manifests = []
    for path in paths:
        try:
            data = read_json(path)
        except OSError as exc:
            problems.append(
                error(path, f"cannot read: {exc.strerror or exc}", "give the path of a manifest")
            )
            continue
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problems.append(
                error(path, f"not JSON: {exc}", "fix the syntax (vmadm validate create -f FILE)")
            )
            continue
        manifest = read_manifest(data, path)
        problems += reading_problems(manifest)
        manifests.append(manifest)
    return manifests


def load_vips(configs: Sequence[str], vips: Sequence[str], problems: list[Problem]) -> list[Vip]:
    """The virtual addresses the configs (or --vip) describe."""
    found: list[Vip] = []
    for path in configs:
        found += _config_vips(path, problems)
    for text in vips:
        try:
            found.append(Vip(IPv4Address(text), "--vip"))
        except AddressValueError:
            problems.append(
                error("--vip", f"{text!r} is not an IPv4 address", "give the VIP as a dotted quad")
            )
    return found


def _config_vips(path: str, problems: list[Problem]) -> list[Vip]:
    try:
        file = read_config_file(path)  # never blocks: a FIFO is refused, not opened
    except ConfigError as exc:
        problems.append(error(path, exc.reason, "give the config's path"))
        return []
    try:
        kind, settings = settings_of_file(file, check_machine=False)
    except ConfigError as exc:
        problems += (
            error(
                path,
                line,
                "correct the config (pycarp check-config FILE --no-machine-checks says the same)",
            )
            for line in str(exc).splitlines()
        )
        return []
    prefix = "vhost[{}]." if kind == TOML_FORMAT else "--"
    return [
        Vip(
            address,
            path,
            vhost.vhid,
            vhost.srcip,
            vhost.password,
            vhost.mac == "ucarp",
            prefix.format(index),
        )
        for index, vhost in enumerate(settings.vhosts)
        for address in vhost.addresses
        if isinstance(address, IPv4Address)  # the manifest rules are about IPv4 NICs
    ]


def _parser() -> Parser:
    parser = Parser(
        prog=PROG, description="Check vmadm manifests of zones sharing a VIP with CARP."
    )
    parser.add_argument("manifests", nargs="+", metavar="MANIFEST.json")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="pycarp's config (ucarp options or TOML); repeat for several",
    )
    parser.add_argument(
        "--vip",
        action="append",
        default=[],
        metavar="ADDR",
        help="the shared address, when there is no --config",
    )
    parser.add_argument(
        "--no-machine-checks",
        action="store_true",
        help="accepted for symmetry with check-config: this command never checks this machine",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """``pycarp check MANIFEST.json... [--config FILE] [--vip ADDR]``."""
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    if not args.config and not args.vip:
        print(
            f"{PROG}: error: give --config FILE or --vip ADDR: the VIP decides which NIC "
            "carries CARP",
            file=sys.stderr,
        )
        return EXIT_USAGE
    found: list[Problem] = []
    vips = load_vips(args.config, args.vip, found)
    manifests = read_manifests(args.manifests, found)
    problems = unique([*found, *check(manifests, vips)])
    for problem in problems:
        print(problem)
    errors = sum(p.level == ERROR for p in problems)
    warnings = len(problems) - errors
    addresses = ", ".join(dict.fromkeys(str(vip.address) for vip in vips)) or "no VIP"
    verdict = "OK" if not errors else "FAILED"
    print(
        f"{verdict}: {len(manifests)} manifests, VIP {addresses}: {errors} errors, "
        f"{warnings} warnings"
    )
    return EXIT_PROBLEMS if errors else EXIT_OK
