"""`mock-custodian export`: a Download My Data file with the API's values, valid, with a progress bar."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lxml import etree
from support import assert_valid_espi

NS = {"e": "http://naesb.org/espi"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mock_custodian", *args], capture_output=True, text=True, timeout=120)


def test_export_one_month(tmp_path: Path) -> None:
    out = tmp_path / "gb.xml"
    done = run("export", "--data-dir", str(tmp_path / "d"), "rivera-electric", "--start", "2026-03-01", "--end",
               "2026-04-01", "-o", str(out), "--progress")
    assert done.returncode == 0, done.stderr
    assert "100.0%" in done.stderr
    doc = etree.parse(str(out))
    starts = doc.xpath("//e:IntervalBlock/e:interval/e:start/text()", namespaces=NS)
    assert len(starts) == 31
    assert len(doc.xpath("//e:IntervalReading", namespaces=NS)) == 31 * 24 - 1  # spring forward on 2026-03-08
    assert len(doc.xpath("//e:UsageSummary", namespaces=NS)) >= 1
    assert_valid_espi(out)


def test_export_refuses_unknown_sa_and_bad_dates(tmp_path: Path) -> None:
    unknown = run("export", "--data-dir", str(tmp_path / "d"), "nope", "--start", "2026-03-01", "--end", "2026-04-01")
    assert unknown.returncode == 2 and "no service agreement 'nope'" in unknown.stderr
    backwards = run("export", "--data-dir", str(tmp_path / "d"), "rivera-gas", "--start", "2026-04-01", "--end",
                    "2026-03-01")
    assert backwards.returncode == 2 and "--start must be before --end" in backwards.stderr
