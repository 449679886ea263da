"""Golden test: fixed records -> the exact table text, the CSV, and a figure."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from support import DATA, ROOT

spec = importlib.util.spec_from_file_location("make_tables", ROOT / "scripts" / "make_tables.py")
make_tables = importlib.util.module_from_spec(spec)
sys.modules["make_tables"] = make_tables  # dataclasses look their module up by name
spec.loader.exec_module(make_tables)


def test_records_render_to_the_golden_table(tmp_path):
    written = make_tables.make(DATA / "records", tmp_path, DATA / "configs" / "experiment")
    assert {p.name for p in written} == {"golden_demo.md", "golden_demo.csv", "golden_demo.png"}
    for name in ("golden_demo.md", "golden_demo.csv"):
        assert (tmp_path / "tables" / name).read_text() == (DATA / "golden" / name).read_text(), name
    png = tmp_path / "figures" / "golden_demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_failed_evaluations_are_gaps_not_numbers():
    curves = [[{"score": 1.0}, {"score": float("inf")}], [{"score": 3.0}]]
    matrix = make_tables.curve_matrix(curves, "score")
    assert matrix.shape == (2, 2)
    assert matrix[0, 0] == 1.0 and matrix[1, 0] == 3.0
    assert all(v != v for v in (matrix[0, 1], matrix[1, 1]))  # NaN


def test_no_records_is_one_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no run records"):
        make_tables.make(tmp_path, tmp_path, DATA / "configs" / "experiment")
