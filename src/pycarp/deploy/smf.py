"""``pycarp render smf``: an SMF manifest (illumos, SmartOS), one instance per config file.

The manifest is an ElementTree, so that every value is escaped by the
serializer; only the XML declaration, the DOCTYPE and the comment before the
root element, which a tree cannot hold, are written as text.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from pycarp.config.settings import SOCKET_SUFFIX
from pycarp.deploy.common import STOP_TIMEOUT, RenderError
from pycarp.platform.rundir import ILLUMOS_RUN_DIR

__all__ = [
    "DEFAULT_FMRI",
    "DEFAULT_SMF_CONFIG",
    "DEFAULT_SMF_USER",
    "SMF_PRIVILEGES",
    "SmfInstance",
    "check_fmri",
    "render_smf",
    "smf_instances",
]

DEFAULT_FMRI = "network/pycarp"
DEFAULT_SMF_CONFIG = "/opt/local/etc/pycarp/pycarp.toml"
DEFAULT_SMF_USER = "root"
# Raw sockets (CARP is IP protocol 112, gratuitous ARP) and plumbing addresses:
# everything else root could do is dropped.
SMF_PRIVILEGES = "basic,net_rawaccess,sys_ip_config"
SMF_SOCKET_DIR = ILLUMOS_RUN_DIR  # where `pycarp status` looks for every instance

PROLOG = (
    '<?xml version="1.0"?>\n'
    '<!DOCTYPE service_bundle SYSTEM "/usr/share/lib/xml/dtd/service_bundle.dtd.1">\n'
    "<!-- Rendered by 'pycarp render smf'. Import: svccfg import FILE -->\n"
)
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"  # written as xml:lang
COMMENT_BREAK = "\n" + " " * 9  # a comment's next line, aligned under the first in <service>

_FMRI = re.compile(r"[A-Za-z][A-Za-z0-9_.,-]*(/[A-Za-z][A-Za-z0-9_.,-]*)*")
_INSTANCE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class SmfInstance:
    name: str
    config: str  # absolute path of the config file

    @property
    def control_socket(self) -> str:
        return f"{SMF_SOCKET_DIR}/{self.name}{SOCKET_SUFFIX}"


def render_smf(
    instances: Sequence[SmfInstance],
    *,
    fmri: str = DEFAULT_FMRI,
    program: str,
    user: str = DEFAULT_SMF_USER,
) -> str:
    """An SMF manifest for pycarp with one (disabled) instance per config file."""
    bundle = ET.Element("service_bundle", {"type": "manifest", "name": fmri.rsplit("/", 1)[-1]})
    service = _child(bundle, "service", name=fmri, type="service", version="1")
    _dependency(service, "network", "svc:/milestone/network:default")
    _dependency(service, "filesystem", "svc:/system/filesystem/local:default")
    context = _child(service, "method_context", working_directory="/")
    _comment(
        context,
        "Not full root: only the privileges CARP and plumbing need."
        " The inheritable set carries them to the up/down scripts (ifconfig).",
    )
    _child(context, "method_credential", user=user, group=":default", privileges=SMF_PRIVILEGES)
    _comment(
        service,
        "pycarp stays in the foreground (no daemonize): startd/duration is child,",
        "so SMF tracks the process itself and restarts it if it exits.",
    )
    start = f"{program} --config %{{config/file}} --control-socket %{{config/control_socket}}"
    _method(service, "start", start, 60)
    _comment(
        service,
        ":kill sends SIGTERM: pycarp hands the VIP over (the master-down",
        "interval, ~3 s, plus the down script) before exiting.",
    )
    _method(service, "stop", ":kill", STOP_TIMEOUT)
    _method(service, "refresh", f"{program} reload --control-socket %{{config/control_socket}}", 60)
    startd = _child(service, "property_group", name="startd", type="framework")
    _child(startd, "propval", name="duration", type="astring", value="child")
    _comment(
        service,
        "One instance per config file, each with its own control socket in",
        f"{SMF_SOCKET_DIR}, where `pycarp status` finds them all.",
    )
    for instance in instances:
        element = _child(service, "instance", name=instance.name, enabled="false")
        config = _child(element, "property_group", name="config", type="application")
        _child(config, "propval", name="file", type="astring", value=instance.config)
        _child(
            config, "propval", name="control_socket", type="astring", value=instance.control_socket
        )
    _child(service, "stability", value="Evolving")
    template = _child(service, "template")
    _loctext(_child(template, "common_name"), "pycarp CARP virtual IP daemon")
    _loctext(
        _child(template, "description"),
        "Shares a virtual IP address between hosts with CARP (ucarp-compatible);"
        " one instance per configuration file.",
    )
    ET.indent(bundle, space="  ")
    return PROLOG + ET.tostring(bundle, encoding="unicode") + "\n"


def _child(parent: ET.Element, tag: str, **attributes: str) -> ET.Element:
    return ET.SubElement(parent, tag, attributes)


def _comment(parent: ET.Element, *lines: str) -> None:
    parent.append(ET.Comment(f" {COMMENT_BREAK.join(lines)} "))


def _dependency(service: ET.Element, name: str, fmri: str) -> None:
    dependency = _child(
        service,
        "dependency",
        name=name,
        grouping="require_all",
        restart_on="error",
        type="service",
    )
    _child(dependency, "service_fmri", value=fmri)


def _method(service: ET.Element, name: str, command: str, timeout: int) -> None:
    _child(
        service,
        "exec_method",
        type="method",
        name=name,
        exec=command,
        timeout_seconds=str(timeout),
    )


def _loctext(parent: ET.Element, text: str) -> None:
    ET.SubElement(parent, "loctext", {XML_LANG: "C"}).text = text


def check_fmri(given: str) -> str:
    """``--fmri``, without a leading ``svc:/``, if it is a service name."""
    fmri = given.removeprefix("svc:/")
    if not _FMRI.fullmatch(fmri):
        raise RenderError(f"--fmri: {given!r} is not a service name such as {DEFAULT_FMRI}")
    return fmri


def smf_instances(specs: Sequence[str], config: str) -> list[SmfInstance]:
    """``--instance NAME[=FILE]`` (FILE defaults to --config) as SmfInstances."""
    instances: list[SmfInstance] = []
    for spec in specs or ["default"]:
        name, has_file, file = spec.partition("=")
        if not _INSTANCE.fullmatch(name):
            raise RenderError(f"--instance: {name!r} is not an SMF instance name (letters first)")
        if has_file and not file:
            raise RenderError(f"--instance: {spec!r} has an empty file name")
        instances.append(SmfInstance(name, os.path.abspath(file or config)))
    _unique([i.name for i in instances], "instance names")
    _unique([i.config for i in instances], "config files (two daemons would claim the same vhids)")
    return instances


def _unique(values: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise RenderError(f"--instance: {value!r} is used twice; give distinct {what}")
        seen.add(value)
