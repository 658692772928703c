"""The tests' sparse-reward corridor (tests/conftest.py), registered for the bench scripts:
``python bench/robustify.py UserCorridor-v0 --import corridor`` (bench/ is on sys.path when a
script in it runs)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import USER_ENV_MODULE  # noqa: E402

exec(USER_ENV_MODULE)
