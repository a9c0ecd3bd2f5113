"""TOML health checks, demotion groups, a vhost's demotion and the metrics endpoint."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from pycarp.cli import main as cli
from pycarp.config import load, machine
from pycarp.config.settings import DaemonSettings, MetricsAddress
from pycarp.config.tomlchecks import parse_metrics
from pycarp.config.tomlkeys import CHECK_KEYS
from pycarp.core.checkconfig import CheckConfig
from pycarp.core.errors import ConfigError
from pycarp.platform.rundir import run_directory
from tests.config.config_helpers import BASE, executable
from tests.config.toml_helpers import DOC, HEAD, as_the_docs_host, errors, load_text, vhost

WEB_URL = "http://198.51.100.10:8080/health"


def check(name: str, kind: str, **keys: object) -> str:
    """A [[check]] table; values are written as JSON, which TOML reads alike here."""
    lines = ["[[check]]", f'name = "{name}"', f'type = "{kind}"']
    lines += [f"{key} = {_toml(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


WEB = check("web", "http", url=WEB_URL)


def document(
    *,
    top: str = "",
    defaults: str = 'track = ["web"]\n',
    host: str = "",
    checks: str = WEB,
) -> str:
    """Process options, HEAD's [defaults] and more, one [[vhost]], then the checks."""
    return top + HEAD + defaults + vhost(1, "10.0.0.100") + host + checks


def section(title: str) -> str:
    """The text of docs/config.md from a '## title' to the next '## ' heading."""
    text = DOC.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def block(text: str, kind: str) -> str:
    return str(re.findall(rf"```{kind}\n(.*?)```", text, flags=re.DOTALL)[0])


# --- the model's fields and the file's keys ---------------------------------------


def test_every_check_field_is_a_key() -> None:
    assert set(CHECK_KEYS) == {field.name for field in dataclasses.fields(CheckConfig)}


# --- good files -------------------------------------------------------------------


def test_a_good_file_into_the_model(tmp_path: Path) -> None:
    top = 'metrics = "127.0.0.1:9406"\ngroups = ["maintenance"]\n'
    checks = (
        check("web", "http", url=WEB_URL, expect=204, interval=2, timeout=1.5, rise=3, fall=4)
        + check("port", "tcp", host="198.51.100.10", port=8080, group="web")
        + check("db", "command", command=["/bin/true", "-q"])
        + check("ready", "command", command="test -e /etc/hostname", shell=True, group="db")
        + check("link", "carrier", interface="eth1", interval=0.5)
    )
    defaults = 'track = ["web", "db", "maintenance", "link"]\npenalty = 50\n'
    settings = load_text(tmp_path, document(top=top, defaults=defaults, checks=checks))
    assert settings.checks == (
        CheckConfig(
            "web", "http", interval=2.0, timeout=1.5, rise=3, fall=4, url=WEB_URL, expect=204
        ),
        CheckConfig("port", "tcp", group="web", host="198.51.100.10", port=8080),
        CheckConfig("db", "command", command=("/bin/true", "-q")),
        CheckConfig("ready", "command", group="db", command=("test -e /etc/hostname",), shell=True),
        CheckConfig("link", "carrier", interval=0.5, interface="eth1"),
    )
    assert type(settings.checks[0].interval) is float  # an integer in the file
    assert [c.demotes for c in settings.checks] == ["web", "web", "db", "db", "link"]
    assert settings.groups == ("maintenance",)
    assert settings.metrics == MetricsAddress("127.0.0.1", 9406)
    (only,) = settings.vhosts
    assert (only.track, only.demotion, only.penalty) == (
        ("web", "db", "maintenance", "link"),
        "penalty",
        50,
    )


def test_defaults(tmp_path: Path) -> None:
    nothing = load_text(tmp_path, HEAD + vhost(1, "10.0.0.100"))
    assert (nothing.checks, nothing.groups, nothing.metrics) == ((), (), None)
    (only,) = nothing.vhosts
    assert (only.track, only.demotion, only.penalty) == ((), "penalty", 100)
    settings = load_text(tmp_path, document())
    assert settings.checks == (CheckConfig("web", "http", url=WEB_URL),)
    web = settings.checks[0]
    assert (web.interval, web.timeout, web.rise, web.fall) == (2.0, 1.0, 2, 2)
    assert (web.group, web.demotes, web.expect) == ("", "web", 200)


def test_defaults_give_track_demotion_and_penalty(tmp_path: Path) -> None:
    defaults = 'track = ["web"]\ndemotion = "stepdown"\npenalty = 20\n'
    hosts = vhost(2, "10.0.0.101", demotion="penalty") + vhost(3, "10.0.0.102", penalty=0)
    hosts += vhost(4, "10.0.0.103") + 'track = ["db"]\n'
    checks = WEB + check("db", "command", command=["/bin/true"])
    settings = load_text(tmp_path, document(defaults=defaults, checks=hosts + checks))
    assert [(v.vhid, v.track, v.demotion, v.penalty) for v in settings.vhosts] == [
        (1, ("web",), "stepdown", 20),
        (2, ("web",), "penalty", 20),
        (3, ("web",), "stepdown", 0),
        (4, ("db",), "stepdown", 20),  # a vhost's track replaces the list
    ]


def test_a_check_and_a_group_may_share_a_name(tmp_path: Path) -> None:
    checks = WEB + check("web-port", "tcp", host="198.51.100.10", port=80, group="web")
    settings = load_text(tmp_path, document(checks=checks))
    assert {c.demotes for c in settings.checks} == {"web"}


def test_a_group_of_its_own_is_tracked_by_its_name(tmp_path: Path) -> None:
    text = document(top='groups = ["maintenance"]\n', defaults='track = ["maintenance"]\n')
    settings = load_text(tmp_path, text.replace(WEB, ""))
    assert (settings.groups, settings.checks) == (("maintenance",), ())


@pytest.mark.parametrize(
    ("text", "public", "address"),
    [
        ("127.0.0.1:9406", False, MetricsAddress("127.0.0.1", 9406)),
        ("127.1.2.3:1", False, MetricsAddress("127.1.2.3", 1)),
        ("[::1]:9406", False, MetricsAddress("::1", 9406)),
        ("[0:0::1]:65535", False, MetricsAddress("::1", 65535)),
        ("198.51.100.1:9406", True, MetricsAddress("198.51.100.1", 9406)),
        ("0.0.0.0:9406", True, MetricsAddress("0.0.0.0", 9406)),
        ("[2001:db8::1]:80", True, MetricsAddress("2001:db8::1", 80)),
    ],
)
def test_metrics_addresses(text: str, public: bool, address: MetricsAddress) -> None:
    assert parse_metrics(text, public=public) == address
    assert parse_metrics(str(address), public=public) == address  # str() is "host:port"


def test_metrics_public_in_a_file(tmp_path: Path) -> None:
    top = 'metrics = "[2001:db8::1]:9406"\nmetrics_public = true\n'
    settings = load_text(tmp_path, document(top=top))
    assert str(settings.metrics) == "[2001:db8::1]:9406"


def test_ucarp_options_have_none_of_it() -> None:
    settings = load.settings_from_args(BASE)
    assert (settings.checks, settings.groups, settings.metrics) == ((), (), None)
    assert settings.vhosts[0].track == ()


# --- errors, one line each, naming the table and the key ---------------------------

IN_WEB = "check[0] (web): "
IN_VHOST = "vhost[0] (vhid 1): "
# (document's arguments, the one error)
BAD: list[tuple[dict[str, str], str]] = [
    # the check's keys
    (
        {"checks": WEB + "intervall = 1\n"},
        IN_WEB + "intervall: unknown key (did you mean interval?)",
    ),
    ({"checks": WEB + "track = []\n"}, IN_WEB + "track: a per-host key: set it in [defaults] or"),
    ({"checks": WEB + "debug = true\n"}, IN_WEB + "debug: a process option: set it at the top"),
    (
        {"checks": WEB + 'interval = "2"\n'},
        IN_WEB + "interval: expected an integer or a float, got a string ('2')",
    ),
    ({"checks": WEB + "rise = 1.5\n"}, IN_WEB + "rise: expected an integer, got a float (1.5)"),
    (
        {"checks": WEB + "expect = true\n"},
        IN_WEB + "expect: expected an integer, got a boolean (true)",
    ),
    (
        {"checks": check("web", "command", command=5)},
        IN_WEB + "command: expected an array or a string, got an integer (5)",
    ),
    (
        {"checks": check("web", "ping")},
        IN_WEB + "type: unknown check type 'ping' (known: command, tcp, http, carrier)",
    ),
    ({"checks": WEB + "interval = 0\n"}, IN_WEB + "interval: 0 is outside 0.1..3600 seconds"),
    ({"checks": WEB + "timeout = 3601\n"}, IN_WEB + "timeout: 3601 is outside 0.1..3600 seconds"),
    ({"checks": WEB + "rise = 0\n"}, IN_WEB + "rise: 0 is outside 1..100"),
    ({"checks": WEB + "fall = 101\n"}, IN_WEB + "fall: 101 is outside 1..100"),
    ({"checks": WEB + "expect = 99\n"}, IN_WEB + "expect: 99 is not an HTTP status (100..599)"),
    ({"checks": WEB + "port = 80\n"}, IN_WEB + "port: means nothing for a http check"),
    ({"checks": WEB + "shell = true\n"}, IN_WEB + "shell: means nothing for a http check"),
    # a type's default value, given for another type, is refused too
    ({"checks": WEB + "shell = false\n"}, IN_WEB + "shell: means nothing for a http check"),
    (
        {"checks": check("web", "tcp", host="198.51.100.9", port=80, expect=200)},
        IN_WEB + "expect: means nothing for a tcp check",
    ),
    (
        {"checks": WEB + 'command = ["/bin/true"]\n'},
        IN_WEB + "command: means nothing for a http check",
    ),
    (
        {"checks": check("web", "http", url="ftp://x/")},
        IN_WEB + "url: 'ftp://x/' is not an http:// or https:// URL",
    ),
    ({"checks": WEB + 'group = "a b"\n', "defaults": ""}, IN_WEB + "group: 'a b' is not a name"),
    ({"checks": check("web", "tcp", port=80)}, IN_WEB + "host: required for a tcp check"),
    ({"checks": check("web", "carrier")}, IN_WEB + "interface: required for a carrier check"),
    (
        {"checks": check("web", "command", command=[])},
        IN_WEB + "command: required: the program and its arguments",
    ),
    ({"checks": '[[check]]\nname = "web"\n'}, IN_WEB + "missing required keys: type"),
    (
        {"checks": '[[check]]\ntype = "http"\n', "defaults": ""},
        "check[0]: missing required keys: name",
    ),
    (
        {"checks": check("web site", "http", url=WEB_URL), "defaults": ""},
        "check[0]: name: 'web site' is not a name",
    ),
    # commands
    (
        {"checks": check("web", "command", command="pg_isready -q")},
        IN_WEB + "command: a string is run by /bin/sh -c only with shell = true",
    ),
    (
        {"checks": check("web", "command", command=["/bin/true"], shell=True)},
        IN_WEB + "command: with shell = true, give one string for /bin/sh -c",
    ),
    (
        {"checks": check("web", "command", command=["pg_isready", "-q"])},
        IN_WEB + "command: 'pg_isready' is not an absolute path (it is run without a shell)",
    ),
    (
        {"checks": check("web", "command", command=["./check.sh"])},
        IN_WEB + "command: './check.sh' is not an absolute path",
    ),
    (
        {"checks": check("web", "command", command=["/bin/true", 1])},
        IN_WEB + "command: expected strings, got an integer (1)",
    ),
    (
        {"checks": check("web", "command", command=["/bin/true", "a\u0000b"])},
        IN_WEB + "command: contains a NUL byte",
    ),
    # the tables
    (
        {"top": "check = 5\n", "checks": "", "defaults": ""},
        "check: expected an array of tables ([[check]]), got an integer",
    ),
    (
        {"checks": '[check]\nname = "web"\n', "defaults": ""},
        "check: expected an array of tables ([[check]]), got a table",
    ),
    ({"checks": WEB + WEB}, "check[1] (web): name: web is already the name of check[0] (web)"),
    # keys of a check elsewhere
    (
        {"host": "interval = 2\n"},
        IN_VHOST + "interval: a key of a health check: set it in a [[check]] table",
    ),
    ({"top": "rise = 2\n"}, "rise: a key of a health check: set it in a [[check]] table"),
    # the vhost's keys
    ({"host": "penalty = 300\n"}, IN_VHOST + "penalty: 300 is outside 0..255"),
    ({"host": "penalty = -1\n"}, IN_VHOST + "penalty: -1 is outside 0..255"),
    (
        {"host": 'penalty = "100"\n'},
        IN_VHOST + "penalty: expected an integer, got a string ('100')",
    ),
    (
        {"host": 'demotion = "retreat"\n'},
        IN_VHOST + "demotion: 'retreat' is not one of penalty, stepdown",
    ),
    ({"host": 'track = "web"\n'}, IN_VHOST + "track: expected an array, got a string ('web')"),
    ({"host": "track = [1]\n"}, IN_VHOST + "track: expected strings, got an integer (1)"),
    ({"host": 'track = ["web", "web"]\n'}, IN_VHOST + "track: the same group is listed twice"),
    ({"host": 'track = ["web", "-web"]\n'}, IN_VHOST + "track: '-web' is not a name"),
    (
        {"defaults": 'penalty = 256\ntrack = ["web"]\n'},
        IN_VHOST + "penalty (from [defaults]): 256 is outside 0..255",
    ),
    (
        {"defaults": "", "host": 'track = ["web", "wbe"]\n'},
        IN_VHOST + "track: no check or groups entry defines group 'wbe' (did you mean web?)",
    ),
    (
        {"defaults": 'track = ["web", "zzz"]\n'},
        "defaults: track: no check or groups entry defines group 'zzz'",
    ),
    # groups nobody tracks
    (
        {"defaults": ""},
        IN_WEB + 'group web is tracked by no [[vhost]] (add track = ["web"] to one)',
    ),
    (
        {"top": 'groups = ["maintenance"]\n'},
        'groups: group maintenance is tracked by no [[vhost]] (add track = ["maintenance"] to one)',
    ),
    # the process options
    (
        {"top": 'groups = ["web"]\n'},
        "groups: web is the group of check[0] (web): list only groups without checks",
    ),
    (
        {"top": 'groups = "maintenance"\n'},
        "groups: expected an array, got a string ('maintenance')",
    ),
    ({"top": "groups = [1]\n"}, "groups: expected strings, got an integer (1)"),
    ({"top": 'groups = ["a b"]\n'}, "groups: 'a b' is not a name"),
    (
        {"top": 'groups = ["m", "m"]\n', "defaults": 'track = ["web", "m"]\n'},
        "groups: m is listed twice",
    ),
    ({"top": 'group = ["web"]\n'}, "group: unknown key (did you mean groups?)"),
    (
        {"top": 'metrics = "198.51.100.1:9406"\n'},
        "metrics: 198.51.100.1 is not a loopback address; "
        "set metrics_public = true to serve metrics to the network",
    ),
    (
        {"top": 'metrics = "[2001:db8::1]:9406"\n'},
        "metrics: 2001:db8::1 is not a loopback address; set metrics_public = true",
    ),
    (
        {"top": 'metrics = "127.0.0.1"\n'},
        "metrics: '127.0.0.1' is not address:port (e.g. 127.0.0.1:9406 or [::1]:9406)",
    ),
    ({"top": 'metrics = ":9406"\n'}, "metrics: ':9406' is not address:port"),
    ({"top": 'metrics = "::1:9406"\n'}, "metrics: '::1:9406': an IPv6 address goes in brackets"),
    ({"top": 'metrics = "[::1]"\n'}, "metrics: '[::1]' is not [IPv6 address]:port"),
    (
        {"top": 'metrics = "[127.0.0.1]:9406"\n'},
        "metrics: '[127.0.0.1]:9406' is not [IPv6 address]:port",
    ),
    (
        {"top": 'metrics = "localhost:9406"\n'},
        "metrics: 'localhost' is not an IP address (names are not looked up)",
    ),
    ({"top": 'metrics = "127.0.0.1:0"\n'}, "metrics: '0' is not a port (1..65535)"),
    ({"top": 'metrics = "127.0.0.1:65536"\n'}, "metrics: '65536' is not a port (1..65535)"),
    ({"top": 'metrics = "127.0.0.1:http"\n'}, "metrics: 'http' is not a port (1..65535)"),
    (
        {"top": 'metrics = "224.0.0.1:9406"\nmetrics_public = true\n'},
        "metrics: 224.0.0.1 is a multicast address",
    ),
    ({"top": "metrics = 9406\n"}, "metrics: expected a string, got an integer (9406)"),
    ({"top": "metrics_public = true\n"}, "metrics_public: means nothing without metrics"),
    (
        {"top": 'metrics_public = "yes"\n'},
        "metrics_public: expected a boolean, got a string ('yes')",
    ),
]


@pytest.mark.parametrize(("parts", "message"), BAD, ids=[m for _, m in BAD])
def test_errors(tmp_path: Path, parts: dict[str, str], message: str) -> None:
    found = errors(tmp_path, document(**parts))
    assert len(found) == 1 and found[0].startswith(message), found


def test_every_problem_is_listed(tmp_path: Path) -> None:
    top = 'metrics = "198.51.100.1:9406"\n'
    checks = check("web", "ping") + check("db", "command", command="x") + WEB.replace("web", "w2")
    found = errors(
        tmp_path, document(top=top, defaults='track = ["web", "db", "wbe"]\n', checks=checks)
    )
    assert found == [
        "metrics: 198.51.100.1 is not a loopback address; set metrics_public = true to serve "
        "metrics to the network",
        IN_WEB + "type: unknown check type 'ping' (known: command, tcp, http, carrier)",
        "check[1] (db): command: a string is run by /bin/sh -c only with shell = true; without "
        "a shell, give an array: the program and its arguments",
        "defaults: track: no check or groups entry defines group 'wbe' (did you mean web?)",
        'check[2] (w2): group w2 is tracked by no [[vhost]] (add track = ["w2"] to one)',
    ]


def test_an_unknown_group_in_defaults_is_reported_once(tmp_path: Path) -> None:
    text = document(defaults='track = ["web", "nope"]\n') + vhost(2, "10.0.0.101")
    assert errors(tmp_path, text) == [
        "defaults: track: no check or groups entry defines group 'nope'"
    ]


def test_a_bad_check_still_defines_its_group(tmp_path: Path) -> None:
    # only the check's own error: its group exists, so track = ["web"] is not at fault
    assert errors(tmp_path, document(checks=WEB + "rise = 0\n")) == [
        IN_WEB + "rise: 0 is outside 1..100"
    ]


def test_no_group_is_untracked_while_a_vhost_is_unread(tmp_path: Path) -> None:
    # vhost 2, which may track web, has a bad key: "tracked by no [[vhost]]" would be a guess
    text = document(defaults="") + vhost(2, "10.0.0.101", advskw=1)
    assert errors(tmp_path, text) == [
        "vhost[1] (vhid 2): advskw: unknown key (did you mean advskew?)"
    ]


# --- checks of this machine ----------------------------------------------------------


def test_a_command_must_be_an_executable_file(tmp_path: Path) -> None:
    script = executable(tmp_path / "check.sh")
    group_writable = executable(tmp_path / "gw.sh", 0o775)
    plain = tmp_path / "plain"
    plain.write_text("")
    checks = "".join(
        check(name, "command", command=[path])
        for name, path in [
            ("ok", str(script)),
            ("true", "/bin/true"),
            ("absent", "/nonexistent/check"),
            ("dir", str(tmp_path)),
            ("plain", str(plain)),
            ("gw", str(group_writable)),
        ]
    )
    track = 'track = ["ok", "true", "absent", "dir", "plain", "gw"]\n'
    text = document(defaults=track, checks=checks)
    assert errors(tmp_path, text) == [
        "check[2] (absent): command: /nonexistent/check does not exist",
        f"check[3] (dir): command: {tmp_path} is a directory",
        f"check[4] (plain): command: {plain} is not executable",
        f"check[5] (gw): command: {group_writable} is writable by group or others (mode 0775); "
        "chmod go-w it",
    ]
    settings = load_text(tmp_path, text, check_machine=False)
    assert [c.command for c in settings.checks][:2] == [(str(script),), ("/bin/true",)]


def test_a_shell_command_is_not_looked_for(tmp_path: Path) -> None:
    checks = check("web", "command", command="/nonexistent/x || exit 1", shell=True)
    (web,) = load_text(tmp_path, document(checks=checks)).checks
    assert (web.command, web.shell) == (("/nonexistent/x || exit 1",), True)


def test_a_carrier_check_needs_the_interface(tmp_path: Path) -> None:
    checks = check("web", "carrier", interface="eth9")
    assert errors(tmp_path, document(checks=checks)) == [
        IN_WEB + "interface: no such interface: 'eth9'"
    ]
    (web,) = load_text(tmp_path, document(checks=checks), check_machine=False).checks
    assert web.interface == "eth9"


# --- the documentation and pycarp --check-config ----------------------------------


def test_documented_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    as_the_docs_host(monkeypatch)
    text = section("Health checks and demotion")
    settings = load_text(tmp_path, block(text, "toml"))
    assert [c.name for c in settings.checks] == ["web", "web-port", "db", "db-file", "link"]
    assert settings.checks[2] == CheckConfig("db", "command", command=("/bin/true",))
    assert settings.groups == ("maintenance",)
    assert settings.metrics == MetricsAddress()
    first, second = settings.vhosts
    assert (first.track, first.demotion, first.penalty) == (
        ("web", "db", "maintenance"),
        "penalty",
        100,
    )
    assert (second.track, second.demotion) == (("db", "link"), "stepdown")


def test_documented_example_checks_on_a_real_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /bin/true as it is on this machine; only the password file is the docs host's
    monkeypatch.setattr(machine, "read_passfile", lambda path: b"changeme")
    settings = load_text(tmp_path, block(section("Health checks and demotion"), "toml"))
    assert [c.command for c in settings.checks if c.type == "command"] == [
        ("/bin/true",),
        ("test -e /etc/hostname && test -r /etc/hostname",),
    ]


def test_documented_check_config_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    as_the_docs_host(monkeypatch)
    text = section("Health checks and demotion")
    config = tmp_path / "pycarp.toml"
    config.write_text(block(text, "toml"))
    assert cli.main(["--check-config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    documented = block(text, "console").splitlines()[1:]  # after the $ line
    documented[0] = documented[0].replace("/etc/pycarp/pycarp.toml", str(config))
    documented[1] = documented[1].replace("/run/pycarp", run_directory())
    assert out.splitlines() == documented


def test_documented_errors(tmp_path: Path) -> None:
    documented = block(section("Health checks and demotion"), "text").splitlines()
    every = {_without_table(message) for _, message in BAD}
    for line in documented:
        message = line.removeprefix("pycarp: error: pycarp.toml (TOML): ")
        assert message != line, line
        # each one is a case above, but the machine's own (a file or an interface it lacks)
        assert any(_without_table(message).startswith(case) for case in every) or (
            "does not exist" in message or "no such interface" in message
        ), message


def _without_table(message: str) -> str:
    return re.sub(r"^(check|vhost)\[\d+\]( \([^)]*\))?: ", "", message)


def test_check_config_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    top = 'metrics = "[::1]:9406"\ngroups = ["maintenance"]\ncontrol_socket = "none"\n'
    hosts = vhost(2, "10.0.0.101", demotion="stepdown") + 'track = ["db"]\n'
    hosts += vhost(3, "10.0.0.102") + "track = []\n"
    checks = (
        WEB
        + check("port", "tcp", host="2001:db8::10", port=5432, group="db", timeout=0.5)
        + check("db", "command", command=["/bin/true", "a b"])
        + check("sh", "command", command="test -e /x && true", shell=True, group="db")
        + check("link", "carrier", interface="eth1", rise=1, fall=3, interval=0.2)
    )
    defaults = 'track = ["web", "db", "link", "maintenance"]\n'
    config = tmp_path / "p.toml"
    config.write_text(document(top=top, defaults=defaults, host=hosts, checks=checks))
    assert cli.main(["check-config", str(config)]) == 0
    assert capsys.readouterr().out == (
        f"{config} (TOML): OK, 3 virtual hosts, 5 checks\n"
        "process: facility daemon; control socket none; metrics on [::1]:9406\n"
        "eth0 vhid 1: 10.0.0.100/32; advbase 1 advskew 0; pycarp plumbs the addresses; "
        "tracks web, db, link, maintenance (penalty 100)\n"
        "eth0 vhid 2: 10.0.0.101/32; advbase 1 advskew 0; pycarp plumbs the addresses; "
        "tracks db (stepdown)\n"
        "eth0 vhid 3: 10.0.0.102/32; advbase 1 advskew 0; pycarp plumbs the addresses\n"
        f"check web: http {WEB_URL} expect 200 every 2s (timeout 1s, rise 2, fall 2) -> group web\n"
        "check port: tcp [2001:db8::10]:5432 every 2s (timeout 0.5s, rise 2, fall 2) -> group db\n"
        "check db: command /bin/true 'a b' every 2s (timeout 1s, rise 2, fall 2) -> group db\n"
        "check sh: command /bin/sh -c 'test -e /x && true' every 2s (timeout 1s, rise 2, fall 2) "
        "-> group db\n"
        "check link: carrier eth1 every 0.2s (timeout 1s, rise 1, fall 3) -> group link\n"
        "group maintenance: no check (moved by pycarp demote only)\n"
    )


def test_check_config_without_checks_is_as_before(tmp_path: Path) -> None:
    settings = load_text(tmp_path, HEAD + vhost(1, "10.0.0.100"))
    assert settings == DaemonSettings(vhosts=settings.vhosts)


def test_config_error_fields_are_the_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_metrics("127.0.0.1:0", public=False)
    assert caught.value.fields == ("metrics",)
