"""The getopt_long scanner: abbreviations, clusters, values, and what it refuses."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from pycarp.config.getopt import Given, InfoRequested, Option, OptionTable, scan
from pycarp.config.optionsfile import SourcedArg
from pycarp.config.ucarp import TABLE
from pycarp.core.errors import ConfigError
from tests.config.config_helpers import BASE, UCARP_OPTIONS, error

# Scanning errors, after a valid command line: one line, without the option's name in front.
BAD = [
    (["--bogus"], "unknown option --bogus"),
    (["--bogus=1"], "unknown option --bogus"),
    (["-q"], "unknown option -q"),
    (["-Pq"], "unknown option -q"),
    (["--pas=x"], "ambiguous option --pas (could be --pass, --passfile)"),
    (["--d"], "ambiguous option --d (could be --daemonize, --deadratio, --debug, --downscript)"),
    (["--preempt=yes"], "--preempt takes no value"),
    (["--vhid"], "--vhid needs a value"),
    (["-v"], "-v needs a value"),
    (["stray"], "unexpected argument 'stray'"),
    (["--", "stray"], "unexpected argument 'stray'"),
    (["-"], "unexpected argument '-'"),
]


@pytest.mark.parametrize(("extra", "message"), BAD, ids=[" ".join(e) for e, _ in BAD])
def test_bad_argument_is_one_line(extra: list[str], message: str) -> None:
    assert error(*BASE, *extra).startswith(message)


def test_every_option_of_the_installed_ucarp_is_known() -> None:
    ucarp = shutil.which("ucarp") or shutil.which("ucarp", path="/usr/sbin:/sbin")
    assert ucarp, "ucarp is not installed (apt-get install ucarp)"
    text = subprocess.run([ucarp, "--help"], capture_output=True, text=True, check=False).stdout
    listed = re.findall(r"^--(\w+)(?:=<[^>]*>)? \(-(\w)", text, flags=re.MULTILINE)
    assert sorted(listed) == sorted(UCARP_OPTIONS)
    for long, short in listed:
        assert TABLE.by_long[long] is TABLE.by_short[short]


# --- the scanner on its own table ---------------------------------------------------

LEVEL = Option(("level", "lvl"), "l", "n", "a value")
LOUD = Option(("loud",), "L", None, "a flag")
LOUDER = Option(("louder",), None, None, "pycarp's own flag", ucarp=False)
HELP = Option(("help",), "h", None, "help")
SMALL = OptionTable((LEVEL, LOUD, LOUDER, HELP))


def args(*words: str, origin: str | None = None) -> list[SourcedArg]:
    return [SourcedArg(word, origin) for word in words]


def test_values_and_clusters_know_where_they_were_written() -> None:
    found = scan(args("-Ll5", "--lev", "6", "--lvl=7", origin="f.cfg:2"), SMALL)
    assert found == [
        Given(LOUD, "", "f.cfg:2"),
        Given(LEVEL, "5", "f.cfg:2"),
        Given(LEVEL, "6", "f.cfg:2"),
        Given(LEVEL, "7", "f.cfg:2"),
    ]


def test_ucarps_options_win_an_abbreviation_tie() -> None:
    (given,) = scan(args("--lou"), SMALL)  # --loud and --louder: --loud is ucarp's
    assert given.option is LOUD
    (given,) = scan(args("--loude"), SMALL)
    assert given.option is LOUDER


def test_operands_are_collected_when_asked_for() -> None:
    operands: list[SourcedArg] = []
    found = scan(args("one", "-L", "--", "-l", "two"), SMALL, operands)
    assert found == [Given(LOUD, "", None)]
    assert [o.value for o in operands] == ["one", "-l", "two"]


def test_errors_say_where() -> None:
    with pytest.raises(ConfigError) as caught:
        scan(args("-x", origin="f.cfg:3 (ucarp options)"), SMALL)
    error = caught.value
    assert (error.origin, error.field, error.reason) == (
        "f.cfg:3 (ucarp options)",
        None,
        "unknown option -x",
    )
    assert str(error) == "f.cfg:3 (ucarp options): unknown option -x"


def test_a_given_option_fails_under_its_first_name() -> None:
    (given,) = scan(args("--lvl=x", origin="f.cfg:1"), SMALL)
    failure = given.fail("'x' is not a number")
    assert (failure.field, failure.origin) == ("--level", "f.cfg:1")
    assert str(failure) == "f.cfg:1: --level: 'x' is not a number"


def test_help_stops_the_scan() -> None:
    with pytest.raises(InfoRequested) as caught:
        scan(args("-h", "--bogus", origin="f.cfg:4"), SMALL)
    assert (caught.value.option, caught.value.origin) == ("help", "f.cfg:4")
