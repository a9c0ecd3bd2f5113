"""pycarp(8) and pycarp.toml(5): generated from the tables, committed, rendered cleanly."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pycarp.cli import manpage, pagetext, roff
from pycarp.cli.main import SUBCOMMANDS
from pycarp.config import keydocs, optiondocs, tomlkeys, ucarp
from pycarp.config.tomlfile import parse_toml

MAN = Path(__file__).resolve().parents[2] / "man"
# man and groff print what roff makes of \- and hyphens; these make them plain
PLAIN = str.maketrans({"\u2212": "-", "\u2010": "-", "\u2011": "-"})
RENDER_ENV = {**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "80", "MANPAGER": "cat"}


def test_every_option_key_and_subcommand_has_its_entry() -> None:
    problems = manpage.problems()
    assert problems == [], "\n".join(["the man pages' tables miss or name too much:", *problems])


def test_a_missing_or_extra_entry_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(optiondocs.OPTION_DOCS, "advbase")
    monkeypatch.setitem(keydocs.HOST_DOCS, "advbace", keydocs.KeyDoc("a typo"))
    monkeypatch.delitem(pagetext.SUBCOMMAND_DOCS, "status")
    found = manpage.problems()
    assert "advbase: no entry in pycarp/config/optiondocs.py OPTION_DOCS" in found
    assert "advbace: an entry in pycarp/config/keydocs.py HOST_DOCS, but no such one" in found
    assert "status: no entry in pycarp/cli/pagetext.py SUBCOMMAND_DOCS" in found
    with pytest.raises(ValueError, match="advbase: no entry"):
        manpage.pages()
    assert manpage.main(["--check", str(MAN)]) == 1


@pytest.mark.parametrize("name", ["pycarp.8", "pycarp.toml.5"])
def test_the_committed_page_is_the_generated_one(name: str) -> None:
    committed = (MAN / name).read_text(encoding="utf-8")
    assert committed == manpage.pages()[name], (
        f"man/{name} is stale: run `.venv/bin/{manpage.REGENERATE}` and commit it"
    )


def test_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert manpage.main(["--check", str(tmp_path)]) == 1
    assert manpage.REGENERATE in capsys.readouterr().err
    assert manpage.main(["--write", str(tmp_path / "man")]) == 0
    assert sorted(p.name for p in (tmp_path / "man").iterdir()) == ["pycarp.8", "pycarp.toml.5"]
    assert manpage.main(["--check", str(tmp_path / "man")]) == 0


def _render(path: Path) -> str:
    """The page as man shows it; the test fails on any warning of man or groff."""
    man = subprocess.run(
        ["man", "--warnings", "-l", str(path)],
        capture_output=True,
        text=True,
        env=RENDER_ENV,
        timeout=60,
        check=False,
    )
    assert (man.returncode, man.stderr) == (0, ""), f"man --warnings -l {path}"
    groff = shutil.which("groff")
    assert groff, "groff is missing (apt-get install man-db)"
    strict = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww", "-z", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (strict.returncode, strict.stderr) == (0, ""), f"groff -ww {path}"
    return man.stdout.translate(PLAIN)


def test_pycarp_8_renders_every_option_and_subcommand(tmp_path: Path) -> None:
    path = tmp_path / "pycarp.8"
    path.write_text(manpage.pages()["pycarp.8"], encoding="utf-8")
    shown = _render(path)
    for option in ucarp.OPTIONS:
        for name in option.names:
            assert f"--{name}" in shown, name
        if option.short:
            assert f"-{option.short}" in shown, option.short
    for name in SUBCOMMANDS:
        assert f"pycarp {name}" in shown, name
    for heading in ("SIGNALS", "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"):
        assert f"\n{heading}\n" in shown, heading
    assert "SIGTERM" in shown
    assert "PYCARP_PASSWORD" in shown


def test_pycarp_toml_5_renders_every_key(tmp_path: Path) -> None:
    path = tmp_path / "pycarp.toml.5"
    path.write_text(manpage.pages()["pycarp.toml.5"], encoding="utf-8")
    shown = _render(path)
    for keys in (tomlkeys.PROCESS_KEYS, tomlkeys.HOST_KEYS, tomlkeys.CHECK_KEYS):
        for key in keys:
            assert f"\n       {key} = " in shown, key
    assert "Default: 1." in shown  # advbase, by way of HOST_DOCS
    assert "Required (here or in [defaults])." in shown


def test_the_example_of_pycarp_toml_5_is_a_good_file() -> None:
    settings = parse_toml("\n".join(pagetext.TOML_EXAMPLE), name="x.toml", check_machine=False)
    assert [vhost.vhid for vhost in settings.vhosts] == [101, 102]
    assert [check.name for check in settings.checks] == ["web"]


def test_roff_escapes_what_roff_would_read() -> None:
    assert roff.markup("use `--vhid` \\ 'x'") == r"use \fB\-\-vhid\fR \e \(aqx\(aq"
    assert roff.paragraph(".hidden") == ".PP\n\\&.hidden"
    assert roff.lines([".x", "'y"]).splitlines()[3:5] == [r"\&.x", r"\(aqy"]
