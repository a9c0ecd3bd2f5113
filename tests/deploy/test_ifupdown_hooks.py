"""pycarp render ifupdown: the hooks written, and what they make of a stanza's variables.

The hooks run here as ifupdown runs them (a clean environment: the stanza's
IF_* variables, IFACE, MODE, PHASE, PATH) against a stand-in pycarp that
writes down its arguments and environment and fails, so nothing starts; and
against the real pycarp for values it must refuse. The end-to-end runs with
the real ifup and ifdown are in tests/netns/test_ifupdown_netns.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from pycarp.deploy import ifupdown
from pycarp.deploy.command import main
from pycarp.deploy.common import pycarp_path
from pycarp.platform.rundir import run_directory

STANZA = {
    "IF_ADDRESS": "198.51.100.2",
    "IF_NETMASK": "255.255.255.0",
    "IF_UCARP_VID": "3",
    "IF_UCARP_VIP": "198.51.100.100",
    "IF_UCARP_PASSWORD": "secret",
}
FAKE_PYCARP = """#!/bin/sh
{{ printf '%s\\n' "$@"; echo ---; env | sort; }} > {record}
exit 1
"""
ONE_LINE = """#!/bin/sh
echo "$0 $*" >> {record}
exit {status}
"""


class Hooks:
    """The hooks rendered into a directory, run with a stand-in pycarp and ifupdown."""

    def __init__(self, top: Path, *, program: str | None = None) -> None:
        self.top = top
        self.dir = top / "network"
        self.bin = top / "bin"
        self.record = top / "pycarp-called"
        self.calls = top / "calls"
        self.bin.mkdir(parents=True)
        for sub in ("if-up.d", "if-down.d"):
            (self.dir / sub).mkdir(parents=True)
        fake = self.script("fake-pycarp", FAKE_PYCARP.format(record=self.record))
        assert main(["ifupdown", "--dir", str(self.dir), "--pycarp", program or str(fake)]) == 0
        self.knows_alias(False)
        for name in ("ifup", "ifdown"):
            self.script(name, ONE_LINE.format(record=self.calls, status=0))

    def script(self, name: str, text: str) -> Path:
        path = self.bin / name
        path.write_text(text)
        path.chmod(0o755)
        return path

    def knows_alias(self, known: bool) -> None:
        """Whether the stand-in ifquery knows a stanza <interface>:ucarp."""
        self.script("ifquery", ONE_LINE.format(record=self.calls, status=0 if known else 1))

    def run(
        self, phase: str, variables: dict[str, str], *args: str
    ) -> subprocess.CompletedProcess[str]:
        hook = self.dir / ("if-up.d" if phase == "post-up" else "if-down.d") / "pycarp"
        env = {
            "PATH": f"{self.bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "IFACE": "eth0",
            "LOGICAL": "eth0",
            "ADDRFAM": "inet",
            "METHOD": "static",
            "MODE": "start" if phase == "post-up" else "stop",
            "PHASE": phase,
            "VERBOSITY": "0",
            **variables,
        }
        return subprocess.run(
            [str(hook), *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    def called(self) -> tuple[list[str], dict[str, str]] | None:
        """The stand-in pycarp's arguments and environment, None if it was not run."""
        if not self.record.exists():
            return None
        argv, _, env = self.record.read_text().partition("---\n")
        return argv.splitlines(), dict(line.split("=", 1) for line in env.splitlines())


@pytest.fixture
def hooks(tmp_path: Path) -> Hooks:
    return Hooks(tmp_path)


def test_render_writes_both_hooks_executable_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ifupdown", "--dir", str(tmp_path)]) == 0
    paths = [tmp_path / "if-up.d" / "pycarp", tmp_path / "if-down.d" / "pycarp"]
    assert capsys.readouterr().err.splitlines() == [f"wrote {path}" for path in paths]
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
        text = path.read_text()
        assert text.startswith("#!/bin/sh\n") and "@" not in text.replace("$@", "")
        assert subprocess.run(["sh", "-n", str(path)], check=False).returncode == 0
    assert f"PYCARP={pycarp_path()}\n" in paths[0].read_text()
    assert f"HOOKS={tmp_path}\n" in paths[0].read_text()

    assert main(["ifupdown", "--dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"pycarp render: error: {paths[0]} already exists (--force replaces it)\n"
    )
    assert main(["ifupdown", "--dir", str(tmp_path), "--force"]) == 0


def test_render_print_and_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    assert main(["ifupdown", "--dir", str(missing), "--print"]) == 0
    out = capsys.readouterr().out
    assert "# ===== if-up.d/pycarp =====\n#!/bin/sh\n" in out
    assert "# ===== if-down.d/pycarp =====\n#!/bin/sh\n" in out
    assert not missing.exists()
    assert main(["ifupdown", "--dir", str(missing)]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"pycarp render: error: --dir: {missing} is not a directory (is ifupdown installed?)\n"
    )


def test_render_warns_of_debians_ucarp_hook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_ucarp = tmp_path / "ucarp"
    fake_ucarp.write_text("#!/bin/sh\n")
    fake_ucarp.chmod(0o755)
    monkeypatch.setattr(ifupdown, "DEBIAN_UCARP", str(fake_ucarp))
    (tmp_path / "if-up.d").mkdir()
    debian_hook = tmp_path / "if-up.d" / "ucarp"
    debian_hook.write_text("#!/bin/sh\n")
    debian_hook.chmod(0o755)
    assert main(["ifupdown", "--dir", str(tmp_path)]) == 0
    assert f"warning: {debian_hook} starts ucarp for the same stanzas" in capsys.readouterr().err


def test_the_stanza_becomes_ucarps_options_and_the_password_stays_out_of_argv(
    hooks: Hooks,
) -> None:
    variables = STANZA | {
        "IF_ADDRESS": "198.51.100.2/24",  # the prefix, if ifupdown ever leaves it, is cut
        "IF_UCARP_ADVSKEW": "10",
        "IF_UCARP_ADVBASE": "2",
        "IF_UCARP_DEADRATIO": "4",
        "IF_UCARP_MASTER": "Yes",
        "IF_UCARP_NOMCAST": "on",
        "IF_UCARP_XPARAM": "two words",
        "IF_UCARP_UPSCRIPT": "/etc/vip-up",
        "IF_UCARP_DOWNSCRIPT": "/etc/vip-down",
    }
    done = hooks.run("post-up", variables)
    assert done.returncode == 1
    assert "if-up.d/pycarp: eth0: pycarp did not start for ucarp-vid 3" in done.stderr
    called = hooks.called()
    assert called is not None
    argv, env = called
    socket = os.path.join(run_directory(), "eth0-3.sock")  # the sh computes pycarp's own
    assert argv == [
        "--interface=eth0", "--srcip=198.51.100.2", "--vhid=3", "--addr=198.51.100.100",
        "--daemonize", "--shutdown", f"--control-socket={socket}", "--advskew=10",
        "--advbase=2", "--deadratio=4", "--preempt", "--nomcast", "--xparam=two words",
        "--upscript=/etc/vip-up", "--downscript=/etc/vip-down",
    ]  # fmt: skip
    # a clean environment: nothing of the stanza's but the password, as PYCARP_PASSWORD
    assert set(env) - {"PWD", "SHLVL", "_"} == {"PATH", "PYCARP_PASSWORD"}, env
    assert env["PYCARP_PASSWORD"] == "secret"


@pytest.mark.parametrize("value", ["no", "OFF", "false", "0"])
def test_a_no_is_no_preempt(hooks: Hooks, value: str) -> None:
    hooks.run("post-up", STANZA | {"IF_UCARP_MASTER": value, "IF_UCARP_NOMCAST": value})
    called = hooks.called()
    assert called is not None
    assert not {"--preempt", "--nomcast"} & set(called[0])
    # no scripts: pycarp plumbs the VIP itself
    assert not [a for a in called[0] if a.startswith(("--upscript", "--downscript"))]


def test_with_an_alias_stanza_the_hooks_are_the_scripts(hooks: Hooks) -> None:
    """Debian's <interface>:ucarp stanza: the hooks then bring it up and down."""
    hooks.knows_alias(True)
    hooks.run("post-up", STANZA)
    called = hooks.called()
    assert called is not None
    assert called[0][-2:] == [
        f"--upscript={hooks.dir / 'if-up.d' / 'pycarp'}",
        f"--downscript={hooks.dir / 'if-down.d' / 'pycarp'}",
    ]
    assert hooks.calls.read_text() == f"{hooks.bin / 'ifquery'} eth0:ucarp\n"

    # as pycarp runs them: "<script> <interface> <vip>"
    up = hooks.dir / "if-up.d" / "pycarp"
    down = hooks.dir / "if-down.d" / "pycarp"
    env = {"PATH": f"{hooks.bin}:/usr/bin:/bin"}
    for script in (up, down):
        done = subprocess.run(
            [str(script), "eth0", "198.51.100.100"], env=env, timeout=10, check=False
        )
        assert done.returncode == 0
    assert hooks.calls.read_text().splitlines()[1:] == [
        f"{hooks.bin / 'ifup'} eth0:ucarp",
        f"{hooks.bin / 'ifdown'} eth0:ucarp",
    ]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"IF_UCARP_VID": "3"},
            "missing ucarp-vip ucarp-password (a ucarp stanza needs ucarp-vid, ucarp-vip and "
            "ucarp-password)",
        ),
        (STANZA | {"IF_UCARP_VID": "0x3"}, "ucarp-vid: '0x3' is not a number"),
        (STANZA | {"IF_ADDRESS": ""}, "no address: pycarp advertises from the stanza's own"),
        (
            STANZA | {"IF_UCARP_MASTER": "maybe"},
            "ucarp-master: 'maybe' is not yes or no (nor on/off, true/false, 1/0)",
        ),
        (
            STANZA | {"IF_UCARP_UPSCRIPT": "/etc/vip-up"},
            "give both ucarp-upscript and ucarp-downscript, or neither",
        ),
    ],
)
def test_a_bad_stanza_is_one_clear_line_and_nothing_runs(
    hooks: Hooks, variables: dict[str, str], message: str
) -> None:
    done = hooks.run("post-up", variables)
    assert done.returncode == 1
    assert done.stderr.startswith(f"if-up.d/pycarp: eth0: {message}"), done.stderr
    assert done.stderr.count("\n") == 1
    assert hooks.called() is None


def test_debians_ucarp_hook_beside_it_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ucarp = tmp_path / "ucarp"
    fake_ucarp.write_text("#!/bin/sh\n")
    fake_ucarp.chmod(0o755)
    monkeypatch.setattr(ifupdown, "DEBIAN_UCARP", str(fake_ucarp))
    hooks = Hooks(tmp_path / "t")
    debian_hook = hooks.dir / "if-up.d" / "ucarp"
    debian_hook.write_text("#!/bin/sh\n")
    debian_hook.chmod(0o755)
    done = hooks.run("post-up", STANZA)
    assert done.returncode == 1
    assert f"Debian's {debian_hook} starts ucarp for this stanza too" in done.stderr
    assert hooks.called() is None


@pytest.mark.parametrize(("iface", "phase"), [("lo", "post-up"), ("--all", "pre-down")])
def test_other_stanzas_are_left_alone(hooks: Hooks, iface: str, phase: str) -> None:
    done = hooks.run(phase, {"IFACE": iface})
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert hooks.called() is None


def test_pycarp_itself_checks_the_values(tmp_path: Path) -> None:
    """The real pycarp refuses what is out of range, in its own words; nothing starts."""
    hooks = Hooks(tmp_path, program=pycarp_path())
    done = hooks.run("post-up", STANZA | {"IFACE": "lo", "IF_UCARP_ADVSKEW": "300"})
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == "pycarp: error: --advskew: 300 is outside 0..255"
    assert "if-up.d/pycarp: lo: pycarp did not start for ucarp-vid 3" in done.stderr
    assert "Traceback" not in done.stderr
