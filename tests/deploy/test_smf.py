"""pycarp render smf: an SMF manifest valid against the DTD, built as an ElementTree."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pycarp.deploy.smf import PROLOG, SmfInstance, render_smf
from tests.deploy.render_helpers import PYCARP, rendered

DTD = Path(__file__).resolve().parents[1] / "data" / "service_bundle.dtd.1"


def xmllint(path: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("xmllint")
    assert tool, "xmllint is missing: apt-get install -y libxml2-utils"
    return subprocess.run(
        [tool, "--noout", "--nonet", "--dtdvalid", str(DTD), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--instance", "zoneA=/opt/local/etc/ucarp.cfg"],
        ["--fmri", "svc:/site/carp", "--instance", "web", "--instance", "db=/etc/db.toml"],
        ["--config", "/opt/local/etc/a&b <x>.cfg", "--user", "carp"],
    ],
)
def test_smf_manifest_is_valid(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "pycarp.xml"
    manifest.write_text(rendered(["smf", "--pycarp", PYCARP, *argv], capsys))
    result = xmllint(manifest)
    assert result.returncode == 0, result.stderr
    assert "validity error" not in result.stderr
    assert manifest.read_text().splitlines()[1].startswith("<!DOCTYPE service_bundle SYSTEM")


def test_smf_manifest_content(capsys: pytest.CaptureFixture[str]) -> None:
    text = rendered(
        ["smf", "--pycarp", PYCARP, "--instance", "zoneA=/opt/local/etc/ucarp.cfg"], capsys
    )
    service = ET.fromstring(text).find("service")
    assert service is not None and service.get("name") == "network/pycarp"
    fmris = {e.get("value") for e in service.iter("service_fmri")}
    assert fmris == {"svc:/milestone/network:default", "svc:/system/filesystem/local:default"}
    methods = {e.get("name"): e for e in service.findall("exec_method")}
    start = methods["start"].get("exec")
    assert start == (
        f"{PYCARP} --config %{{config/file}} --control-socket %{{config/control_socket}}"
    )
    assert "--daemonize" not in start  # foreground, so duration is child
    assert methods["stop"].get("exec") == ":kill"
    assert int(methods["stop"].get("timeout_seconds", "0")) >= 30
    assert methods["refresh"].get("exec") == (
        f"{PYCARP} reload --control-socket %{{config/control_socket}}"
    )
    duration = service.find("property_group[@name='startd']/propval[@name='duration']")
    assert duration is not None and duration.get("value") == "child"
    credential = service.find("method_context/method_credential")
    assert credential is not None
    assert credential.get("privileges") == "basic,net_rawaccess,sys_ip_config"
    assert credential.get("user") == "root"
    (instance,) = service.findall("instance")
    assert instance.get("name") == "zoneA" and instance.get("enabled") == "false"
    values = {p.get("name"): p.get("value") for p in instance.iter("propval")}
    assert values == {
        "file": "/opt/local/etc/ucarp.cfg",
        "control_socket": "/var/run/pycarp/zoneA.sock",
    }
    common = service.find("template/common_name/loctext")
    assert common is not None and "pycarp" in (common.text or "")


def test_smf_instances_default_to_config(capsys: pytest.CaptureFixture[str]) -> None:
    text = rendered(["smf", "--pycarp", PYCARP, "--config", "/etc/c.toml"], capsys)
    instance = ET.fromstring(text).find("service/instance")
    assert instance is not None and instance.get("name") == "default"
    file = instance.find("property_group/propval[@name='file']")
    assert file is not None and file.get("value") == "/etc/c.toml"


def test_smf_manifest_round_trips_through_elementtree() -> None:
    """Parsed back, the manifest holds exactly what was given, and reserializes unchanged."""
    odd = '/etc/say "hi" & it\'s <x>\t.cfg'  # every character XML must escape
    instances = [SmfInstance("vip1", "/etc/pycarp/vip1.toml"), SmfInstance("vip2", odd)]
    text = render_smf(instances, fmri="site/carp", program=PYCARP, user="carp")
    assert text.startswith(PROLOG)
    body = text.removeprefix(PROLOG)
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    root = ET.fromstring(body, parser=parser)
    assert ET.tostring(root, encoding="unicode") + "\n" == body
    assert (root.tag, root.get("type"), root.get("name")) == ("service_bundle", "manifest", "carp")
    (service,) = root.findall("service")
    assert service.get("name") == "site/carp"
    found = {
        i.get("name"): {p.get("name"): p.get("value") for p in i.iter("propval")}
        for i in service.findall("instance")
    }
    assert found == {
        "vip1": {"file": "/etc/pycarp/vip1.toml", "control_socket": "/var/run/pycarp/vip1.sock"},
        "vip2": {"file": odd, "control_socket": "/var/run/pycarp/vip2.sock"},
    }
    methods = {m.get("name"): (m.get("exec"), m.get("timeout_seconds"))
               for m in service.findall("exec_method")}  # fmt: skip
    assert methods == {
        "start": (
            f"{PYCARP} --config %{{config/file}} --control-socket %{{config/control_socket}}",
            "60",
        ),
        "stop": (":kill", "60"),
        "refresh": (f"{PYCARP} reload --control-socket %{{config/control_socket}}", "60"),
    }
    credential = service.find("method_context/method_credential")
    assert credential is not None and credential.get("user") == "carp"
    loctext = service.find("template/common_name/loctext")
    assert loctext is not None
    assert loctext.get("{http://www.w3.org/XML/1998/namespace}lang") == "C"
