"""`python -m bench.inprocess`: this package's own cost per event and ack, against the raw echo."""

from __future__ import annotations

import re

import pytest

from bench import inprocess


def test_both_servers_answer_every_event(capsys: pytest.CaptureFixture[str]) -> None:
    assert inprocess.main(["--rounds", "300"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["ours", "raw", "ours"]
    assert re.fullmatch(r"ours +\d+\.\d\d CPU µs per event and ack", lines[0])
    assert re.fullmatch(r"ours - raw: -?[\d,]+\.\d\d \(\d+\.\d\dx\)", lines[2])
