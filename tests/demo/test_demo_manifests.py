"""`pycarp demo`'s built-in manifests are the reference scenario's, so the two cannot drift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pycarp.demo import reference
from pycarp.vmadm.manifest import load_manifest, parse_manifest

SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "smartos"


def test_the_demo_has_the_two_reference_zones() -> None:
    assert list(reference.EMBEDDED_MANIFESTS) == ["zoneA", "zoneB"]


@pytest.mark.parametrize("alias", ["zoneA", "zoneB"])
def test_built_in_manifest_equals_the_example(alias: str) -> None:
    example = json.loads((SCENARIO / f"{alias}.json").read_text())
    assert reference.EMBEDDED_MANIFESTS[alias] == example


@pytest.mark.parametrize("alias", ["zoneA", "zoneB"])
def test_built_in_manifest_parses_as_the_example(alias: str) -> None:
    built_in = parse_manifest(reference.EMBEDDED_MANIFESTS[alias], "built-in")
    example = load_manifest(SCENARIO / f"{alias}.json")
    assert built_in.nics == example.nics
    assert (built_in.alias, built_in.hostname) == (example.alias, example.hostname)
