"""README's library example, run as a user copies it: the one-call run of "As a library"."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_one_call_library_example_runs_and_resumes(tmp_path, monkeypatch, capsys):
    section = README.read_text().split("## As a library", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    cells, best = re.fullmatch(r"(\d+) cells, best score (\S+)", printed).groups()
    assert 0 < int(cells) < 5_000 and float(best) > 0  # re-chosen bins, not a cell a state
    assert (tmp_path / "runs" / "lib" / "run.sqlite").exists()
    exec(compile(code, "README.md", "exec"), {})  # again: resumed, its budget already spent
    assert capsys.readouterr().out.strip().splitlines()[-1] == printed
