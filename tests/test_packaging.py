"""A regular (non-editable) wheel holds edgeghost.export and edgeghost.runtime and runs the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Build from a clean copy: setuptools reuses ./build, where files deleted from the source would linger.
    src = out / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "dist", "runs", "exports",
                                                             "bench", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True,
        cwd=out,
    )
    wheels = list(out.glob("edgeghost-*.whl"))
    assert len(wheels) == 1
    site = out / "site"
    with zipfile.ZipFile(wheels[0]) as zf:
        zf.extractall(site)
    return site


def test_wheel_maps_export_and_runtime_into_edgeghost(wheel_dir: Path) -> None:
    pkg = wheel_dir / "edgeghost"
    assert (pkg / "export" / "__init__.py").is_file()
    assert (pkg / "runtime" / "__init__.py").is_file()
    assert (pkg / "models" / "ghostnet.py").is_file()
    assert (pkg / "firmware_examples" / "host" / "main.cc").is_file()  # `edgeghost firmware` needs its templates
    # every source package in the tree is in the wheel (a package missing from pyproject's list fails here)
    for src, dst in [(ROOT / "edgeghost", pkg), (ROOT / "export", pkg / "export"), (ROOT / "runtime", pkg / "runtime")]:
        for init in src.rglob("__init__.py"):
            rel = init.relative_to(src)
            assert (dst / rel).is_file(), f"{init} is not packaged"


def test_installed_wheel_imports_and_runs_cli(wheel_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(wheel_dir)}
    code = (
        "import edgeghost, edgeghost.export, edgeghost.runtime, sys;"
        "print(edgeghost.__file__); print(edgeghost.export.__file__);"
        "from edgeghost.cli import main; sys.exit(main(['info', '--model', 'resnet8', '--json']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(str(wheel_dir)) and lines[1].startswith(str(wheel_dir))
    assert '"params_train": 77946' in lines[2]


def test_help_is_plain_text_and_states_each_default_once() -> None:
    """``edgeghost --help`` shows no docstring markup, and no option's help carries two "(default: ...)" notes
    (one in words from the option, one appended by the config-driven flags)."""
    import argparse
    import re

    from edgeghost.cli import build_parser

    parser = build_parser()
    top = parser.format_help()
    assert "``" not in top and "edgeghost command line" in top
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(sub.choices) >= 8
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "``" not in text, name
        options = re.split(r"\n  (?=-)", text.split("options:", 1)[1])
        for option in options:
            flat = " ".join(option.split())
            assert flat.count("(default:") <= 1, f"edgeghost {name}: {flat}"
