"""The bad command lines and config files of test_bad_input.py, and the files they name.

Each case is a command line (``{d}`` stands for the test's directory), the
files to write there first, and what the one error line must say: the option
or key, and the value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tests.config.config_helpers import BASE, executable

MB = 1024 * 1024
OTHER_UID = 54321  # a user that is neither root nor the tests'

# A valid TOML file but for the keys a case changes (in its [[vhost]]).
_TOML_HOST = {"vhid": "7", "addresses": '["10.0.0.100/24"]'}
_TOML_HEAD = """\
control_socket = "none"

[defaults]
interface = "eth0"
srcip = "10.0.0.1"
password = "secret"
"""


def toml(**keys: str) -> bytes:
    """A TOML file whose [[vhost]] has ``keys`` (TOML text) over a valid one's."""
    host = {**_TOML_HOST, **keys}
    lines = "".join(f"{key} = {value}\n" for key, value in host.items())
    return f"{_TOML_HEAD}\n[[vhost]]\n{lines}".encode()


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]  # all in the one error line
    files: dict[str, bytes] = field(default_factory=dict)


def options(id: str, *extra: str, expect: tuple[str, ...]) -> Case:
    """A valid ucarp command line with ``extra`` options after it (the last one wins)."""
    return Case(id, (*BASE, *extra), expect)


def options_file(id: str, text: bytes, *expect: str) -> Case:
    """The valid command line and an options file (whose options the command line overrides)."""
    base = ("-i", "eth0", "-s", "10.0.0.1", "-v", "7", "-a", "10.0.0.100")
    return Case(id, (*base, "--check-config", "{d}/u.cfg"), expect, {"u.cfg": text})


def toml_file(id: str, data: bytes, *expect: str, start: bool = False) -> Case:
    """``check-config FILE``, or starting the daemon with --config FILE."""
    argv = ("--config", "{d}/c.toml") if start else ("check-config", "{d}/c.toml")
    return Case(id, argv, expect, {"c.toml": data})


LONG = "9" * 5000
CASES = [
    # numbers: out of range, not numbers, too long
    options("advskew-256", "-k", "256", expect=("--advskew", "256 is outside 0..255")),
    options("advskew-negative", "-k", "-1", expect=("--advskew", "-1 is outside")),
    options("advbase-256", "-b", "256", expect=("--advbase", "256")),
    options("vhid-0", "-v", "0", expect=("--vhid", "0 is outside 1..255")),
    options("vhid-256", "-v", "256", expect=("--vhid", "256")),
    options("advbase-0-advskew-0", "-b", "0", expect=("--advbase", "0 needs an advskew")),
    options("deadratio-0", "-r", "0", expect=("--deadratio", "0 is below 1")),
    options("deadratio-2**32", "-r", str(2**32), expect=("--deadratio", "4294967296")),
    options("advskew-5000-digits", "-k", LONG, expect=("--advskew", "too long for a number")),
    options("vhid-5000-digits", "-v", LONG, expect=("--vhid", "(5000 characters)")),
    options("advskew-hex-junk", "-k", "0x", expect=("--advskew", "'0x' is not a number")),
    options("advskew-octal-slip", "-k", "08", expect=("--advskew", "'08'", "octal")),
    options("advskew-empty", "-k", "", expect=("--advskew", "'' is not a number")),
    options("advskew-float", "-k", "1.5", expect=("--advskew", "'1.5'")),
    # empty and over-long strings
    options("pass-empty", "-p", "", expect=("--pass", "the password is empty")),
    options("pass-20-bytes", "-p", "x" * 20, expect=("--pass", "20 bytes")),
    options("interface-empty", "-i", "", expect=("--interface", "required")),
    options("interface-unknown", "-i", "nosuch0", expect=("--interface", "'nosuch0'")),
    options("facility-unknown", "-f", "bogus", expect=("--facility", "'bogus'")),
    options("facility-empty", "-f", "", expect=("--facility", "''")),
    options("control-socket-empty", "--control-socket=", expect=("--control-socket", "empty")),
    options(
        "control-socket-too-long",
        "--control-socket",
        "/run/" + "s" * 200,
        expect=("--control-socket", "a socket path has at most 107"),
    ),
    options("control-group-empty", "--control-group=", expect=("--control-group", "empty")),
    options(
        "control-group-unknown",
        "--control-group",
        "no-such-group-x",
        expect=("--control-group", "'no-such-group-x'"),
    ),
    # addresses
    options("srcip-ipv6", "-s", "2001:db8::1", expect=("--srcip", "'2001:db8::1'", "IPv4")),
    options(
        "addr-ipv6",
        "-a",
        "2001:db8::2",
        expect=("--addr", "'2001:db8::2'", "IPv4", "IPv6 virtual addresses are for TOML files"),
    ),
    options("addr-junk", "-a", "10.0.0", expect=("--addr", "'10.0.0'")),
    options("addr-is-srcip", "-a", "10.0.0.1", expect=("--srcip", "10.0.0.1", "virtual address")),
    options("addr-multicast", "-a", "224.0.0.5", expect=("--addr", "224.0.0.5", "multicast")),
    options("addr-broadcast", "-a", "255.255.255.255", expect=("--addr", "broadcast address")),
    options("addr-unspecified", "-a", "0.0.0.0", expect=("--addr", "0.0.0.0 cannot be used")),
    options("addr-loopback", "-a", "127.0.0.2", expect=("--addr", "127.0.0.2", "loopback")),
    options("srcip-multicast", "-s", "224.0.0.9", expect=("--srcip", "224.0.0.9")),
    options("mcast-unicast", "-m", "10.0.0.5", expect=("--mcast", "10.0.0.5", "not a multicast")),
    options("mcast-ipv6", "--mcast=ff02::12", expect=("--mcast", "'ff02::12'")),
    options("unknown-option", "--advskw=3", expect=("--advskw", "did you mean --advskew?")),
    # scripts
    options("upscript-missing", "-u", "{d}/absent.sh", expect=("--upscript", "absent.sh")),
    options("upscript-directory", "-u", "{d}/dir", expect=("--upscript", "is a directory")),
    options("upscript-not-executable", "-u", "{d}/plain.sh", expect=("--upscript", "executable")),
    options("upscript-with-spaces", "-u", "{d}/my up.sh", expect=("--upscript", "my up.sh")),
    options("upscript-writable", "-u", "{d}/open.sh", expect=("--upscript", "writable", "0777")),
    options("downscript-foreign", "-d", "{d}/foreign.sh", expect=("--downscript", "uid 54321")),
    options("upscript-empty", "--upscript=", expect=("--upscript: the path is empty",)),
    options("downscript-empty", "-d", "", expect=("--downscript: the path is empty",)),
    # password files
    options("passfile-empty-path", "--passfile=", expect=("--passfile: the path is empty",)),
    options("passfile-missing", "-o", "{d}/absent", expect=("--passfile", "No such file")),
    options("passfile-directory", "-o", "{d}/dir", expect=("--passfile", "(a directory)")),
    options("passfile-fifo", "-o", "{d}/fifo", expect=("--passfile", "(a FIFO)")),
    options("passfile-dev-zero", "-o", "/dev/zero", expect=("--passfile", "character device")),
    options("passfile-empty", "-o", "{d}/empty", expect=("--passfile", "empty is empty")),
    options("passfile-blank-line", "-o", "{d}/newline", expect=("--passfile", "password is empty")),
    options("passfile-writable", "-o", "{d}/open-secret", expect=("--passfile", "writable")),
    options("passfile-foreign", "-o", "{d}/foreign-secret", expect=("--passfile", "uid 54321")),
    # config files of either format
    options("config-missing", "-c", "{d}/absent.cfg", expect=("--config", "absent.cfg")),
    options("config-directory", "-c", "{d}/dir", expect=("--config", "(a directory)")),
    options("config-fifo", "-c", "{d}/fifo", expect=("--config", "(a FIFO)")),
    options("config-dev-zero", "-c", "/dev/zero", expect=("--config", "character device")),
    options("config-10-mb", "-c", "{d}/big.cfg", expect=("--config", "larger than 1048576")),
    options("config-10-mb-line", "-c", "{d}/line10m.cfg", expect=("--config", "larger than")),
    options("config-1-mb-line", "-c", "{d}/line1m.cfg", expect=("line1m.cfg:1", "at most 16384")),
    # ucarp options files
    options_file("file-nul-xparam", b"--xparam=a\0b\n", "u.cfg:1", "--xparam", "NUL", "'a\\x00b'"),
    options_file("file-nul-passfile", b"--passfile=/x\0y\n", "--passfile", "NUL", "'/x\\x00y'"),
    options_file("file-nul-upscript", b"-u /bin/true\0\n", "-u", "NUL"),
    options_file("file-nul-control-socket", b"--control-socket=/a\0\n", "--control-socket", "NUL"),
    options_file("file-nul-pass", b"-p se\0cret\n", "--pass: contains a NUL byte"),
    options_file("file-non-utf8", b"-p x\n--facility=\xff\n", "u.cfg:2", "--facility", "\\udcff"),
    options_file("file-unknown", b"-p x\n--vhidd=7\n", "u.cfg:2", "did you mean --vhid?"),
    options_file("file-quote", b"-p 'x\n", "u.cfg:1", "unterminated quote"),
    options_file("file-config-inside", b"-p x -c other.cfg\n", "-c", "inside an options file"),
    options_file("file-spaces-unquoted", b"-p x -u /tmp/my up.sh\n", "unexpected argument 'up.sh'"),
    options_file(
        "file-5000-digits", f"-p x -k {LONG}\n".encode(), "u.cfg:1", "--advskew", "too long"
    ),
    # TOML files
    toml_file("toml-nested-5000", b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    toml_file("toml-5000-digits", b"vhid = " + LONG.encode() + b"\n", "too many digits"),
    toml_file("toml-non-utf8", b'facility = "\xff"\n', "c.toml:1", "not UTF-8 (byte 0xff)"),
    toml_file("toml-duplicate", toml() + b"vhid = 8\n", "c.toml:", "Cannot overwrite"),
    toml_file("toml-unknown", toml(advskw="1"), "advskw: unknown key (did you mean advskew?)"),
    toml_file("toml-renamed", toml(passfile='"x"'), "passfile", "did you mean password_file?"),
    toml_file("toml-vhid-4000-digits", toml(vhid="9" * 4000), "vhid", "far out of range"),
    toml_file("toml-vhid-0", toml(vhid="0"), "vhid: 0 is outside 1..255"),
    toml_file("toml-vhid-string", toml(vhid='"7"'), "vhid: expected an integer", "'7'"),
    toml_file("toml-advskew-inf", toml(advskew="inf"), "advskew: expected an integer", "inf"),
    toml_file("toml-advbase-0", toml(advbase="0", advskew="0"), "advbase: 0 needs an advskew"),
    toml_file("toml-interface-empty", toml(interface='""'), "interface: required"),
    toml_file("toml-password-empty", toml(password='""'), "password: the password is empty"),
    toml_file("toml-addr-multicast", toml(addresses='["239.1.1.1"]'), "239.1.1.1", "multicast"),
    toml_file(
        "toml-addr-subnet-broadcast",
        toml(addresses='["10.0.0.255/24"]'),
        "addresses: 10.0.0.255 is the broadcast address of 10.0.0.0/24",
    ),
    toml_file(
        "toml-addr-is-srcip",
        toml(addresses='["10.0.0.1"]'),
        "srcip (from [defaults]): 10.0.0.1 is also",
    ),
    toml_file(
        "toml-ipv6-srcip",
        toml(addresses='["2001:db8::5"]', srcip='"10.0.0.9"'),
        "srcip",
        "without IPv4",
    ),
    toml_file(
        "toml-ipv4-peer-ipv6-vhost",
        toml(addresses='["2001:db8::5"]', peers='["10.0.0.2"]'),
        "peers",
        "IPv4 peer, and no virtual address is IPv4",
    ),
    toml_file("toml-peer-scope", toml(peers='["fe80::2%eth9"]'), "peers", "scope"),
    toml_file("toml-prefix-33", toml(addresses='["10.0.0.100/33"]'), "addresses", "1..32"),
    toml_file("toml-prefix-digits", toml(addresses=f'["10.0.0.100/{LONG}"]'), "not a number"),
    toml_file("toml-srcip-ipv6", toml(srcip='"2001:db8::1"'), "srcip", "'2001:db8::1'"),
    toml_file("toml-nul-xparam", toml(xparam='"a\\u0000b"'), "xparam: contains a NUL byte"),
    toml_file("toml-nul-upscript", toml(upscript='"/bin/t\\u0000"'), "upscript: contains a NUL"),
    toml_file("toml-nul-password-file", toml(password_file='"/a\\u0000"'), "password_file", "NUL"),
    toml_file("toml-nul-password", toml(password='"se\\u0000"'), "password: contains a NUL byte"),
    toml_file(
        "toml-nul-control-socket",
        b'control_socket = "/run/a\\u0000"\n' + toml().replace(b'control_socket = "none"\n', b""),
        "control_socket: contains a NUL",
    ),
    toml_file("toml-passfile-fifo", toml(password_file='"fifo"'), "password_file", "(a FIFO)"),
    toml_file("toml-passfile-dir", toml(password_file='"dir"'), "password_file", "(a directory)"),
    toml_file("toml-start-bad", toml(vhid="300"), "vhid: 300 is outside", start=True),
    Case("toml-10-mb", ("check-config", "{d}/big.toml"), ("big.toml", "larger than 1048576")),
    Case("toml-dev-zero", ("check-config", "/dev/zero"), ("/dev/zero", "character device")),
    Case("toml-fifo", ("check-config", "{d}/fifo"), ("fifo", "(a FIFO)")),
]


def make_files(directory: Path) -> None:
    """The files the cases name, in ``directory``."""
    (directory / "dir").mkdir()
    os.mkfifo(directory / "fifo")
    (directory / "empty").write_bytes(b"")
    (directory / "newline").write_bytes(b"\n")
    (directory / "plain.sh").write_text("#!/bin/sh\n")
    executable(directory / "open.sh", 0o777)
    os.chown(executable(directory / "foreign.sh"), OTHER_UID, -1)
    (directory / "open-secret").write_bytes(b"secret\n")
    (directory / "open-secret").chmod(0o666)
    (directory / "foreign-secret").write_bytes(b"secret\n")
    os.chown(directory / "foreign-secret", OTHER_UID, -1)
    (directory / "big.cfg").write_bytes(b"# padding\n" * MB)
    (directory / "big.toml").write_bytes(b"# padding\n" * MB)
    (directory / "line1m.cfg").write_bytes(b"--xparam=" + b"x" * 1_000_000 + b"\n")
    (directory / "line10m.cfg").write_bytes(b"--xparam=" + b"x" * (10 * MB) + b"\n")
