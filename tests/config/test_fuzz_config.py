"""Fuzzing the config front-ends: whatever the text, only a ConfigError escapes.

The TOML loader, the options-file splitter, the ucarp command-line scanner
and the loader of a config file of either format get random text and bytes,
and text shaped like their format with random values in it. --help and
--version are the scanner's other answer (InfoRequested). No machine checks:
nothing but the fuzzed file itself is read. The budget is fixed:
`max_examples` per target, no per-example deadline.
"""

from __future__ import annotations

import contextlib
import json
import string
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pycarp.config import ucarp
from pycarp.config.getopt import InfoRequested, scan
from pycarp.config.load import load_file
from pycarp.config.optionsfile import OptionsFileError, SourcedArg, split_options_text
from pycarp.config.tomlfile import parse_toml
from pycarp.config.tomlkeys import CHECK_KEYS, HOST_KEYS, PROCESS_KEYS, TABLES
from pycarp.core.errors import ConfigError

FUZZ = settings(max_examples=300, deadline=None)
NAME = "fuzz.cfg"

# --- TOML ------------------------------------------------------------------------------

KEYS = [*HOST_KEYS, *PROCESS_KEYS, *CHECK_KEYS, "addr", "pass", "prefixes", "bogus"]
WORDS = st.sampled_from(["eth0", "lo", "198.51.100.1", "198.51.100.10/24", "224.0.0.18",
                         "on", "strict", "off", "none", "daemon", "", "-1", "0x10"])  # fmt: skip
SCALARS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True).map(lambda f: repr(f).replace("inf", "+inf")),
    st.booleans().map(lambda b: str(b).lower()),
    st.one_of(WORDS, st.text(max_size=30)).map(json.dumps),
    st.sampled_from(["1979-05-27T07:32:00Z", "07:32:00", "1979-05-27", "'literal'", '"""m"""']),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda v: f"[{', '.join(v)}]"),
        st.lists(st.tuples(st.sampled_from(KEYS), inner), max_size=3).map(
            lambda kv: "{" + ", ".join(f"{k} = {v}" for k, v in kv) + "}"
        ),
    ),
    max_leaves=8,
)
HEADERS = st.sampled_from([f"[{t}]" for t in TABLES] + [f"[[{t}]]" for t in TABLES] + ["[x.y]"])
LINES = st.one_of(st.tuples(st.sampled_from(KEYS), VALUES).map(" = ".join), HEADERS)
TOML_LIKE = st.lists(LINES, max_size=14).map("\n".join)


def toml(data: bytes | str) -> None:
    with contextlib.suppress(ConfigError):
        parse_toml(data, name=NAME, base_dir="/", check_machine=False)


@FUZZ
@given(st.text(max_size=300))
def test_toml_random_text(text: str) -> None:
    toml(text)


@FUZZ
@given(st.binary(max_size=300))
def test_toml_random_bytes(data: bytes) -> None:
    toml(data)


@FUZZ
@given(TOML_LIKE)
def test_toml_shaped_text(text: str) -> None:
    toml(text)
    toml(text.encode())


# --- options files and the command line -----------------------------------------------

SHORTS = [f"-{o.short}" for o in ucarp.OPTIONS if o.short]
LONGS = [f"--{name}" for o in ucarp.OPTIONS for name in o.names]
SHELLISH = st.text(alphabet=string.printable + "\\'\"#\u00e9\x00", max_size=40)
ARGS = st.lists(
    st.one_of(
        st.sampled_from(SHORTS + LONGS),
        st.tuples(st.sampled_from(LONGS), st.one_of(WORDS, st.text(max_size=20))).map("=".join),
        st.tuples(st.sampled_from(SHORTS), st.one_of(WORDS, st.text(max_size=20))).map("".join),
        WORDS,
        st.text(max_size=20),
    ),
    max_size=12,
)
# Options that read a file or pick another format: the fuzz builds settings from words only.
READS_FILES = {"config", "check-config", "passfile"}


def settings_of(args: list[SourcedArg]) -> None:
    """Scan args as ucarp would and build the settings they give (ConfigError or not)."""
    try:
        found = scan(args, ucarp.TABLE)
        chosen = ucarp.last_of_each([g for g in found if g.option.key not in READS_FILES])
        ucarp.daemon_settings(chosen, check_machine=False)
    except (ConfigError, InfoRequested):
        pass


@FUZZ
@given(ARGS)
def test_command_line_words(words: list[str]) -> None:
    settings_of([SourcedArg(w) for w in words])


@FUZZ
@given(st.one_of(st.text(max_size=300), SHELLISH, ARGS.map(" ".join)))
def test_options_file_text(text: str) -> None:
    try:
        args = split_options_text(text, name=NAME)
    except OptionsFileError:
        return
    settings_of(args)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300),
        ARGS.map(lambda w: "\n".join(w).encode()),
        TOML_LIKE.map(str.encode),
    )
)
def test_config_files_of_any_content(data: bytes) -> None:
    """load_file: the format detected, then either loader (--help in a file is an error)."""
    with tempfile.TemporaryDirectory() as top:
        path = Path(top, NAME)
        path.write_bytes(data)
        with contextlib.suppress(ConfigError):
            load_file(str(path), check_machine=False)
