"""The READMEs are a contract: every ``bash`` and ``python`` block runs, and the measured tables are current.

Every fenced ``bash``/``python`` block of ``DOCS`` runs, in document order, in one temp copy of the checkout
(``.venv`` linked in, so ``. .venv/bin/activate`` works as written; the venv's ``bin`` first on PATH;
``TFLM_DIR`` unset, as in a new user's shell). A block fails the test when any of its commands fails
(``bash -euo pipefail``). What cannot run here is handled in exactly three documented ways:

* ``SUBSTITUTIONS`` shrink sizes (images, epochs, the width-2.8 export) so the run takes minutes, not hours;
  ``EDGEGHOST_DOCTEST_FULL=1`` turns them off and runs every command exactly as written.
* ``SKIP_LINES`` drop the set-up commands (``make demo``/``make test``: they made the venv this runs in) and
  commands that need a real Raspberry Pi, each with its reason (a ``DocTestSkip`` warning names the line).
* A ``<!-- doc-test: skip REASON -->`` comment on the line(s) just above a block skips the whole block with
  that reason. Use it sparingly: a skipped command is an untested command.

An ``edgeghost export`` command that already ran, token for token, in an earlier block is not run again (the
same folder would be rewritten with the same files). ``KNOWN_FAILURES`` lists blocks that fail today, with
whose fix they wait for; such a block must still fail (it is reported as xfail), and the test fails once it
passes, so that the entry is removed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FULL = os.environ.get("EDGEGHOST_DOCTEST_FULL") == "1"
DOC_GLOBS = ("README.md", "edgeghost/*/README.md", "export/README.md", "runtime/README.md",
             "firmware_examples/README.md", "firmware_examples/*/README.md")
BLOCK_TIMEOUT_S = 3600  # per block; the whole doc test takes minutes on an idle 2-core machine

# (pattern, replacement, why), applied in order to every logical command line (continuations joined) unless
# EDGEGHOST_DOCTEST_FULL=1. argparse takes the last value of a repeated option, so a value a command gives
# is shrunk in place and the defaults are inserted right after the subcommand.
SUBSTITUTIONS = [
    (r"--epochs \d+", "--epochs 1", "one epoch"),
    (r"--train-samples \d+", "--train-samples 256", "256 training images"),
    (r"--test-samples \d+", "--test-samples 64", "64 test images"),
    (r"--calib-samples \d+", "--calib-samples 32", "32 calibration images"),
    (r"--eval-samples \d+", "--eval-samples 16", "16 evaluation images"),
    (r"^(edgeghost export)\b", r"\1 --calib-samples 32 --eval-samples 16", "small export samples"),
    (r"^(edgeghost export\b.*)--width 2\.8\b", r"\1--width 0.25", "the width-2.8 export at width 0.25"),
]
# (pattern, why): command lines that are dropped, with the reason given as a warning.
SKIP_LINES = [
    (r"^make (demo|test)\b", "the set-up itself: it created the venv this test runs in"),
    (r"pi@|--device rpi4\b|^edgeghost device setup\b", "needs a real Raspberry Pi host"),
    (r"^edgeghost flash\b(?!.*--dry-run)", "needs an STM32 board on an ST-LINK (tests/test_stm32.py checks the rest)"),
]
# (document, start of the block's first command) → whose fix it waits for. Keep this short.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


class DocTestSkip(UserWarning):
    """A README command line that the doc test did not run, and why."""


@dataclass(frozen=True)
class Block:
    doc: str  # path relative to the checkout
    line: int  # 1-based line of the opening fence
    lang: str  # bash | python
    text: str
    skip: str | None  # reason from a <!-- doc-test: skip ... --> marker

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def first_command(self) -> str:
        return next((ln.strip() for ln in logical_lines(self.text) if ln.strip() and not ln.lstrip().startswith("#")),
                    "")


_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP_MARK = re.compile(r"<!--\s*doc-test:\s*skip\s+(.+?)\s*-->")


def extract_blocks(doc: str, text: str) -> list[Block]:
    """Fenced ``bash``/``python`` blocks of one Markdown text, with their skip markers."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
        if m.group(1) in ("bash", "python"):
            above = i - 1
            while above >= 0 and not lines[above].strip():
                above -= 1
            mark = _SKIP_MARK.search(lines[above]) if above >= 0 else None
            blocks.append(Block(doc, i + 1, m.group(1), "\n".join(lines[i + 1 : end]) + "\n",
                                mark.group(1) if mark else None))
        i = end + 1
    return blocks


def logical_lines(script: str) -> list[str]:
    """Shell lines with backslash continuations joined (what bash executes as one command)."""
    return re.sub(r"[ \t]*\\\n\s*", " ", script).splitlines()


def prepare_bash(script: str, *, full: bool = FULL) -> tuple[str, list[tuple[str, str]]]:
    """The script the test runs and the (line, reason) pairs it left out."""
    kept, skipped = [], []
    for line in logical_lines(script):
        command = line.strip()
        reason = next((why for pat, why in SKIP_LINES if re.search(pat, command)), None)
        if reason:
            skipped.append((command, reason))
            continue
        if not full:
            for pat, repl, _ in SUBSTITUTIONS:
                command = re.sub(pat, repl, command)
        kept.append(command)
    return "\n".join(kept) + "\n", skipped


def _docs() -> list[Path]:
    seen: list[Path] = []
    for pattern in DOC_GLOBS:
        seen += [p for p in sorted(ROOT.glob(pattern)) if p not in seen]
    return seen


BLOCKS = [b for doc in _docs() for b in extract_blocks(str(doc.relative_to(ROOT)), doc.read_text())]


def _checkout_files() -> list[str]:
    """Tracked files plus untracked ones git does not ignore: what a clone of the next commit holds."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the doc test copies the checkout's files")
    return [f for f in out.stdout.decode().split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the checkout with the running venv linked in as ``.venv``; state shared by the blocks."""
    root = tmp_path_factory.mktemp("checkout")
    for rel in _checkout_files():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, root / rel)
    venv = Path(sys.prefix)
    (root / ".venv").symlink_to(venv, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ("TFLM_DIR", "PYTHONPATH")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"), PYTHONUNBUFFERED="1")
    return {"root": root, "env": env, "exports": {}}


def _dedupe_exports(script: str, block: Block, done: dict) -> str:
    lines = []
    for line in script.splitlines():
        tokens = tuple(shlex.split(line, comments=True)) if line.startswith("edgeghost export") else ()
        if tokens and tokens in done:
            warnings.warn(DocTestSkip(f"{block.id}: `{line}` ran already in {done[tokens]}"), stacklevel=2)
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], *, cwd: Path, env: dict) -> tuple[int, str]:
    """Run one block in its own process group (so a timeout ends every command it started); exit code and the
    tail of stdout + stderr."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return -1, f"timed out after {BLOCK_TIMEOUT_S} s\n{out[-4000:]}"
    return proc.returncode, out[-4000:]


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block_runs(block: Block, workspace: dict) -> None:
    if block.skip:
        pytest.skip(f"{block.id}: {block.skip} (doc-test marker)")
    root, env = workspace["root"], workspace["env"]
    if block.lang == "python":
        script = root / ".doctest_block.py"
        script.write_text(block.text)
        cmd = [str(Path(sys.prefix) / "bin" / "python"), str(script)]
        shown = block.text
    else:
        text, skipped = prepare_bash(block.text)
        for line, reason in skipped:
            warnings.warn(DocTestSkip(f"{block.id}: `{line}` not run: {reason}"), stacklevel=1)
        text = _dedupe_exports(text, block, workspace["exports"])
        if not any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines()):
            pytest.skip(f"{block.id}: nothing left to run ({'; '.join(r for _, r in skipped) or 'ran already'})")
        cmd = ["bash", "-euo", "pipefail", "-c", text]
        shown = text
    returncode, output = _run(cmd, cwd=root, env=env)
    known = next((why for (doc, prefix), why in KNOWN_FAILURES.items()
                  if doc == block.doc and block.first_command.startswith(prefix)), None)
    if known and returncode != 0:
        pytest.xfail(f"{block.id} fails (known, waits for {known}):\n{output[-800:]}")
    if known:
        pytest.fail(f"{block.id} passes now: remove its KNOWN_FAILURES entry ({known})")
    assert returncode == 0, f"{block.id} failed (exit {returncode}); ran:\n{shown}\noutput:\n{output}"
    if block.lang == "bash":
        for line in text.splitlines():
            if line.startswith("edgeghost export"):
                workspace["exports"][tuple(shlex.split(line, comments=True))] = block.id


# --- the generated sections ---------------------------------------------------------------------------------

def test_generated_sections_are_current() -> None:
    """Every table between generated markers equals what benchmarks/update_readme.py makes of the results."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "update_readme.py"), "--check", "--diff"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_update_readme_detects_a_stale_section() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import update_readme
    finally:
        sys.path.pop(0)
    stale = "intro\n<!-- generated:host_matrix -->\n| GN-S w0.5 | 9.99 |\n<!-- /generated:host_matrix -->\nend\n"
    fresh, changed = update_readme.render(stale, cache={})
    assert changed == ["host_matrix"]
    assert fresh.startswith("intro\n<!-- generated:host_matrix -->\n| model |") and fresh.endswith("end\n")
    assert "| 9.99 |" not in fresh and "benchmarks/results/host_matrix.json" in fresh
    assert update_readme.render(fresh, cache={}) == (fresh, [])
    with pytest.raises(SystemExit, match="no generator"):
        update_readme.render("<!-- generated:nope -->\n<!-- /generated:nope -->\n", cache={})


# --- the doc test's own machinery -------------------------------------------------------------------------

def test_blocks_markers_and_substitutions() -> None:
    md = ("text\n```bash\nedgeghost train --epochs 200 \\\n    --train-samples 5000\nmake demo\n```\n"
          "<!-- doc-test: skip needs a board -->\n\n```python\nprint(1)\n```\n```\nnot a shell block\n```\n")
    train, py = extract_blocks("X.md", md)
    assert (train.lang, train.line, train.skip, py.lang, py.skip) == ("bash", 2, None, "python", "needs a board")
    script, skipped = prepare_bash(train.text, full=False)
    assert script == "edgeghost train --epochs 1 --train-samples 256\n"
    assert skipped == [("make demo", SKIP_LINES[0][1])]
    assert prepare_bash(train.text, full=True)[0] == "edgeghost train --epochs 200 --train-samples 5000\n"
    export, _ = prepare_bash("edgeghost export --width 2.8 --int8 --eval-samples 10000\n", full=False)
    assert shlex.split(export) == ["edgeghost", "export", "--calib-samples", "32", "--eval-samples", "16", "--width",
                                   "0.25", "--int8", "--eval-samples", "16"]
    assert prepare_bash("edgeghost info --width 2.8\n", full=False)[0] == "edgeghost info --width 2.8\n"
    assert len(BLOCKS) >= 10 and {b.doc for b in BLOCKS} >= {"README.md", "export/README.md"}
