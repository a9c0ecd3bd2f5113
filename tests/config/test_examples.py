"""Every TOML file in examples/ loads (as `pycarp check-config FILE --no-machine-checks`)."""

from __future__ import annotations

from ipaddress import IPv6Address
from pathlib import Path

import pytest

from pycarp.config.load import load_file

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_an_example_loads(path: Path) -> None:
    kind, settings = load_file(str(path), check_machine=False)
    assert kind == "TOML" and settings.vhosts


def test_the_ipv6_examples_mix_and_separate_the_families() -> None:
    for name in ("ipv6-a.toml", "ipv6-b.toml"):
        _, settings = load_file(str(EXAMPLES[0].parent / name), check_machine=False)
        mixed, only6 = settings.vhosts
        assert mixed.versions == (4, 6) and mixed.srcip is not None
        assert only6.versions == (6,) and only6.srcip is None  # [defaults]' srcip: IPv4's
        assert only6.addresses == (IPv6Address("2001:db8::201"),)
