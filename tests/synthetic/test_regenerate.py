"""tools/regenerate_datasets.py: the shipped synthetic files are byte for byte the generators' output."""

from __future__ import annotations

from tools import regenerate_datasets


def test_shipped_files_are_the_generators_output():
    assert regenerate_datasets.regenerate(check=True) == []


def test_regenerate_writes_every_file_and_check_reports_a_difference(tmp_path, capsys):
    assert regenerate_datasets.main(["--dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(regenerate_datasets.GENERATORS)
    (tmp_path / "ai_firms_synthetic.csv").write_text("changed\n", encoding="utf-8")
    assert regenerate_datasets.main(["--check", "--dir", str(tmp_path)]) == 1
    assert "differs: ai_firms_synthetic.csv" in capsys.readouterr().out
