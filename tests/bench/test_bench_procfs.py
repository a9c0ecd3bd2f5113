"""bench/procfs.py: /proc parsing and CPU arithmetic."""

from __future__ import annotations

import os

import pytest

from bench import procfs

STATUS = "Name:\tpython3\nVmPeak:\t   50000 kB\nVmRSS:\t   36120 kB\nRssAnon:\t   20000 kB\n"


def test_parsing() -> None:
    assert procfs.parse_schedstat("123456789 4567 89\n") == 123456789
    assert procfs.parse_status_kib(STATUS) == 36120
    assert procfs.parse_status_kib("Rss:  10 kB\nPss:  7 kB\n", "Pss") == 7
    for bad in ("", "x 1 2"):
        with pytest.raises(ValueError):
            procfs.parse_schedstat(bad)
    with pytest.raises(ValueError):
        procfs.parse_status_kib("Name:\tucarp\n")


def test_cpu_counts_new_threads_and_never_goes_negative() -> None:
    start = {10: 1_000, 11: 5_000, 12: 9_000}
    end = {10: 4_000, 11: 5_000, 13: 2_500}  # 12 ended, 13 was born
    assert procfs.cpu_delta_ns(start, end) == 5_500
    assert procfs.cpu_delta_ns({1: 10}, {1: 5}) == 0
    assert procfs.cpu_ns({1: start}, {1: end, 2: {20: 7}}) == 5_507
    assert procfs.per_reference(15_000_000, 15.0) == pytest.approx(30.0)
    with pytest.raises(ValueError):
        procfs.per_reference(1, 0.0)


def test_this_process_can_be_read() -> None:
    me = os.getpid()
    snap = procfs.snapshot([me])
    assert me in snap[me] and snap[me][me] > 0
    assert procfs.rss_kib([me]) > 1000
    assert procfs.rss_kib([2**22 + 1]) == 0  # gone: nothing
