"""VRRPv3's settings: the model's rules and defaults, and the TOML and command-line front-ends."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest

from pycarp.config import machine
from pycarp.core.config import VirtualHostConfig, with_protocol_defaults
from pycarp.core.errors import ConfigError
from pycarp.core.packet import virtual_mac as ucarp_mac
from pycarp.core.priority import vrrp_priority
from tests.config.config_helpers import error, parse
from tests.config.toml_helpers import errors, load_text, vhost

SRCIP = IPv4Address("198.51.100.1")
VIP = IPv4Address("198.51.100.100")
VIP6 = IPv6Address("2001:db8::100")
NIC = bytes.fromhex("02fc00000001")


@pytest.fixture(autouse=True)
def any_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """eth0 can carry IPv6 and a macvlan, whatever machine runs these tests."""
    monkeypatch.setattr(machine, "virtual_mac_problem", lambda name: None)
    monkeypatch.setattr(machine, "ipv6_problem", lambda name: None)


def config(**overrides: Any) -> VirtualHostConfig:
    values: dict[str, Any] = {
        "interface": "eth0",
        "srcip": SRCIP,
        "vhid": 7,
        "addresses": (VIP,),
        "protocol": "vrrp3",
        **overrides,
    }
    return VirtualHostConfig(**values)


def refused(**overrides: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        config(**overrides)
    return caught.value


# -- the model's rules -------------------------------------------------------------------


def test_a_minimal_vrrp_host_is_valid() -> None:
    vh = config()
    assert vh.vrrp and (vh.priority, vh.advert_int, vh.preempt_delay) == (100, 100, 0.0)
    assert vh.password == b""


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"addresses": (VIP, VIP6)}, "addresses", "IPv4 or IPv6, not both"),
        ({"priority": 0}, "priority", "0 is outside 1..255"),
        ({"priority": 256}, "priority", "256 is outside 1..255"),
        ({"priority": -1}, "priority", "outside 1..255"),
        ({"advert_int": 0}, "advert_int", "0.0 is outside 0.01..40.95 seconds"),
        ({"advert_int": 4096}, "advert_int", "40.96 is outside 0.01..40.95 seconds"),
        ({"preempt_delay": -1.0}, "preempt_delay", "outside 0..1000"),
        ({"preempt_delay": 1000.5}, "preempt_delay", "outside 0..1000"),
        ({"password": b"secret"}, "password", "no authentication"),
        ({"peers": (IPv4Address("198.51.100.2"),)}, "peers", "unicast VRRP is not supported"),
        ({"mac": "ucarp"}, "mac", "ucarp is CARP's"),
        ({"nomcast": True}, "nomcast", "go to the group"),
        ({"protocol": "vrrp2"}, "protocol", "not one of carp, vrrp3"),
        ({"mac": "bia"}, "mac", "not one of interface, ucarp, virtual"),
        ({"mac": "virtual", "upscript": "/bin/true"}, "mac", "virtual needs pycarp to plumb"),
        ({"mac": "virtual", "plumb": False}, "mac", "virtual needs pycarp to plumb"),
    ],
    ids=[
        "mixed-families",
        "priority-0",
        "priority-256",
        "priority-negative",
        "advert-int-0",
        "advert-int-4096",
        "preempt-delay-negative",
        "preempt-delay-too-long",
        "password",
        "peers",
        "mac-ucarp",
        "nomcast",
        "protocol",
        "mac-unknown",
        "virtual-mac-with-scripts",
        "virtual-mac-without-plumbing",
    ],
)
def test_what_a_vrrp_host_cannot_have(overrides: dict[str, Any], field: str, words: str) -> None:
    exc = refused(**overrides)
    assert exc.fields == (field,)
    assert words in exc.reason


@pytest.mark.parametrize(
    "overrides",
    [
        {"priority": 1},
        {"priority": 255},
        {"advert_int": 1},
        {"advert_int": 4095},
        {"preempt_delay": 1000.0},
        {"srcip": None, "addresses": (VIP6, IPv6Address("2001:db8::101"))},
        {"mac": "virtual"},
        {"mac": "virtual", "upscript": "/bin/true", "plumb": True},
        {"mac": "interface", "upscript": "/bin/true"},
    ],
)
def test_the_edges_of_what_a_vrrp_host_may_have(overrides: dict[str, Any]) -> None:
    vh = config(**overrides)
    assert all(getattr(vh, key) == value for key, value in overrides.items())


def test_a_carp_host_ignores_the_vrrp_fields_and_may_mix_families() -> None:
    vh = config(protocol="carp", password=b"x", priority=0, advert_int=0, addresses=(VIP, VIP6))
    assert not vh.vrrp and vh.versions == (4, 6)


def test_a_carp_host_may_use_the_ucarp_mac_but_not_virtual_without_plumbing() -> None:
    assert config(protocol="carp", mac="ucarp", upscript="/bin/true").mac == "ucarp"
    exc = refused(protocol="carp", mac="virtual", upscript="/bin/true")
    assert exc.fields == ("mac",)


# -- the protocol's defaults --------------------------------------------------------------


def test_vrrp_defaults_to_preempt_and_the_virtual_mac_when_pycarp_plumbs() -> None:
    vh = with_protocol_defaults(config(), given=())
    assert (vh.preempt, vh.mac) == (True, "virtual")


def test_vrrp_with_scripts_keeps_the_interfaces_mac() -> None:
    vh = with_protocol_defaults(config(upscript="/bin/true"), given=("upscript",))
    assert (vh.preempt, vh.mac) == (True, "interface")


def test_vrrp_keeps_what_was_given() -> None:
    base = config(preempt=False, mac="interface")
    vh = with_protocol_defaults(base, given=("preempt", "mac"))
    assert vh is base and (vh.preempt, vh.mac) == (False, "interface")


def test_a_carp_host_is_left_as_it_is() -> None:
    carp = config(protocol="carp", password=b"x")
    assert with_protocol_defaults(carp, given=()) is carp
    assert (carp.preempt, carp.mac) == (False, "interface")


# -- MACs ---------------------------------------------------------------------------------


def test_a_vrrp_hosts_virtual_mac_is_by_family() -> None:
    four = config(mac="virtual")
    six = config(mac="virtual", srcip=None, addresses=(VIP6,))
    assert four.link_mac(4) == four.advert_mac(NIC, 4) == bytes.fromhex("00005e000107")
    assert six.link_mac(6) == six.advert_mac(NIC, 6) == bytes.fromhex("00005e000207")


def test_a_carp_hosts_virtual_mac_is_bsds_in_both_families() -> None:
    carp = config(protocol="carp", password=b"x", mac="virtual", addresses=(VIP, VIP6))
    assert carp.link_mac(4) == carp.link_mac(6) == bytes.fromhex("00005e000107")


def test_the_ucarp_mac_is_for_advertisements_only() -> None:
    carp = config(protocol="carp", password=b"x", mac="ucarp")
    assert carp.advert_mac(NIC, 4) == ucarp_mac(7) == bytes.fromhex("00005e000007")
    assert carp.link_mac(4) is None


def test_the_interfaces_mac_is_the_nics() -> None:
    vh = config(mac="interface")
    assert vh.advert_mac(NIC, 4) == NIC and vh.link_mac(4) is None


# -- the priority advertised --------------------------------------------------------------


def test_the_vrrp_priority_by_condition() -> None:
    vh = config(priority=150, penalty=30)
    assert vrrp_priority(vh) == 150
    assert vrrp_priority(vh, leaving=True) == 0
    assert vrrp_priority(vh, leaving=True, promoted=True) == 0
    assert vrrp_priority(vh, promoted=True) == 255
    assert vrrp_priority(vh, demote=1) == 120
    assert vrrp_priority(vh, demote=5) == 120  # the penalty, not per reason
    assert vrrp_priority(vh, suppressed=True) == 1
    assert vrrp_priority(replace(vh, penalty=200), demote=1) == 1  # at least 1
    assert vrrp_priority(replace(vh, demotion="stepdown"), demote=1) == 150  # held instead


# -- TOML ---------------------------------------------------------------------------------

HEAD = """
[defaults]
interface = "eth0"
srcip = "198.51.100.1"
"""


def test_a_minimal_vrrp_file_loads_with_vrrps_defaults(tmp_path: Path) -> None:
    settings = load_text(tmp_path, HEAD + vhost(7, "198.51.100.100/24", protocol="vrrp3"))
    (vh,) = settings.vhosts
    assert (vh.protocol, vh.vhid, vh.priority, vh.advert_int) == ("vrrp3", 7, 100, 100)
    assert (vh.preempt, vh.mac, vh.password, vh.preempt_delay) == (True, "virtual", b"", 0.0)
    assert vh.networks == ((VIP, 24),)


def test_an_ipv6_vrrp_file_loads(tmp_path: Path) -> None:
    text = '[[vhost]]\ninterface = "eth0"\nvhid = 7\naddresses = ["2001:db8::100/64"]\n'
    (vh,) = load_text(tmp_path, text + 'protocol = "vrrp3"\n').vhosts
    assert (vh.srcip, vh.networks, vh.mac) == (None, ((VIP6, 64),), "virtual")


@pytest.mark.parametrize(
    ("written", "centiseconds"),
    [("1", 100), ("0.1", 10), ("0.03", 3), ("0.01", 1), ("2.5", 250), ("40.95", 4095)],
)
def test_advert_int_is_seconds_in_the_file(tmp_path: Path, written: str, centiseconds: int) -> None:
    text = HEAD + vhost(7, "198.51.100.100", protocol="vrrp3") + f"advert_int = {written}\n"
    (vh,) = load_text(tmp_path, text).vhosts
    assert vh.advert_int == centiseconds


@pytest.mark.parametrize(
    ("written", "words"),
    [
        ("0.015", "advert_int: 0.015 is not a whole number of centiseconds"),
        ("0", "advert_int: 0.0 is outside 0.01..40.95 seconds"),
        ("40.96", "advert_int: 40.96 is outside 0.01..40.95 seconds"),
        ("-1", "advert_int: -1.0 is outside"),
        ('"1"', "advert_int: expected an integer or a float, got a string"),
        ("inf", "advert_int:"),
        ("nan", "advert_int:"),
        ("1e307", "advert_int:"),
    ],
)
def test_bad_advert_ints_are_refused(tmp_path: Path, written: str, words: str) -> None:
    """TOML has inf and nan; a number past a float's range once multiplied is as bad."""
    text = HEAD + vhost(7, "198.51.100.100", protocol="vrrp3") + f"advert_int = {written}\n"
    (problem,) = errors(tmp_path, text)
    assert problem.startswith("vhost[0] (vhid 7): ") and words in problem, problem


def test_priority_preempt_delay_and_mac_are_read(tmp_path: Path) -> None:
    keys = {"protocol": "vrrp3", "priority": 254, "preempt_delay": 2.5, "mac": "interface"}
    (vh,) = load_text(tmp_path, HEAD + vhost(7, "198.51.100.100", **keys)).vhosts
    assert (vh.priority, vh.preempt_delay, vh.mac) == (254, 2.5, "interface")
    assert isinstance(vh.preempt_delay, float)


def test_preempt_false_is_kept(tmp_path: Path) -> None:
    text = HEAD + vhost(7, "198.51.100.100", protocol="vrrp3", preempt=False)
    (vh,) = load_text(tmp_path, text).vhosts
    assert vh.preempt is False


def test_with_scripts_a_vrrp_host_keeps_the_nics_mac(tmp_path: Path) -> None:
    script = tmp_path / "up"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    text = HEAD + vhost(7, "198.51.100.100", protocol="vrrp3", upscript=str(script))
    (vh,) = load_text(tmp_path, text).vhosts
    assert (vh.mac, vh.plumbs) == ("interface", False)


def test_defaults_password_and_carp_timing_serve_only_the_carp_hosts(tmp_path: Path) -> None:
    text = HEAD + 'password = "secret"\nadvbase = 2\nadvskew = 50\n'
    text += vhost(7, "198.51.100.100", protocol="vrrp3")
    text += vhost(8, "198.51.100.101")
    vrrp_host, carp_host = load_text(tmp_path, text).vhosts
    assert (vrrp_host.password, vrrp_host.advbase, vrrp_host.advskew) == (b"", 1, 0)
    assert (carp_host.password, carp_host.advbase, carp_host.advskew) == (b"secret", 2, 50)


def test_a_defaults_password_file_is_not_read_for_a_vrrp_host(tmp_path: Path) -> None:
    text = HEAD + 'password_file = "missing"\n' + vhost(7, "198.51.100.100", protocol="vrrp3")
    (vh,) = load_text(tmp_path, text).vhosts
    assert vh.password == b""


def test_a_vrrp_protocol_from_defaults_applies_to_every_host(tmp_path: Path) -> None:
    text = HEAD + 'protocol = "vrrp3"\npassword = "secret"\n'
    text += vhost(7, "198.51.100.100") + vhost(8, "198.51.100.101", priority=200)
    first, second = load_text(tmp_path, text).vhosts
    assert first.vrrp and second.vrrp and second.priority == 200
    assert first.password == second.password == b""


@pytest.mark.parametrize(
    ("keys", "key"),
    [
        ({"password": "secret"}, "password"),
        ({"password_file": "secret"}, "password_file"),
        ({"advbase": 2}, "advbase"),
        ({"advskew": 10}, "advskew"),
    ],
)
def test_a_vrrp_hosts_own_carp_keys_are_errors(
    tmp_path: Path, keys: dict[str, Any], key: str
) -> None:
    text = HEAD + vhost(7, "198.51.100.100", protocol="vrrp3", **keys)
    assert errors(tmp_path, text) == [
        f"vhost[0] (vhid 7): {key}: is CARP's: a VRRP host has priority and advert_int"
    ]


def test_a_carp_host_still_needs_a_password(tmp_path: Path) -> None:
    (problem,) = errors(tmp_path, HEAD + vhost(8, "198.51.100.101"))
    assert "missing required keys: password or password_file" in problem


def test_virtual_mac_with_mac_is_an_error(tmp_path: Path) -> None:
    text = HEAD + 'password = "s"\n' + vhost(7, "198.51.100.100", virtual_mac=True, mac="virtual")
    assert errors(tmp_path, text) == [
        "vhost[0] (vhid 7): mac: give mac or virtual_mac (the same as mac = ucarp)"
    ]


def test_virtual_mac_means_the_ucarp_mac_which_vrrp_refuses(tmp_path: Path) -> None:
    text = HEAD + vhost(7, "198.51.100.100", protocol="vrrp3", virtual_mac=True)
    (problem,) = errors(tmp_path, text)
    assert "virtual_mac: is CARP's" in problem
    carp = HEAD + 'password = "s"\n' + vhost(8, "198.51.100.101", virtual_mac=True)
    (vh,) = load_text(tmp_path, carp).vhosts
    assert vh.mac == "ucarp"


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ({"priority": 0}, "priority: 0 is outside 1..255"),
        ({"priority": 256}, "priority: 256 is outside 1..255"),
        ({"preempt_delay": 1001}, "preempt_delay: 1001.0 is outside 0..1000"),
        ({"mac": "ucarp"}, "mac: ucarp is CARP's"),
        ({"nomcast": True}, "nomcast: VRRP advertisements go to the group"),
        ({"peers": ["198.51.100.2"]}, "peers: unicast VRRP is not supported"),
        ({"protocol": "vrrp", "password": "s"}, "protocol: 'vrrp' is not one of carp, vrrp3"),
    ],
)
def test_the_models_vrrp_errors_name_the_key(
    tmp_path: Path, keys: dict[str, Any], words: str
) -> None:
    keys = {"protocol": "vrrp3", **keys}
    text = HEAD + vhost(7, "198.51.100.100", **keys).replace("'", '"')
    (problem,) = errors(tmp_path, text)
    assert problem.startswith("vhost[0] (vhid 7): ") and words in problem, problem


def test_mixed_families_in_a_vrrp_host_are_an_error(tmp_path: Path) -> None:
    text = HEAD + vhost(7, "198.51.100.100", "2001:db8::100", protocol="vrrp3")
    (problem,) = errors(tmp_path, text)
    assert "addresses: a VRRP virtual router is IPv4 or IPv6, not both" in problem


def test_a_virtual_mac_this_machine_cannot_make_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(machine, "virtual_mac_problem", lambda name: f"{name}: no macvlan")
    (problem,) = errors(tmp_path, HEAD + vhost(7, "198.51.100.100", protocol="vrrp3"))
    assert problem == "vhost[0] (vhid 7): mac: eth0: no macvlan"


# -- the command line ---------------------------------------------------------------------

VRRP_ARGS = ["-i", "eth0", "-s", "198.51.100.1", "-v", "7", "-a", "198.51.100.100"]
VRRP_ARGS += ["--protocol=vrrp3"]


@pytest.fixture
def no_password_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYCARP_PASSWORD", raising=False)


@pytest.mark.usefixtures("no_password_variable")
def test_a_minimal_vrrp_command_line_needs_no_password() -> None:
    (vh,) = parse(*VRRP_ARGS).vhosts
    assert (vh.protocol, vh.vhid, vh.priority, vh.advert_int) == ("vrrp3", 7, 100, 100)
    assert (vh.preempt, vh.mac, vh.password) == (True, "virtual", b"")


@pytest.mark.usefixtures("no_password_variable")
def test_the_vrrp_options_are_read() -> None:
    args = ["--priority=0x20", "--advert-int=0.1", "--preempt-delay=2.5", "--mac=interface"]
    (vh,) = parse(*VRRP_ARGS, *args).vhosts
    assert (vh.priority, vh.advert_int, vh.preempt_delay, vh.mac) == (32, 10, 2.5, "interface")


@pytest.mark.usefixtures("no_password_variable")
def test_with_an_upscript_a_vrrp_host_keeps_the_nics_mac(tmp_path: Path) -> None:
    script = tmp_path / "up"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    (vh,) = parse(*VRRP_ARGS, f"--upscript={script}").vhosts
    assert (vh.mac, vh.preempt) == ("interface", True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--advert-int=0.015"], "--advert-int: 0.015 is not a whole number of centiseconds"),
        (["--advert-int=0"], "--advert-int: 0.0 is outside 0.01..40.95 seconds"),
        (["--advert-int=41"], "--advert-int: 41.0 is outside 0.01..40.95 seconds"),
        (["--advert-int=nan"], "--advert-int: 'nan' is not a number"),
        (["--advert-int=fast"], "--advert-int: 'fast' is not a number"),
        (["--priority=0"], "--priority: 0 is outside 1..255"),
        (["--priority=256"], "--priority: 256 is outside 1..255"),
        (["--preempt-delay=-1"], "--preempt-delay: -1.0 is outside 0..1000"),
        (["-p", "secret"], "--pass: VRRPv3 has no authentication (RFC 5798, 9.2)"),
        (["--mac=ucarp"], "--mac: ucarp is CARP's"),
        (["--nomcast"], "--nomcast: VRRP advertisements go to the group"),
        (["--protocol=vrrp2", "-p", "s"], "--protocol: 'vrrp2' is not one of carp, vrrp3"),
        (["--virtual-mac"], "--virtual-mac: is CARP's"),
        (["-k", "10"], "--advskew: is CARP's"),
    ],
)
@pytest.mark.usefixtures("no_password_variable")
def test_bad_vrrp_command_lines(args: list[str], message: str) -> None:
    assert message in error(*VRRP_ARGS, *args)


def test_the_password_variable_is_not_a_vrrp_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYCARP_PASSWORD", "secret")
    (vh,) = parse(*VRRP_ARGS).vhosts
    assert vh.password == b""
    (carp,) = parse(*VRRP_ARGS[:-1]).vhosts  # the same without --protocol: CARP uses it
    assert carp.password == b"secret"


@pytest.mark.usefixtures("no_password_variable")
def test_carp_on_the_command_line_still_needs_a_password() -> None:
    assert "missing required options: --pass or --passfile" in error(*VRRP_ARGS[:-1])
    assert "--pass" in error(*VRRP_ARGS[:-1], "--protocol=carp")
