"""TOML config files: the documented example, valid files, and the file itself."""

from __future__ import annotations

import grp
import os
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pycarp.config.settings import DaemonSettings
from pycarp.config.tomlfile import ConfigErrors, load_toml, parse_toml
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import ConfigError
from tests.config.config_helpers import executable
from tests.config.toml_helpers import HEAD, as_the_docs_host, doc_block, load_text, vhost

# --- the documented example ---------------------------------------------------


def test_documented_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    as_the_docs_host(monkeypatch)
    settings = load_text(tmp_path, doc_block("toml"))
    assert (settings.facility, settings.debug, settings.daemonize) == ("daemon", False, False)
    assert settings.control_socket == "/run/pycarp/pycarp.sock"
    web, db, other = settings.vhosts
    assert web == VirtualHostConfig(
        interface="eth0",
        srcip=IPv4Address("198.51.100.201"),
        vhid=101,
        addresses=(IPv4Address("198.51.100.200"), IPv4Address("198.51.100.210")),
        prefixes=(24, 32),
        password=b"changeme",
        preempt=True,
    )
    assert (db.vhid, db.advskew, db.xparam, db.shutdown) == (102, 100, "db", True)
    assert (db.upscript, db.downscript) == ("/etc/pycarp/vip-up.sh", "/etc/pycarp/vip-down.sh")
    assert not db.plumbs
    assert (other.interface, other.vhid, other.password) == ("eth1", 101, b"other-secret")
    assert other.srcip == IPv4Address("203.0.113.201")
    assert other.neutral and other.plumbs


# --- valid files -----------------------------------------------------------------


def test_defaults_and_overrides(tmp_path: Path) -> None:
    settings = load_text(
        tmp_path,
        HEAD
        + "advskew = 50\n"
        + vhost(1, "10.0.0.100")
        + vhost(2, "10.0.0.101/24", "10.0.0.102", advskew=0, srcip="10.0.0.2"),
    )
    first, second = settings.vhosts
    assert (first.advskew, first.srcip, first.prefixes) == (50, IPv4Address("10.0.0.1"), (32,))
    assert (second.advskew, second.srcip) == (0, IPv4Address("10.0.0.2"))
    assert second.networks == ((IPv4Address("10.0.0.101"), 24), (IPv4Address("10.0.0.102"), 32))
    # what neither table gives keeps VirtualHostConfig's default
    assert (first.advbase, first.deadratio, first.group) == (1, 3, IPv4Address("224.0.0.18"))
    assert settings == DaemonSettings(vhosts=settings.vhosts)  # process defaults


def test_everything_can_be_in_defaults(tmp_path: Path) -> None:
    text = HEAD + "vhid = 9\naddresses = ['10.0.0.9']\n[[vhost]]\n"
    (only,) = load_text(tmp_path, text).vhosts
    assert (only.vhid, only.addresses) == (9, (IPv4Address("10.0.0.9"),))


def test_toml_integer_forms(tmp_path: Path) -> None:
    text = HEAD + "[[vhost]]\nvhid = 0x65\naddresses = ['10.0.0.9']\ndeadratio = 1_000\n"
    (only,) = load_text(tmp_path, text).vhosts
    assert (only.vhid, only.deadratio) == (101, 1000)


def test_255_vhids_on_one_interface(tmp_path: Path) -> None:
    hosts = "".join(vhost(n, f"10.1.{n}.1") for n in range(1, 256))
    settings = load_text(tmp_path, HEAD + hosts + vhost(1, "10.2.0.1", interface="eth1"))
    assert len(settings.vhosts) == 256
    assert {v.vhid for v in settings.vhosts if v.interface == "eth0"} == set(range(1, 256))


def test_process_options(tmp_path: Path) -> None:
    text = 'facility = "LOCAL3"\ndebug = true\ndaemonize = true\ncontrol_socket = "none"\n'
    settings = load_text(tmp_path, text + HEAD + vhost(1, "10.0.0.100"))
    assert (settings.facility, settings.debug, settings.daemonize) == ("local3", True, True)
    assert settings.control_socket is None


def test_control_group(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    settings = load_text(tmp_path, f"control_group = {group!r}\n" + HEAD + vhost(1, "10.0.0.100"))
    assert settings.control_group == group
    assert load_text(tmp_path, HEAD + vhost(1, "10.0.0.100")).control_group is None


def test_relative_paths_are_from_the_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable(tmp_path / "up.sh")
    (tmp_path / "pw").write_bytes(b"fromfile\r\nsecond\n")
    monkeypatch.chdir("/")
    text = 'control_socket = "run/p.sock"\n' + HEAD.replace('password = "secret"', "")
    text += vhost(1, "10.0.0.100", upscript="up.sh", password_file="pw")
    settings = load_text(tmp_path, text)
    (only,) = settings.vhosts
    assert settings.control_socket == str(tmp_path / "run" / "p.sock")
    assert only.upscript == str(tmp_path / "up.sh")
    assert only.password == b"fromfile\r"  # the first line, as ucarp reads --passfile


def test_a_vhost_password_replaces_either_of_defaults(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("fromfile\n")
    text = HEAD.replace('password = "secret"', 'password_file = "pw"')
    text += vhost(1, "10.0.0.100") + vhost(2, "10.0.0.101", password="typed")
    first, second = load_text(tmp_path, text).vhosts
    assert (first.password, second.password) == (b"fromfile", b"typed")


def test_password_is_utf8(tmp_path: Path) -> None:
    text = HEAD.replace("secret", "café") + vhost(1, "10.0.0.100")
    assert load_text(tmp_path, text).vhosts[0].password == "café".encode()


def test_parse_toml_from_text() -> None:
    settings = parse_toml(HEAD + vhost(1, "10.0.0.100"), name="inline.toml")
    assert settings.vhosts[0].vhid == 1
    with pytest.raises(ConfigErrors, match=r"^inline\.toml \(TOML\): no \[\[vhost\]\] table"):
        parse_toml(HEAD, name="inline.toml")


# --- the file itself -------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigErrors) as caught:
        load_toml(path)
    assert str(caught.value) == f"{path} (TOML): cannot read: No such file or directory"


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as caught:
        load_text(tmp_path, HEAD + "[[vhost]]\nvhid 1\n")
    assert str(caught.value) == (
        f"{tmp_path}/pycarp.toml:7 (TOML): syntax error at column 6: "
        "Expected '=' after a key in a key/value pair"
    )


def test_syntax_error_at_the_end(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors, match=r"pycarp\.toml \(TOML\): syntax error: Invalid value"):
        load_text(tmp_path, "a = ")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "pycarp.toml"
    path.write_bytes(b"# ok\n# caf\xe9\n")
    with pytest.raises(ConfigErrors, match=r"pycarp\.toml:2 \(TOML\): not UTF-8 \(byte 0xe9\)$"):
        load_toml(path)


def test_config_errors_is_a_config_error() -> None:
    assert issubclass(ConfigErrors, ConfigError)  # what the daemon's reload catches
