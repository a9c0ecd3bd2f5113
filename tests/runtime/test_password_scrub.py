"""--pass kept out of ps: which words go, and the re-executed process sees the original."""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from ipaddress import IPv4Address

import pytest

from pycarp.config.settings import DaemonSettings
from pycarp.core.config import VirtualHostConfig
from pycarp.runtime.secrets import (
    PASSWORD_FD_ENV,
    VISIBLE_WARNING,
    script_environment,
    without_passwords,
)

SECRET = "s3cr3t-word"


@pytest.mark.parametrize(
    ("args", "hidden"),
    [
        (["--pass", SECRET, "-v", "1"], ["-v", "1"]),
        ([f"--pass={SECRET}", "-v", "1"], ["-v", "1"]),
        (["-p", SECRET], []),
        ([f"-p{SECRET}"], []),
        ([f"-Pp{SECRET}", "-B"], ["-P", "-B"]),
        (["-Pp", SECRET, "-a", "1"], ["-P", "-a", "1"]),
        (["-pp"], []),  # the password "p"
        (["--pass", "", "-v", "1"], ["-v", "1"]),
        (["--pass", "a", "--passfile", "f", "-Bp", "b"], ["--passfile", "f", "-B"]),
    ],
)
def test_the_password_words_are_left_out(args: list[str], hidden: list[str]) -> None:
    assert without_passwords(args) == hidden


@pytest.mark.parametrize(
    "args",
    [
        ["--passfile", "f", "-v", "1"],  # nothing to hide
        ["--check-config", "f", "-p", SECRET],  # exits at once: not re-executed
        ["--help", "-p", SECRET],
        ["-p"],  # does not parse: the normal parse says why
        ["-p", SECRET, "--bogus"],
        ["-p", SECRET, "--", "x"],
    ],
)
def test_nothing_to_do(args: list[str]) -> None:
    assert without_passwords(args) is None


# A stand-in for pycarp's main: re-executes, then reports what the new image sees.
PROBE = """
import json, logging, os, sys
from pycarp.runtime.secrets import reexec_without_password, warn_visible_password
logged = []
handler = logging.Handler()
handler.emit = lambda record: logged.append(record.getMessage())
logging.getLogger("pycarp").addHandler(handler)
args = reexec_without_password(sys.argv[1:])
with open("/proc/self/cmdline", "rb") as f:
    cmdline = f.read().decode()
with open("/proc/self/environ", "rb") as f:
    environ = f.read().decode()
fds = sorted(os.listdir("/proc/self/fd"))
warn_visible_password()
warn_visible_password()
print(json.dumps({"args": args, "cmdline": cmdline, "pid": os.getpid(), "fds": fds,
                  "env_now": PASSWORD_FD in os.environ, "environ": environ, "logged": logged}))
""".replace("PASSWORD_FD", repr(PASSWORD_FD_ENV))


def _probe(*args: str) -> tuple[dict[str, object], str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True
    )
    seen: dict[str, object] = json.loads(done.stdout)
    return seen, done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_new_image_has_the_arguments_but_ps_does_not() -> None:
    args = ["-i", "eth0", "-Pp", SECRET, "--vhid=1", f"--pass={SECRET}x"]
    seen, stderr = _probe(*args)
    assert seen["args"] == args
    assert SECRET not in str(seen["cmdline"])
    assert "-i\0eth0\0-P\0--vhid=1" in str(seen["cmdline"])
    assert seen["env_now"] is False  # scripts do not inherit the descriptor's number
    assert SECRET not in str(seen["environ"])
    assert stderr == f"pycarp: warning: {VISIBLE_WARNING}\n"  # once, not twice
    assert seen["logged"] == [VISIBLE_WARNING]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_pipe_is_closed_after_reading() -> None:
    plain, _ = _probe("-v", "1")
    hidden, _ = _probe("-v", "1", "-p", SECRET)
    assert hidden["fds"] == plain["fds"]


def test_without_a_password_nothing_happens() -> None:
    seen, stderr = _probe("--passfile", "f")
    assert seen["args"] == ["--passfile", "f"]
    assert stderr == ""


def test_a_forged_descriptor_is_not_trusted() -> None:
    env = {PASSWORD_FD_ENV: "0"}  # stdin, not a pipe of ours
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "-v", "1"],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
    )
    assert json.loads(done.stdout)["args"] == ["-v", "1"]
    assert done.stderr == ""


def test_the_pycarp_command_still_reports_errors_the_same_way() -> None:
    base = ["-i", "lo", "-s", "203.0.113.1", "-a", "203.0.113.2"]
    runs = [
        subprocess.run(
            [sys.executable, "-m", "pycarp", *base, *password, "--vhid=300"],
            capture_output=True,
            text=True,
            check=False,
        )
        for password in (["--pass", SECRET], [f"--pass={SECRET}"])
    ]
    for done in runs:
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == "pycarp: error: --vhid: 300 is outside 1..255\n"


def _settings() -> DaemonSettings:
    vhost = VirtualHostConfig(
        interface="eth0",
        srcip=IPv4Address("198.51.100.1"),
        vhid=1,
        addresses=(IPv4Address("198.51.100.10"),),
        password=SECRET.encode(),
    )
    return DaemonSettings(vhosts=(vhost,), control_socket=None)


def test_reprs_leave_the_password_out() -> None:
    settings = _settings()
    vhost = settings.vhosts[0]
    for text in (repr(vhost), repr(settings), str(settings)):
        assert SECRET not in text and "password" not in text
    assert vhost.password == SECRET.encode()  # still compared and used


def test_a_traceback_with_its_locals_leaves_the_password_out() -> None:
    settings = _settings()

    def fail(settings: DaemonSettings) -> None:
        config = settings.vhosts[0]
        raise RuntimeError(f"{config.interface}: forced")

    try:
        fail(settings)
    except RuntimeError as exc:
        shown = "".join(
            traceback.TracebackException.from_exception(exc, capture_locals=True).format()
        )
    assert "forced" in shown and "VirtualHostConfig(" in shown
    assert SECRET not in shown


def test_scripts_get_no_password_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYCARP_PASSWORD", SECRET)
    monkeypatch.setenv("PYCARP_SOMETHING", "kept")
    env = script_environment()
    assert "PYCARP_PASSWORD" not in env and SECRET not in str(env)
    assert env["PYCARP_SOMETHING"] == "kept"
