"""pycarp render's command line: usage errors on one line with status 2, help that works."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycarp.deploy.command import main


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--instance", "a", "--instance", "a=/x"], "'a' is used twice"),
        (["--instance", "a", "--instance", "b"], "is used twice; give distinct config files"),
        (["--instance", "1bad"], "not an SMF instance name"),
        (["--fmri", "bad name"], "not a service name"),
        (["--pycarp", "pycarp"], "must be an absolute path"),
        (["--user", "a b"], "not a user name"),
    ],
)
def test_smf_bad_arguments(argv: list[str], error: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["smf", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pycarp render: error: ") and error in err


def test_smf_instance_with_an_empty_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["smf", "--instance", "a="]) == 2
    assert capsys.readouterr().err == (
        "pycarp render: error: --instance: 'a=' has an empty file name\n"
    )


def test_systemd_template_needs_the_instance_in_the_config(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["systemd", "--template", "--config", "/etc/pycarp/a.conf"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pycarp render: error: --config: '/etc/pycarp/a.conf' has no %i")
    assert err.count("\n") == 1


def test_unknown_os_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scripts", "--os", "hpux"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'hpux'" in err


def test_scripts_dir_must_be_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    assert main(["scripts", "--os", "linux", "--dir", str(missing)]) == 2
    assert capsys.readouterr().err == f"pycarp render: error: --dir: {missing} is not a directory\n"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            [],
            "pycarp render: error: the following arguments are required: "
            "{smf,systemd,scripts,ifupdown}",
        ),
        (["smf", "--conf", "x"], "pycarp render: error: unrecognized arguments: --conf x"),
        (["systemd", "--bogus"], "pycarp render: error: unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_point_at_help(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Abbreviations are refused; the one line ends with the hint."""
    assert main(argv) == 2
    assert capsys.readouterr().err == f"{error} (see --help)\n"


@pytest.mark.parametrize("kind", [[], ["smf"], ["systemd"], ["scripts"]])
def test_help(kind: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*kind, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {' '.join(['pycarp render', *kind])} ")


def test_systemd_help_names_the_template_config(capsys: pytest.CaptureFixture[str]) -> None:
    """A help string is %-formatted: the template's %i is escaped, not a format."""
    assert main(["systemd", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "with --template /etc/pycarp/%i.conf, where %i is the instance name" in out
