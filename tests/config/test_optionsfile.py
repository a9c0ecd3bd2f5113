"""Options files: splitting, comments, continuation lines and line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycarp.config.optionsfile import (
    OptionsFileError,
    SourcedArg,
    read_options_file,
    read_sourced_options,
    split_options_text,
)

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "smartos" / "ucarp.cfg"


def split(text: str) -> list[str]:
    return [arg.value for arg in split_options_text(text, name="f.cfg")]


def test_reference_ucarp_cfg() -> None:
    assert read_options_file(REFERENCE) == [
        "--interface=net0",
        "--srcip=198.51.100.201",
        "--vhid=101",
        "--pass=changeme",
        "--addr=198.51.100.200",
        "--upscript=/opt/local/etc/vip-up.sh",
        "--downscript=/opt/local/etc/vip-down.sh",
        "-z",
    ]


def test_reference_ucarp_cfg_line_numbers() -> None:
    origins = [arg.origin for arg in read_sourced_options(REFERENCE)]
    assert origins == [f"{REFERENCE}:{n}" for n in range(1, 9)]


SPLIT_CASES = [
    pytest.param(
        "--vhid=1 --preempt\n-z\n", ["--vhid=1", "--preempt", "-z"], id="several-per-line"
    ),
    pytest.param("--vhid=1 \\\n--preempt\n", ["--vhid=1", "--preempt"], id="continuation"),
    pytest.param("--vhid=1\\\n-z\n", ["--vhid=1", "-z"], id="continuation-no-blank"),
    pytest.param("--vhid=1 \\   \n-z\n", ["--vhid=1", "-z"], id="blanks-after-backslash"),
    pytest.param("--vhid=1 \\\r\n-z\r\n", ["--vhid=1", "-z"], id="crlf"),
    pytest.param("# a comment\n--vhid=1\n", ["--vhid=1"], id="whole-line-comment"),
    pytest.param("   # indented comment \\\n-z\n", ["-z"], id="indented-comment"),
    pytest.param("--vhid=1 # trailing comment\n", ["--vhid=1"], id="trailing-comment"),
    pytest.param("--vhid=1\t# after a tab\n", ["--vhid=1"], id="comment-after-tab"),
    pytest.param("--pass=a#b\n", ["--pass=a#b"], id="hash-inside-word"),
    pytest.param("--pass='a #b'\n", ["--pass=a #b"], id="hash-in-single-quotes"),
    pytest.param('--pass="a #b" # c\n', ["--pass=a #b"], id="hash-in-double-quotes"),
    pytest.param("--pass=a\\ #b\n", ["--pass=a #b"], id="escaped-blank-before-hash"),
    pytest.param("\n\n   \n-z\n\n", ["-z"], id="blank-lines"),
    pytest.param("--xparam='two words'\n", ["--xparam=two words"], id="single-quotes"),
    pytest.param('--xparam "two words"\n', ["--xparam", "two words"], id="double-quotes"),
    pytest.param("--xparam=''\n", ["--xparam="], id="empty-quoted"),
    pytest.param("--pass='it\"s'\n", ['--pass=it"s'], id="double-inside-single"),
    pytest.param("--pass=ab\\\\\n-z\n", ["--pass=ab\\", "-z"], id="escaped-backslash-at-end"),
    pytest.param("--pass='ab\\'\n", ["--pass=ab\\"], id="backslash-in-single-quotes-at-end"),
    pytest.param("-z", ["-z"], id="no-final-newline"),
    pytest.param("", [], id="empty"),
]


@pytest.mark.parametrize(("text", "expected"), SPLIT_CASES)
def test_split(text: str, expected: list[str]) -> None:
    assert split(text) == expected


def test_each_argument_knows_its_line() -> None:
    text = "# header\n--vhid=1 \\\n  --pass 'x y' \\\n\n-z\n"
    assert split_options_text(text, name="f.cfg") == [
        SourcedArg("--vhid=1", "f.cfg:2"),
        SourcedArg("--pass", "f.cfg:3"),
        SourcedArg("x y", "f.cfg:3"),
        SourcedArg("-z", "f.cfg:5"),
    ]


def test_unterminated_quote_names_file_and_line() -> None:
    with pytest.raises(OptionsFileError, match=r"^f\.cfg:2: unterminated quote"):
        split_options_text("-z\n--pass='abc\n", name="f.cfg")


def test_quotes_cannot_span_lines() -> None:
    with pytest.raises(OptionsFileError, match=r"^f\.cfg:1: unterminated quote"):
        split_options_text("--xparam='a \\\nb'\n", name="f.cfg")


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.cfg"
    with pytest.raises(OptionsFileError, match=r"missing\.cfg: cannot read: No such file"):
        read_options_file(missing)


def test_file_is_read_as_utf8_and_keeps_odd_bytes(tmp_path: Path) -> None:
    path = tmp_path / "odd.cfg"
    path.write_bytes(b"--pass=\xff\xfe --xparam=caf\xc3\xa9\n")
    first, second = read_options_file(path)
    assert first.encode("utf-8", "surrogateescape") == b"--pass=\xff\xfe"
    assert second == "--xparam=café"
