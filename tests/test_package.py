"""The package a user installs: an sdist and a wheel that work outside this checkout.

``python -m build`` makes the sdist and then the wheel from the sdist (so a file missing from
the sdist breaks the wheel too); the wheel goes into a fresh virtual environment, and its
``stepstone`` command runs ``--help`` and a short ``explore``. Nothing is downloaded: the
build runs without isolation (setuptools and build come from the dev extra), the wheel is
installed with ``--no-deps --no-index``, and the dependencies are this environment's, seen
through a ``.pth`` file. (``venv --system-site-packages`` would not do: made from a virtual
environment's Python, it sees the base interpreter's packages, not this environment's.)
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What the sdist is built from: the files pyproject.toml names, and the package.
SOURCES = ("pyproject.toml", "README.md", "LICENSE")


def run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, f"{cmd} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and wheel, built from a copy of the sources (the checkout stays clean)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        (src / name).write_bytes((ROOT / name).read_bytes())
    shutil.copytree(
        ROOT / "stepstone", src / "stepstone", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src))
    return out


def test_sdist_and_wheel_hold_the_package_data_and_licence(dist):
    (sdist,) = dist.glob("stepstone-*.tar.gz")
    (wheel,) = dist.glob("stepstone-*-py3-none-any.whl")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "pyproject.toml", "stepstone/view_page.html"} <= names
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = z.read(meta).decode()
    assert "stepstone/view_page.html" in names
    assert "stepstone/rlvr/__init__.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in metadata
    assert "Requires-Python: >=3.11" in metadata
    assert "Provides-Extra: minigrid" in metadata and "Provides-Extra: rlvr" in metadata


def test_wheel_installs_in_a_fresh_venv_and_explores(dist, tmp_path):
    (wheel,) = dist.glob("stepstone-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
        "--no-deps", "--no-index", str(wheel))  # fmt: skip
    # The dependencies: this environment's site-packages, after the venv's own (a path in a
    # .pth file is appended, and the .pth files there, such as an editable stepstone, are not
    # read, so the stepstone imported is the wheel's).
    purelib = run(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    deps = "\n".join(site.getsitepackages()) + "\n"
    (Path(purelib.stdout.strip()) / "dependencies.pth").write_text(deps)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    where = run(str(python), "-c", "import stepstone; print(stepstone.__file__)", env=env,
                cwd=tmp_path)  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(venv)
    stepstone = str(venv / "bin" / "stepstone")
    assert "explore" in run(stepstone, "--help", env=env, cwd=tmp_path).stdout
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    shown = run(stepstone, "--version", env=env, cwd=tmp_path).stdout.strip()
    assert shown == f"stepstone {version}"
    run_dir = tmp_path / "run"
    run(stepstone, "explore", "CartPole-v1", "--frames", "500", "--workers", "1",
        "--run-dir", str(run_dir), "--no-progress", env=env, cwd=tmp_path)  # fmt: skip
    assert (run_dir / "run.sqlite").is_file()
    # The page's template is package data: view fails without it.
    run(stepstone, "view", str(run_dir), "--max-frames", "2", env=env, cwd=tmp_path)
    assert (run_dir / "view.html").stat().st_size > 0
