"""Firmware projects for a full-integer model (int8, or int16x8): generate from ``firmware_examples/``, build,
run, check, measure.

``generate_firmware`` writes a ready project for one target (host program, bare-metal Cortex-M4/M55, ESP32-S3,
Arduino, MLPerf Tiny harness): the target's example files, the shared classifier, the generated model files from
:mod:`edgeghost.export.tflm` and, for the self-checking targets, test inputs with the TFLite-Micro Python
interpreter's outputs. ``build_firmware`` compiles it against a TFLite-Micro source tree (``TFLM_DIR``), compiling
only the kernels the model uses and sharing object files between projects; ``run_firmware`` runs the host
binary or QEMU and returns the raw integer outputs; ``firmware_size`` reads flash/RAM from the ELF.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import EdgeGhostError
from ..fileio import check_writable

# Shipped next to the package (wheel: edgeghost/firmware_examples) or at the repo root (source checkout); from
# export/firmware.py both are two levels up.
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "firmware_examples"

TFLM_COMMIT = "90b983c2b3f1480642e040bbd2ddb37b998f3424"  # the tree the examples are checked against in CI


@dataclass(frozen=True)
class Target:
    """One firmware target: where its example lives, how it builds and how it runs."""

    name: str
    example: str  # folder in firmware_examples/
    # "host" (Linux program), "qemu" (bare-metal ELF run here in QEMU), "flash" (bare-metal ELF built here, run on
    # the board through `edgeghost flash`), "board" (built by the user's own tools)
    runner: str
    cc: str = ""  # compiler that --build needs
    package: str = ""  # Debian package(s) providing the toolchain
    cpu_flags: str = ""
    linker_script: str = ""
    qemu_machine: str = ""
    kernels: tuple[str, ...] = ("reference",)  # kernel flavours that build for it
    sources: str = "src"  # project folder for sources and generated files (where the build system looks)
    # Processor clock that QEMU feeds the core's SysTick on this board (its SYSCLK/MAINCLK); under
    # `-icount shift=0` one tick is 1e9 / clock_hz instructions. Checked against a calibration loop on every run.
    clock_hz: int = 0
    board: str = "semihosting"  # firmware_examples/cortex-m/board_<board>.cc: console, clocks, exit
    board_defines: str = ""  # preprocessor flags for the application sources (chip, emulator build)
    # On-chip memory of a real chip (the linker script's regions), checked before building; 0 = not a limit here.
    flash_bytes: int = 0
    ram_bytes: int = 0
    # What flashes and resets it: openocd's target configuration (st-flash needs none).
    openocd_target: str = ""

    @property
    def bare_metal(self) -> bool:
        """Built here as a Cortex-M ELF (emulated or flashed)."""
        return self.runner in ("qemu", "flash")

    @property
    def serial_console(self) -> bool:
        """Prints on a USART (STM32 boards) rather than by semihosting."""
        return self.board != "semihosting"


_ARM = "arm-none-eabi-g++"
_ARM_PACKAGE = "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev"
_BOTH = ("reference", "cmsis-nn")
# name | example | runner | toolchain | Debian package | CPU flags | linker script | QEMU machine | kernels | clock
TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("host", "host", "host", "g++", "g++"),
        Target("mlperf-tiny", "mlperf_tiny", "host", "g++", "g++"),
        Target("cortex-m4", "cortex-m", "qemu", _ARM, _ARM_PACKAGE, "-mcpu=cortex-m4 -mfpu=fpv4-sp-d16",
               "mps2_an386.ld", "mps2-an386", _BOTH, clock_hz=25_000_000),
        Target("cortex-m7", "cortex-m", "qemu", _ARM, _ARM_PACKAGE, "-mcpu=cortex-m7 -mfpu=fpv5-d16",
               "mps2_an386.ld", "mps2-an500", _BOTH, clock_hz=25_000_000),
        Target("cortex-m33", "cortex-m", "qemu", _ARM, _ARM_PACKAGE, "-mcpu=cortex-m33 -mfpu=fpv5-sp-d16",
               "mps2_an505.ld", "mps2-an505", _BOTH, clock_hz=20_000_000),
        # -mcpu=cortex-m55 enables Helium (MVE): CMSIS-NN then compiles its MVE code paths (ARM_MATH_MVEI).
        Target("cortex-m55", "cortex-m", "qemu", _ARM, _ARM_PACKAGE, "-mcpu=cortex-m55",
               "mps3_an547.ld", "mps3-an547", _BOTH, clock_hz=32_000_000),
        # STM32: register-level clocks and the ST-LINK virtual COM port (board_stm32.cc). The Netduino Plus 2's
        # STM32F405 is the one QEMU models (its USART, not its clock tree): the STM32F4 code runs here in CI; the
        # NUCLEO boards build here and run through `edgeghost flash`. Under QEMU SysTick runs at 168 MHz.
        Target("netduinoplus2", "cortex-m", "qemu", _ARM, _ARM_PACKAGE, "-mcpu=cortex-m4 -mfpu=fpv4-sp-d16",
               "stm32f405.ld", "netduinoplus2", _BOTH, clock_hz=168_000_000, board="stm32",
               board_defines="-DEDGEGHOST_STM32F405 -DEDGEGHOST_SEMIHOSTING_EXIT", flash_bytes=1 << 20,
               ram_bytes=128 << 10, openocd_target="target/stm32f4x.cfg"),
        Target("nucleo-f446re", "cortex-m", "flash", _ARM, _ARM_PACKAGE, "-mcpu=cortex-m4 -mfpu=fpv4-sp-d16",
               "stm32f446re.ld", "", _BOTH, clock_hz=180_000_000, board="stm32",
               board_defines="-DEDGEGHOST_STM32F446", flash_bytes=512 << 10, ram_bytes=128 << 10,
               openocd_target="target/stm32f4x.cfg"),
        Target("nucleo-l4r5zi", "cortex-m", "flash", _ARM, _ARM_PACKAGE, "-mcpu=cortex-m4 -mfpu=fpv4-sp-d16",
               "stm32l4r5zi.ld", "", _BOTH, clock_hz=120_000_000, board="stm32",
               board_defines="-DEDGEGHOST_STM32L4R5", flash_bytes=2 << 20, ram_bytes=640 << 10,
               openocd_target="target/stm32l4x.cfg"),
        Target("esp32s3", "esp32s3", "board", kernels=("esp-nn",), sources="main"),
        Target("arduino", "arduino", "board", kernels=("arduino",), sources="edgeghost_classifier"),
    )
}
KERNELS = ("reference", "cmsis-nn")
CORTEX_M_TARGETS = tuple(name for name, t in TARGETS.items() if t.runner == "qemu")
BOARD_TARGETS = tuple(name for name, t in TARGETS.items() if t.runner == "flash")
_TREE_SUBDIR = {"reference": "reference", "cmsis-nn": "cmsis_nn"}
_QEMU_PACKAGE = "qemu-system-arm"


def get_target(name: str) -> Target:
    """The :class:`Target` called ``name``; an unknown name lists the known ones."""
    if name not in TARGETS:
        raise EdgeGhostError(f"unknown firmware target {name!r}; choose one of {', '.join(TARGETS)}")
    return TARGETS[name]


# --- TFLite-Micro tree -----------------------------------------------------------------------------------------


TFLM_REPO = "https://github.com/tensorflow/tflite-micro"
# A source checkout keeps firmware_examples/ at the repository root; the shared trees sit beside the checkout.
_SHARED_TREES = EXAMPLES_DIR.parent.parent / "shared" / "third_party" / "tflm"


def _tree_for(root: Path, kernels: str) -> Path | None:
    for tree in (root, root / _TREE_SUBDIR[kernels]):
        if (tree / "tensorflow/lite/micro/micro_interpreter.h").is_file():
            has_cmsis = (tree / "tensorflow/lite/micro/kernels/cmsis_nn").is_dir()
            if has_cmsis == (kernels == "cmsis-nn"):
                return tree
    return None


def user_tree_cache() -> Path:
    """Where edgeghost builds TFLite-Micro trees when none is given: ``~/.cache/edgeghost/tflm/<commit>``."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "edgeghost" / "tflm" / TFLM_COMMIT[:12]


def find_tflm_root(tflm_dir: str | Path | None = None, *, kernels: str = "reference") -> Path:
    """The one rule for finding the TFLite-Micro source trees, in order: ``tflm_dir`` (``--tflm-dir``),
    ``$TFLM_DIR``, ``../shared/third_party/tflm`` beside the source checkout, the user cache
    (:func:`user_tree_cache`, filled by :func:`build_tflm_trees`). Returns the folder holding the tree for
    ``kernels`` (a tree made by ``create_tflm_tree.py``, or a folder with ``reference/`` and ``cmsis_nn/``).
    A given folder (flag or variable) that holds no such tree is an error, not a reason to look elsewhere."""
    if kernels not in KERNELS:
        raise EdgeGhostError(f"unknown kernels {kernels!r}; choose one of {', '.join(KERNELS)}")
    given = tflm_dir or os.environ.get("TFLM_DIR")
    if given:
        root = Path(given).expanduser().resolve()
        if _tree_for(root, kernels) is None:
            raise EdgeGhostError(
                f"{root} holds no TFLite-Micro tree with {kernels} kernels (expected tensorflow/lite/micro/ in it "
                f"or in {root / _TREE_SUBDIR[kernels]})"
            )
        return root
    for root in (_SHARED_TREES, user_tree_cache()):
        if _tree_for(root, kernels) is not None:
            return root
    raise EdgeGhostError(
        f"no TFLite-Micro tree with {kernels} kernels: pass --tflm-dir or set TFLM_DIR, or let "
        f"`python -m edgeghost.export.firmware --tflm-dir --build` clone {TFLM_REPO} at {TFLM_COMMIT[:8]} into "
        f"{user_tree_cache()} (needs the network; see firmware_examples/README.md)"
    )


def resolve_tflm_dir(tflm_dir: str | Path | None, *, kernels: str = "reference") -> Path:
    """The TFLM source tree itself for ``kernels``, found by :func:`find_tflm_root`."""
    root = find_tflm_root(tflm_dir, kernels=kernels)
    tree = _tree_for(root, kernels)
    assert tree is not None  # find_tflm_root checked it
    return tree


def build_tflm_trees(dest: Path | None = None, *, timeout: float = 1800.0) -> Path:
    """Make the reference and CMSIS-NN trees at :data:`TFLM_COMMIT` in ``dest`` (default: the user cache):
    clone tflite-micro, run its ``create_tflm_tree.py`` twice, swap the result in. Offline, one clear error
    saying what to provide."""
    dest = Path(dest) if dest is not None else user_tree_cache()
    if all(_tree_for(dest, k) for k in KERNELS):
        return dest
    if shutil.which("git") is None:
        raise EdgeGhostError("git not found (sudo apt-get install git): cannot fetch tflite-micro; "
                             "provide a tree with --tflm-dir or TFLM_DIR (see firmware_examples/README.md)")
    import sys
    import tempfile

    from .tflm import replace_dir

    def run(cmd: list[str], cwd: Path | None = None) -> None:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
            raise EdgeGhostError(f"could not build TFLite-Micro trees ({' '.join(cmd[:3])} failed: {tail[0]}); "
                                 "offline? provide one with --tflm-dir or TFLM_DIR (see firmware_examples/README.md)")

    with tempfile.TemporaryDirectory() as work:
        src = Path(work) / "tflite-micro"
        run(["git", "clone", "--filter=blob:none", "--quiet", TFLM_REPO, str(src)])
        run(["git", "checkout", "--quiet", TFLM_COMMIT], cwd=src)
        gen = "tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py"

        def make(tmp: Path) -> None:
            run([sys.executable, gen, "-e", "hello_world", str(tmp / "reference")], cwd=src)
            run([sys.executable, gen, "-e", "hello_world", "--makefile_options=TARGET=cortex_m_generic "
                 "TARGET_ARCH=cortex-m4+fp OPTIMIZED_KERNEL_DIR=cmsis_nn", str(tmp / "cmsis_nn")], cwd=src)

        replace_dir(dest, make)
    return dest


# Framework sources that only tests, recording tools, the profiler or other platforms use (checked by linking
# GN-S and ResNet-8 without them; a model that needs one fails to link with the symbol's name).
_SKIP_CORE = {
    "test_helpers.cc", "test_helper_custom_ops.cc", "fake_micro_context.cc", "mock_micro_graph.cc",
    "recording_micro_allocator.cc", "recording_single_arena_buffer_allocator.cc", "hexdump.cc",
    "micro_profiler.cc", "system_setup.cc", "non_persistent_buffer_planner_shim.cc",
    "persistent_arena_buffer_allocator.cc", "non_persistent_arena_buffer_allocator.cc",
}
_PLATFORM_FILES = {"debug_log.cc", "micro_time.cc"}


def tflm_sources(tree: Path, ops: Sequence[str], *, own_platform: bool) -> list[str]:
    """TFLM source files (relative to ``tree``) needed for a model using ``ops``.

    The interpreter core, the shared kernel helpers, and for each op the file that defines its registration plus
    its ``*_common.cc``; with CMSIS-NN kernels also the CMSIS-NN C library. ``own_platform``: the firmware brings
    its own ``DebugLog`` and timer (bare metal), so the tree's are left out.
    """
    from .tflm import resolver_methods

    micro = tree / "tensorflow/lite/micro"
    core: list[Path] = []
    for folder in ("tensorflow/lite/core", "tensorflow/lite/kernels", "tensorflow/compiler/mlir/lite"):
        core += sorted((tree / folder).rglob("*.cc"))
    core += sorted(p for p in micro.glob("*.cc") if p.name not in _SKIP_CORE)
    for sub in ("arena_allocator", "memory_planner", "tflite_bridge"):
        core += sorted(p for p in (micro / sub).glob("*.cc") if p.name not in _SKIP_CORE)
    core = [p for p in core if not p.name.endswith("_test.cc")]
    if own_platform:
        core = [p for p in core if p.parent != micro or p.name not in _PLATFORM_FILES]
    elif not (micro / "debug_log.cc").is_file():
        core += sorted((micro / "cortex_m_generic").glob("*.cc"))  # a tree generated for Cortex-M only

    kernel_dir = micro / "kernels"
    kernel_files = sorted(kernel_dir.rglob("*.cc"))
    header = (micro / "micro_mutable_op_resolver.h").read_text()
    needed = [kernel_dir / "kernel_util.cc"]
    for method in resolver_methods(ops):
        # The registration the resolver method uses by default, e.g. AddMean -> Register_MEAN().
        m = re.search(rf"TfLiteStatus {method}\((?:(?!TfLiteStatus Add).)*?(Register_\w+)\(", header, re.S)
        if not m:
            raise EdgeGhostError(f"TFLM tree {tree} has no {method}() in micro_mutable_op_resolver.h")
        defining = [f for f in kernel_files if re.search(rf"\b{m.group(1)}\(\)\s*\{{", f.read_text())]
        if not defining:
            raise EdgeGhostError(f"TFLM tree {tree} defines no {m.group(1)}() for {method}")
        for f in defining:
            common = kernel_dir / f"{f.stem}_common.cc"
            needed += [f] + ([common] if common.is_file() else [])

    files = list(dict.fromkeys(core + needed))
    if (kernel_dir / "cmsis_nn").is_dir():
        files += _cmsis_nn_sources(tree / "third_party/cmsis_nn/Source", needed)
    return [str(p.relative_to(tree)) for p in files]


_C_DEFINITION = re.compile(r"^[A-Za-z_][\w \*]*?\b(arm_\w+)\s*\([^;{]*\)\s*\{", re.M)
_C_CALL = re.compile(r"\b(arm_\w+)\s*\(")


def _cmsis_nn_sources(source_dir: Path, kernels: Sequence[Path]) -> list[Path]:
    """The CMSIS-NN C files the chosen kernels reach: functions they call, and what those call, transitively
    (about a fifth of the library for a typical CNN)."""
    defined_in: dict[str, Path] = {}
    texts: dict[Path, str] = {}
    for f in sorted(source_dir.rglob("*.c")):
        texts[f] = f.read_text(errors="replace")
        for name in _C_DEFINITION.findall(texts[f]):
            defined_in.setdefault(name, f)
    todo = [name for k in kernels for name in _C_CALL.findall(k.read_text())]
    chosen: dict[Path, None] = {}
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in defined_in:
            continue
        seen.add(name)
        f = defined_in[name]
        if f not in chosen:
            chosen[f] = None
            todo += _C_CALL.findall(texts[f])
    return sorted(chosen)


def _tflm_includes(tree: Path) -> list[str]:
    if (tree / "tensorflow/lite/micro/kernels/cmsis_nn").is_dir():
        return ["third_party/cmsis_nn", "third_party/cmsis_nn/Include", "third_party/cmsis/CMSIS/Core/Include"]
    return []


# --- project generation ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSource:
    """The model a firmware project is generated for: the .tflite, its TFLM artefacts, labels and dataset."""

    tflite: Path  # the flatbuffer the firmware embeds (tflm/model.tflite: names stripped), what checks run on
    tflm_dir: Path  # folder with model_data.cc/.h, model_settings.h, model_ops.h, tflm.json
    info: dict[str, Any]  # tflm.json
    dataset: str | None
    preprocess: dict[str, Any] | None = None  # the export's input preprocessing (size, channels, resize, mean/std)


PRECISIONS = {"int8": "tflm", "int16x8": "tflm_int16x8"}  # an export's TFLite-Micro stage per precision


def model_from_export(export_dir: str | Path, *, precision: str = "int8") -> ModelSource:
    """An export folder (``edgeghost export``): its int8 model and the ``tflm/`` artefacts made at export, or with
    ``precision="int16x8"`` its 16-bit-activation model and ``tflm_int16x8/``."""
    export_dir = Path(export_dir)
    from .pipeline import STAGES

    if precision not in PRECISIONS:
        raise EdgeGhostError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    tflm = STAGES[PRECISIONS[precision]]
    tflite, tflm_dir = export_dir / STAGES[tflm.source].artifact, export_dir / tflm.artifact
    if not tflite.is_file() or not (tflm_dir / "tflm.json").is_file():
        raise EdgeGhostError(
            f"{export_dir} is not an {precision} export (needs {tflite.name} and {tflm_dir.name}/): run "
            f"`edgeghost export --{precision}`"
        )
    from .tflm import EMBEDDED_MODEL

    if (tflm_dir / EMBEDDED_MODEL).is_file():
        tflite = tflm_dir / EMBEDDED_MODEL  # the bytes the firmware embeds (names stripped): what the check runs
    manifest_path = export_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    dataset = manifest.get("dataset") if isinstance(manifest.get("dataset"), str) else None
    return ModelSource(tflite, tflm_dir, json.loads((tflm_dir / "tflm.json").read_text()), dataset,
                       manifest.get("preprocess"))


def model_from_tflite(tflite: str | Path, work_dir: str | Path, *, labels: Sequence[str] | None = None) -> ModelSource:
    """Any full-integer ``.tflite`` (int8 or int16x8): TFLM artefacts are generated (arena measured) into
    ``work_dir``."""
    from ..runtime import read_tflite
    from .tflm import write_tflm_artifacts

    tflite = Path(tflite)
    facts = read_tflite(tflite)
    labels = list(labels) if labels else [f"class_{i}" for i in range(facts.output.shape[-1])]
    info = write_tflm_artifacts(tflite, work_dir, labels=labels)
    return ModelSource(Path(work_dir) / info["embedded"], Path(work_dir), info, None)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _c_array_rows(values: np.ndarray) -> str:
    rows = []
    for row in values:
        flat = row.reshape(-1)
        chunks = [", ".join(str(int(v)) for v in flat[i : i + 24]) for i in range(0, flat.size, 24)]
        rows.append("{\n        " + ",\n        ".join(chunks) + "}")
    return ",\n    ".join(rows)


def _test_data_files(inputs: np.ndarray, expected: np.ndarray) -> tuple[str, str]:
    ctype = "ModelIo"  # model_settings.h: int8_t or int16_t, the model's input/output type
    header = (
        "// Generated by edgeghost: test inputs and the TFLite-Micro Python interpreter's outputs for them.\n"
        "#ifndef EDGEGHOST_TEST_DATA_H_\n#define EDGEGHOST_TEST_DATA_H_\n\n"
        "#include <cstdint>\n\n#include \"model_settings.h\"\n\n"
        f"constexpr int kNumTestInputs = {len(inputs)};\n"
        f"extern const {ctype} kTestInputs[kNumTestInputs][kInputSize];\n"
        f"extern const {ctype} kTestExpected[kNumTestInputs][kNumClasses];\n\n"
        "#endif  // EDGEGHOST_TEST_DATA_H_\n"
    )
    source = (
        "// Generated by edgeghost: raw model inputs (int8: pixel - 128 for edgeghost models) and the reference\n"
        "// outputs of the TFLite-Micro Python interpreter; the firmware must reproduce them exactly.\n"
        '#include "test_data.h"\n\n'
        f"const {ctype} kTestInputs[kNumTestInputs][kInputSize] = {{\n    {_c_array_rows(inputs)}}};\n\n"
        f"const {ctype} kTestExpected[kNumTestInputs][kNumClasses] = {{\n    {_c_array_rows(expected)}}};\n"
    )
    return header, source


def io_dtype(info: dict[str, Any]) -> np.dtype:
    """The model's raw input/output element type (``tflm.json``'s ``dtype``; int8 for older exports)."""
    return np.dtype(info.get("dtype", "int8"))


def to_model_inputs(images: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """uint8 NHWC images -> raw model inputs (int8 or int16) with the model's own input quantization."""
    images = np.asarray(images)
    shape = tuple(info["input"]["shape"][1:])
    if images.dtype != np.uint8 or images.shape[1:] != shape:
        raise EdgeGhostError(f"test images must be uint8 N×{'×'.join(map(str, shape))}, got {images.dtype} {images.shape}")
    from ..runtime import quantize  # the one affine quantization (runtime core)

    return quantize(images, info["input"]["scale"], info["input"]["zero_point"], io_dtype(info))


APPS = ("classifier", "mlperf-tiny")


def generate_firmware(
    model: ModelSource,
    out_dir: str | Path,
    *,
    target: str,
    kernels: str = "reference",
    test_images: np.ndarray | None = None,
    app: str = "classifier",
) -> Path:
    """Write a ready firmware project for ``target`` into ``out_dir`` (replaced atomically); returns it.

    ``test_images`` (uint8 N×H×W×C): for the self-checking targets (Cortex-M, boards) they are embedded with the
    TFLite-Micro Python interpreter's outputs, so the firmware itself reports whether it matches.
    ``app``: ``classifier`` (the self-checking test program) or ``mlperf-tiny`` (the MLPerf Tiny / EEMBC runner
    harness, on the host — target ``mlperf-tiny`` — or over the UART of an STM32 target).
    """
    spec = get_target(target)
    if spec.runner != "board" and kernels not in spec.kernels:
        raise EdgeGhostError(f"target {target} builds with {' or '.join(spec.kernels)} kernels, not {kernels}")
    if app not in APPS:
        raise EdgeGhostError(f"unknown app {app!r}; choose one of {', '.join(APPS)}")
    if spec.name == "mlperf-tiny":
        app = "mlperf-tiny"
    if app == "mlperf-tiny" and io_dtype(model.info) != np.int8:
        raise EdgeGhostError("the MLPerf Tiny harness runs int8 models (it feeds q = pixel - 128); this model's "
                             f"input is {io_dtype(model.info)}")
    if app == "mlperf-tiny" and spec.name != "mlperf-tiny" and not (spec.bare_metal and spec.serial_console):
        raise EdgeGhostError("the MLPerf Tiny harness runs on the host (--target mlperf-tiny) or over the UART of "
                             f"an STM32 target ({', '.join(t for t in TARGETS if TARGETS[t].serial_console)})")
    from .tflm import replace_dir

    out_dir = Path(out_dir)
    replace_dir(out_dir, lambda tmp: _write_project(spec, model, tmp, kernels=kernels, test_images=test_images,
                                                    app=app))
    return out_dir


_MODEL_FILES = ("model_data.cc", "model_data.h", "model_settings.h")  # model_ops.h is written per project
EXPECTED_OUTPUTS = "expected_outputs.npy"  # int8 N×classes of the TFLite-Micro Python interpreter, per project


def _stack_heap_bytes() -> int:
    """The linker script's stack and heap reservations (``STACK_SIZE``/``HEAP_SIZE`` in sections.ld): RAM the
    arena cannot have."""
    text = (EXAMPLES_DIR / "cortex-m/sections.ld").read_text()
    return sum(int(v, 0) for v in re.findall(r"^(?:STACK|HEAP)_SIZE\s*=\s*(\w+);", text, re.M))


def _check_fits(spec: Target, info: dict[str, Any]) -> None:
    """One clear line when the model cannot fit the chip, before anything is written or compiled."""
    reserved = _stack_heap_bytes()
    if spec.ram_bytes and info["arena_bytes"] + reserved > spec.ram_bytes:
        raise EdgeGhostError(
            f"{spec.name} has {spec.ram_bytes // 1024} KiB SRAM: the model's {info['arena_bytes'] / 1024:.1f} KiB "
            f"TFLM arena plus {reserved // 1024} KiB stack and heap does not fit; pick a smaller model "
            f"or a board with more RAM (nucleo-l4r5zi: 640 KiB)")
    model_bytes = info.get("model_bytes") or 0
    if spec.flash_bytes and model_bytes > spec.flash_bytes:
        raise EdgeGhostError(f"{spec.name} has {spec.flash_bytes // 1024} KiB flash: the model alone is "
                             f"{model_bytes / 1024:.0f} KiB")


def _example_files(spec: Target, app: str) -> list[tuple[Path, Path]]:
    """(file, path in the project) of the example sources: the target's example and, for the MLPerf Tiny app
    on a board, the harness in place of the board's test program. One board layer and one harness I/O file."""
    folders = [EXAMPLES_DIR / spec.example]
    if app == "mlperf-tiny" and spec.example != "mlperf_tiny":
        folders.append(EXAMPLES_DIR / "mlperf_tiny")
    io_file = "io_board.cc" if spec.bare_metal else "io_host.cc"
    files = []
    for folder in folders:
        if not folder.is_dir():
            raise EdgeGhostError(f"firmware examples not found at {EXAMPLES_DIR} (broken install?)")
        for f in sorted(folder.rglob("*")):
            rel = f.relative_to(folder)
            if not f.is_file() or rel.name == "Makefile":
                continue  # the Makefile is chosen per runner
            if rel.name.startswith("board_") and rel.name != f"board_{spec.board}.cc":
                continue  # the Makefile compiles every source in src/
            if rel.name.startswith("io_") and rel.name != io_file:
                continue
            if len(folders) > 1 and folder == folders[0] and rel.name in ("main.cc", "README.md"):
                continue  # the harness brings its own main() and README
            files.append((f, rel))
    return files


def _write_project(
    spec: Target, model: ModelSource, out: Path, *, kernels: str, test_images: np.ndarray | None, app: str
) -> None:
    info = model.info
    src = out / spec.sources
    if spec.bare_metal:
        _check_fits(spec, info)
    for f, rel in _example_files(spec, app):
        # Board projects keep their own layout; the make-based ones get sources under src/.
        _copy(f, out / rel if spec.runner == "board" or rel.name == "README.md" else src / rel)
    shared = EXAMPLES_DIR / "common"
    for name in ("classifier.h", "classifier.cc"):
        _copy(shared / name, src / name)
    for name in _MODEL_FILES:
        _copy(model.tflm_dir / name, src / name)
    # The op resolver is derived from the op list alone: written fresh, so an export made by an older edgeghost
    # still gets today's registrations (int8-only kernels).
    from .tflm import model_ops_header

    (src / "model_ops.h").write_text(model_ops_header(model.info["ops"], model.info.get("source", model.tflite.name),
                                                      io_dtype(info).name))
    if spec.runner != "board":
        _copy(shared / "tflm.mk", out / "tflm.mk")
        _copy(_makefile(spec), out / "Makefile")

    if test_images is not None and spec.runner != "host" and app == "classifier":
        inputs = to_model_inputs(test_images, info)
        from ..runtime.tflm import tflm_invoke

        expected = np.asarray(tflm_invoke(model.tflite, inputs, arena_size=info["arena_bytes"])).astype(io_dtype(info))
        expected = expected.reshape(len(inputs), -1)
        h, cc = _test_data_files(inputs, expected)
        (src / "test_data.h").write_text(h)
        (src / "test_data.cc").write_text(cc)
        # The same reference outputs for the host side of a board run (`edgeghost flash` checks them itself).
        np.save(out / EXPECTED_OUTPUTS, expected)
    elif spec.runner in ("qemu", "flash", "board") and app == "classifier":
        raise EdgeGhostError(f"target {spec.name} embeds test images: pass test images (--num-images ≥ 1)")

    if spec.name == "arduino":  # the Arduino builder compiles .cpp, not .cc
        for f in src.glob("*.cc"):
            f.rename(f.with_suffix(".cpp"))
    if spec.bare_metal:
        (out / "board.mk").write_text(
            f"# Generated by edgeghost: the core and board this project is built for ({spec.name}).\n"
            f"CPU_FLAGS := {spec.cpu_flags}\nLINKER_SCRIPT := src/{spec.linker_script}\n"
            f"APP_DEFINES := {spec.board_defines}\n"
            f"QEMU_MACHINE := {spec.qemu_machine}\nQEMU_SERIAL := {'stdio' if spec.serial_console else 'none'}\n"
        )
    facts = {
        "target": spec.name,
        "app": app,
        "kernels": kernels if spec.runner != "board" else spec.kernels[0],
        "model": model.tflite.name,
        "ops": info["ops"],
        "dtype": io_dtype(info).name,
        "arena_bytes": info["arena_bytes"],
        "num_test_inputs": 0 if test_images is None else int(len(test_images)),
        "tflm_commit": TFLM_COMMIT,
    }
    (out / "edgeghost_firmware.json").write_text(json.dumps(facts, indent=2) + "\n")


# --- build ----------------------------------------------------------------------------------------------------


def _makefile(spec: Target) -> Path:
    # Every Linux program (host firmware, MLPerf harness) builds with the host Makefile.
    return EXAMPLES_DIR / ("host" if spec.runner == "host" else spec.example) / "Makefile"


def check_toolchain(target: str) -> None:
    """One clear error naming the Debian package when the target's compiler (or QEMU) is missing."""
    spec = get_target(target)
    if spec.runner == "board":
        raise EdgeGhostError(
            f"target {target} is built with its own tools (see its README.md); edgeghost does not build it"
        )
    if shutil.which(spec.cc) is None:
        raise EdgeGhostError(f"{spec.cc} not found: install it with `sudo apt-get install {spec.package}`")
    if shutil.which("make") is None:
        raise EdgeGhostError("make not found: install it with `sudo apt-get install make`")


def _compiler_id(cc: str) -> str:
    out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else cc


# The lines of a target Makefile that change how TFLM objects compile (the rest: link, run, clean).
_FLAG_LINE = re.compile(r"^\s*(CC|CXX|ARCH_FLAGS|OPT_FLAGS|CFLAGS|CXXFLAGS|DEFINES|INCLUDES)\s*[:+?]?=")


def build_firmware(
    project: str | Path,
    *,
    tflm_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    jobs: int | None = None,
) -> Path:
    """Compile a generated project; returns the binary (host program or ELF).

    Only the TFLM sources the model needs are compiled. With ``cache_dir``, TFLM object files are kept there
    per (tree, compiler, flags), so later projects for the same target reuse them.
    """
    project = Path(project)
    facts = json.loads((project / "edgeghost_firmware.json").read_text())
    spec = get_target(facts["target"])
    check_toolchain(spec.name)
    tree = resolve_tflm_dir(tflm_dir, kernels=facts["kernels"])
    sources = tflm_sources(tree, facts["ops"], own_platform=spec.bare_metal)
    (project / "tflm_sources.mk").write_text(
        f"# Generated by edgeghost: the TFLite-Micro sources for ops {', '.join(facts['ops'])}.\n"
        f"TFLM_INCLUDES := {' '.join(_tflm_includes(tree))}\n"
        + ("DEFINES += -DCMSIS_NN\n" if facts["kernels"] == "cmsis-nn" else "")
        + "TFLM_SRCS := \\\n"
        + " \\\n".join(f"  {s}" for s in sources)
        + "\n"
    )
    args = ["make", "-C", str(project), f"-j{jobs or os.cpu_count() or 1}", f"TFLM_DIR={tree}"]
    if cache_dir is not None:
        # Objects depend on tree, compiler, kernels and the flags in the make files (comments aside), not on the
        # target's name: the host program and the MLPerf harness share one cache.
        flags = [line for line in (EXAMPLES_DIR / "common/tflm.mk").read_text().splitlines()
                 if not line.lstrip().startswith("#")]
        flags += [line for line in _makefile(spec).read_text().splitlines() if _FLAG_LINE.match(line)]
        key = hashlib.sha256("\n".join([str(tree), spec.cpu_flags, facts["kernels"], _compiler_id(spec.cc), *flags])
                             .encode()).hexdigest()[:16]
        cpu = re.search(r"-mcpu=(\S+)", spec.cpu_flags)
        obj_dir = Path(cache_dir).resolve() / f"{cpu.group(1) if cpu else 'host'}-{facts['kernels']}-{key}"
        args.append(f"TFLM_OBJ_DIR={obj_dir}")
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise EdgeGhostError(f"firmware build failed in {project}:\n{tail}")
    binary = project / "build" / ("edgeghost_fw.elf" if spec.bare_metal else "edgeghost_fw")
    if not binary.is_file():
        raise EdgeGhostError(f"build finished but {binary} is missing")
    return binary


# --- run ------------------------------------------------------------------------------------------------------

_RESULT = re.compile(r"^result (\d+) class=(\d+) .*?q=(-?\d+(?:,-?\d+)*)", re.M)
_TICKS = re.compile(r"^result (\d+) .*? ticks=(\d+) cycles=(\d+)", re.M)
_CALIBRATION = re.compile(r"^calibration instructions=(\d+) ticks=(\d+)", re.M)
_PROFILE = re.compile(r"^profile input=(\d+) ticks=(\d+)", re.M)
_OP = re.compile(r"^op (\S+) count=(\d+) ticks=(\d+)", re.M)
# Emulated instructions per tick may differ from 1e9 / clock_hz by the calibration's own resolution (one tick in
# ~5,000); more than this means the clock assumption is wrong and no count is reported.
CALIBRATION_TOLERANCE = 0.005


@dataclass(frozen=True)
class FirmwareRun:
    """What a firmware run printed: raw outputs per input, its own verdict (self-checking targets) and,
    for the Cortex-M targets, SysTick ticks per input, the calibration loop and the per-op profile."""

    outputs: np.ndarray  # raw N×classes scores (int32 holding int8 or int16 values)
    passed: bool | None  # Cortex-M self-check (exit code 0); None for the host program
    log: str
    ticks: tuple[int, ...] = ()  # per input, Cortex-M only
    cycles: tuple[int, ...] = ()  # DWT cycle counter per input (0 under QEMU, which has none)
    calibration: tuple[int, int] | None = None  # (instructions, ticks) of the calibration loop
    profile_ticks: int | None = None  # whole profiled inference
    ops: tuple[tuple[str, int, int], ...] = ()  # (op, count, ticks) per op type, first-seen order


def parse_results(log: str) -> np.ndarray:
    """The raw integer scores of every ``result`` line, in input order (int32: int8 or int16 values)."""
    log = log.replace("\r", "")  # a UART console ends lines with CR LF
    rows = sorted((int(m.group(1)), [int(v) for v in m.group(3).split(",")]) for m in _RESULT.finditer(log))
    if not rows:
        raise EdgeGhostError("firmware printed no result lines:\n" + "\n".join(log.splitlines()[-10:]))
    return np.array([r for _, r in rows], dtype=np.int32)


def parse_costs(log: str) -> dict[str, Any]:
    log = log.replace("\r", "")
    timed = sorted((int(m.group(1)), int(m.group(2)), int(m.group(3))) for m in _TICKS.finditer(log))
    cal = _CALIBRATION.search(log)
    prof = _PROFILE.search(log)
    return {
        "ticks": tuple(t for _, t, _ in timed),
        "cycles": tuple(c for _, _, c in timed),
        "calibration": (int(cal.group(1)), int(cal.group(2))) if cal else None,
        "profile_ticks": int(prof.group(2)) if prof else None,
        "ops": tuple((m.group(1), int(m.group(2)), int(m.group(3))) for m in _OP.finditer(log)),
    }


def qemu_command(target: str, elf: str | Path, *, icount: bool = True) -> list[str]:
    """The QEMU command line that runs a Cortex-M ELF: semihosting for the exit code (and the MPS boards' output),
    the first USART on stdin/stdout for the STM32 boards, and ``-icount shift=0`` so virtual time advances exactly
    1 ns per guest instruction (the timer then counts instructions, deterministically).

    ``icount=False`` for programs that read the console (the MLPerf Tiny harness): under ``-icount`` QEMU 7.2
    delivers no input to the emulated USART while the guest polls it, so those runs use QEMU's real-time clock.
    """
    spec = get_target(target)
    serial = "stdio" if spec.serial_console else "none"
    timing = ["-icount", "shift=0"] if icount else []
    return ["qemu-system-arm", "-M", spec.qemu_machine, "-nographic", "-monitor", "none", "-serial", serial,
            *timing, "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]


def run_firmware(
    project: str | Path, *, inputs: np.ndarray | None = None, timeout: float = 300.0
) -> FirmwareRun:
    """Run a built project: the host program on raw int8 ``inputs`` (N×H×W×C), or the Cortex-M ELF in QEMU on
    its embedded test inputs. Returns the outputs (and, on Cortex-M, the costs) the firmware printed."""
    project = Path(project)
    facts = json.loads((project / "edgeghost_firmware.json").read_text())
    spec = get_target(facts["target"])
    if facts.get("app") == "mlperf-tiny":
        raise EdgeGhostError("the MLPerf Tiny harness is driven by the EEMBC runner (or piped commands, see its "
                             "README), not by --run")
    if spec.runner == "host":
        if inputs is None:
            raise EdgeGhostError("the host firmware needs inputs to run on")
        images = project / "build" / "inputs.bin"
        np.ascontiguousarray(inputs, dtype=facts.get("dtype", "int8")).tofile(images)
        cmd = [str(project / "build/edgeghost_fw"), str(images)]
    elif spec.runner == "qemu":
        if shutil.which("qemu-system-arm") is None:
            raise EdgeGhostError(f"qemu-system-arm not found: install it with `sudo apt-get install {_QEMU_PACKAGE}`")
        cmd = qemu_command(spec.name, project / "build/edgeghost_fw.elf")
    elif spec.runner == "flash":
        raise EdgeGhostError(f"target {spec.name} runs on its board: edgeghost flash --project {project}")
    else:
        raise EdgeGhostError(f"target {spec.name} runs on its board, not here")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise EdgeGhostError(f"firmware run timed out after {timeout:.0f} s: {' '.join(cmd)}") from err
    log = proc.stdout + proc.stderr
    if spec.runner == "host" and proc.returncode != 0:
        raise EdgeGhostError(f"host firmware exited with {proc.returncode}:\n{log[-2000:]}")
    if spec.runner == "qemu" and proc.returncode not in (0, 1):
        raise EdgeGhostError(f"firmware in QEMU exited with {proc.returncode}:\n{log[-2000:]}")
    costs = parse_costs(log) if spec.runner == "qemu" else {}
    return FirmwareRun(parse_results(log), None if spec.runner == "host" else proc.returncode == 0, log, **costs)


def instruction_counts(target: str, run: FirmwareRun) -> dict[str, Any]:
    """Emulated instructions from a Cortex-M run's SysTick ticks: per input, their spread, the calibration and
    the per-op table (op, count, instructions, share of the profiled inference).

    Ticks are converted with the board's nominal 1e9 / clock_hz after checking it against the calibration loop
    (2 × N instructions of subs/bne timed by the same timer); a disagreement beyond
    :data:`CALIBRATION_TOLERANCE` is an error, never a silently wrong number.
    """
    spec = get_target(target)
    if spec.runner != "qemu" or not run.ticks or run.calibration is None:
        raise EdgeGhostError(f"no instruction counts in this {target} run (needs the Cortex-M firmware in QEMU)")
    per_tick = 1e9 / spec.clock_hz
    cal_instr, cal_ticks = run.calibration
    measured = cal_instr / cal_ticks if cal_ticks else float("inf")
    if abs(measured / per_tick - 1) > CALIBRATION_TOLERANCE:
        raise EdgeGhostError(
            f"{target}: the calibration loop ran {cal_instr} instructions in {cal_ticks} ticks ({measured:.3f} per "
            f"tick), not the {per_tick:g} that a {spec.clock_hz / 1e6:g} MHz clock under -icount shift=0 gives"
        )
    per_image = [round(t * per_tick) for t in run.ticks]
    profiled = round(run.profile_ticks * per_tick) if run.profile_ticks else None
    ops = [
        {"op": op, "count": count, "instructions": round(ticks * per_tick),
         "share": ticks / run.profile_ticks if run.profile_ticks else None}
        for op, count, ticks in run.ops
    ]
    ops.sort(key=lambda r: -r["instructions"])
    op_total = sum(r["instructions"] for r in ops)
    return {
        "unit": "emulated instructions (QEMU -icount shift=0), not cycles",
        "timer": f"SysTick, processor clock {spec.clock_hz / 1e6:g} MHz on QEMU {spec.qemu_machine}",
        "instructions_per_tick": per_tick,
        "resolution_instructions": per_tick,
        "calibration": {"loop_instructions": cal_instr, "ticks": cal_ticks, "instructions_per_tick": measured,
                        "nominal_instructions_per_tick": per_tick},
        "per_image": per_image,
        "mean": float(np.mean(per_image)),
        "min": int(min(per_image)),
        "max": int(max(per_image)),
        "spread": (max(per_image) - min(per_image)) / float(np.mean(per_image)),
        "profiled_inference": profiled,
        "ops": ops,
        "ops_total": op_total,
        # What the per-op sum leaves out: the interpreter's loop between ops and the profiler hooks themselves.
        "ops_total_vs_profiled": (op_total / profiled) if profiled else None,
    }


# --- size -----------------------------------------------------------------------------------------------------


def firmware_size(binary: str | Path, *, arena_bytes: int) -> dict[str, int]:
    """Flash and RAM of a built binary from its sections: flash = text + rodata + data (initial values),
    RAM = data + bss (bss holds the tensor arena); stack and heap reservations are listed apart."""
    binary = Path(binary)
    size_tool = "arm-none-eabi-size" if binary.suffix == ".elf" else "size"
    out = subprocess.run([size_tool, "-A", str(binary)], capture_output=True, text=True, check=True).stdout
    sections = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    text = sum(v for k, v in sections.items() if k in (".vectors", ".text", ".ARM.exidx", ".rodata", ".init",
                                                      ".fini", ".plt", ".eh_frame", ".eh_frame_hdr",
                                                      ".gcc_except_table", ".init_array", ".fini_array"))
    data = sections.get(".data", 0)
    bss = sections.get(".bss", 0)
    return {
        "text": text,
        "data": data,
        "bss": bss,
        "arena": arena_bytes,
        "flash": text + data,
        "ram": data + bss,
        "stack_reserved": sections.get(".stack", 0),
        "heap_reserved": sections.get(".heap", 0),
    }


# --- check ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirmwareCheck:
    """Firmware outputs next to the TFLite-Micro Python interpreter's on the same inputs."""

    outputs: np.ndarray  # raw N×classes scores printed by the firmware (int8 or int16 values)
    expected: np.ndarray  # the same from edgeghost.runtime.tflm.tflm_invoke
    identical: bool
    run: FirmwareRun


def check_firmware(project: str | Path, model: ModelSource, images: np.ndarray, *, timeout: float = 300.0) -> FirmwareCheck:
    """Run a built project on ``images`` (uint8 N×H×W×C; Cortex-M projects use the ones embedded at generation,
    which must be the same) and compare every raw output with the TFLite-Micro Python interpreter's."""
    from ..runtime.tflm import tflm_invoke

    inputs = to_model_inputs(images, model.info)
    run = run_firmware(project, inputs=inputs, timeout=timeout)
    expected = np.asarray(tflm_invoke(model.tflite, inputs, arena_size=model.info["arena_bytes"]))
    expected = expected.astype(io_dtype(model.info)).reshape(len(inputs), -1)
    identical = run.outputs.shape == expected.shape and bool(np.array_equal(run.outputs, expected))
    return FirmwareCheck(run.outputs, expected, identical, run)


def sample_test_set(model: ModelSource, *, num: int, dataset: str | None = None,
                    data_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``num`` test images for the firmware and their labels: the first test images of ``dataset`` (default: the
    export's, preprocessed as the export records), or, for a model without a dataset, seeded random pixels
    (labels ``None``). Returns images, labels and where they came from."""
    shape = tuple(model.info["input"]["shape"][1:])
    name = dataset or model.dataset
    if name:
        from ..data import split_for_export

        split = split_for_export(name, model.preprocess if name == model.dataset else None, "test", data_dir)
        if tuple(split.images.shape[1:]) != shape:
            raise EdgeGhostError(f"{name} images are {split.images.shape[1:]}, the model takes {shape}")
        return (np.ascontiguousarray(split.images[:num]), np.asarray(split.labels[:num]),
                f"first {min(num, len(split))} {name} test images")
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (num, *shape), dtype=np.uint8), None,
            f"{num} random images (seed 0; no dataset given)")


def sample_images(model: ModelSource, *, num: int, dataset: str | None = None,
                  data_dir: str | Path | None = None) -> tuple[np.ndarray, str]:
    """:func:`sample_test_set` without the labels: images and where they came from."""
    images, _, origin = sample_test_set(model, num=num, dataset=dataset, data_dir=data_dir)
    return images, origin


# --- one call: generate → build → size → check → count ---------------------------------------------------------


@dataclass(frozen=True)
class FirmwareResult:
    """Everything one ``edgeghost firmware`` invocation produced (what the CLI prints)."""

    project: Path
    target: str
    kernels: str
    model: ModelSource
    images_origin: str
    binary: Path | None = None
    size: dict[str, int] | None = None
    check: FirmwareCheck | None = None
    instructions: dict[str, Any] | None = None  # Cortex-M runs: see instruction_counts
    report: Path | None = None  # instructions.json in the project (Cortex-M runs)
    labels: np.ndarray | None = None  # true classes of the test images (None: random or given images)

    @property
    def top1(self) -> float | None:
        """Top-1 (%) of the firmware's own int8 answers on its test images, when their labels are known."""
        if self.check is None or self.labels is None or len(self.labels) != len(self.check.outputs):
            return None
        return 100.0 * float((self.check.outputs.argmax(1) == self.labels).mean())


def _model_source(model_or_export: ModelSource | str | Path, work_dir: Path,
                  labels: Sequence[str] | None = None, precision: str = "int8") -> ModelSource:
    if isinstance(model_or_export, ModelSource):
        return model_or_export
    path = Path(model_or_export)
    if path.is_dir():
        return model_from_export(path, precision=precision)
    if path.suffix == ".tflite" and path.is_file():
        return model_from_tflite(path, work_dir / "tflm", labels=labels)
    raise EdgeGhostError(f"{path} is neither an export folder nor a .tflite file")


def make_firmware(
    model_or_export: ModelSource | str | Path,
    out_dir: str | Path,
    *,
    target: str,
    kernels: str = "reference",
    num_images: int = 4,
    images: np.ndarray | None = None,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    labels: Sequence[str] | None = None,
    build: bool = False,
    run: bool = False,
    tflm_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    jobs: int | None = None,
    timeout: float = 600.0,
    app: str = "classifier",
    precision: str = "int8",
) -> FirmwareResult:
    """Generate a project for ``target`` and, with ``build``/``run``, compile it, read its size, run it (host
    program or QEMU), compare every int8 output with the TFLite-Micro Python interpreter's and, on Cortex-M,
    count emulated instructions per input and per op (written to ``instructions.json`` in the project).

    ``images`` (uint8 N×H×W×C) overrides the ``num_images`` test images taken from ``dataset`` (default: the
    export's; seeded random pixels for a model without one). ``precision``: which model of an export folder,
    ``int8`` (``tflm/``) or ``int16x8`` (``tflm_int16x8/``, made by ``edgeghost export --int16x8``).
    """
    import tempfile

    if num_images < 1 and images is None:
        raise EdgeGhostError("num_images must be >= 1")
    spec = get_target(target)
    check_writable(out_dir)  # an unwritable --out fails now, in one line, before any generation
    build = build or run
    if build:
        check_toolchain(target)  # fail before the (slow) generation; board targets raise here (own tools)
        resolve_tflm_dir(tflm_dir, kernels=kernels)
    if run and spec.runner == "flash":
        raise EdgeGhostError(f"{spec.name} runs on the board: build here (--build), then "
                             f"`edgeghost flash --project {out_dir}` flashes it and checks its outputs")
    if run and (spec.name == "mlperf-tiny" or app == "mlperf-tiny"):
        raise EdgeGhostError("run the MLPerf Tiny harness with the EEMBC runner or by piping commands "
                             "(see its README); --run checks the classifier app")
    with tempfile.TemporaryDirectory() as work:
        model = _model_source(model_or_export, Path(work), labels, precision)
        labels_ = None
        if images is None:
            images, labels_, origin = sample_test_set(model, num=num_images, dataset=dataset, data_dir=data_dir)
        else:
            origin = f"{len(images)} given images"
        project = generate_firmware(model, out_dir, target=target, kernels=kernels, test_images=images, app=app)
        result = FirmwareResult(project, spec.name, kernels, model, origin)
        if not build:
            return result
        binary = build_firmware(project, tflm_dir=tflm_dir, cache_dir=cache_dir, jobs=jobs)
        size = firmware_size(binary, arena_bytes=model.info["arena_bytes"])
        if not run:
            return FirmwareResult(project, spec.name, kernels, model, origin, binary, size)
        check = check_firmware(project, model, images, timeout=timeout)
    counts = report = None
    if spec.runner == "qemu":
        from ..fileio import atomic_write_json

        counts = instruction_counts(spec.name, check.run)
        report = atomic_write_json(project / "instructions.json", {
            "target": spec.name, "kernels": kernels, "model": model.tflite.name, "images": origin,
            "identical_to_tflm_python": check.identical, "size": size, **counts})
    return FirmwareResult(project, spec.name, kernels, model, origin, binary, size, check, counts, report, labels_)


def measure_cortex_m(
    model_or_export: ModelSource | str | Path,
    *,
    target: str,
    kernels: str = "cmsis-nn",
    images: np.ndarray | int = 4,
    tflm_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    work_dir: str | Path | None = None,
    timeout: float = 900.0,
) -> dict[str, Any]:
    """Cost of one full-integer model (int8, or int16x8 given as a :class:`ModelSource` or ``.tflite``) on an
    emulated Cortex-M core: the library entry point for bench and model cards.

    Signature::

        measure_cortex_m(model_or_export, *, target, kernels="cmsis-nn", images=4, tflm_dir=None,
                         cache_dir=None, work_dir=None, timeout=900.0) -> dict

    ``model_or_export``: a :class:`ModelSource`, an export folder (``edgeghost export --int8``) or any int8
    ``.tflite``. ``target``: one of :data:`CORTEX_M_TARGETS` (``cortex-m4``, ``cortex-m7``, ``cortex-m33``,
    ``cortex-m55``). ``kernels``: ``"reference"`` or ``"cmsis-nn"`` (Helium/MVE code paths on ``cortex-m55``).
    ``images``: uint8 N×H×W×C test images, or how many to take (the export's dataset, else seeded noise).
    ``tflm_dir``: see :func:`resolve_tflm_dir`. ``cache_dir``: shared TFLM object files (default
    ``~/.cache/edgeghost/tflm-obj``). ``work_dir``: keep the generated project there (default: a temp folder).

    Builds the bare-metal firmware, runs it under ``qemu-system-arm -icount shift=0`` and returns::

        {"target", "kernels", "qemu_machine", "cpu_flags", "model", "ops", "num_images",
         "identical_to_tflm_python": bool,           # every int8 output equal to the TFLM Python interpreter's
         "instructions": {"per_image": [...], "mean", "min", "max", "spread", "unit",
                          "calibration": {...}, "ops": [{"op", "count", "instructions", "share"}, ...],
                          "ops_total", "profiled_inference", "ops_total_vs_profiled", ...},
         "flash_bytes", "ram_bytes", "arena_bytes", "arena_used_bytes", "size": {...},
         "toolchain", "qemu", "tflm_commit"}

    Instructions are emulated instructions, not cycles: a real core spends more cycles than instructions on
    multi-cycle loads, multiplies and taken branches, and on flash wait states. MACs are the caller's to add
    (instructions per MAC = mean / MACs). A mismatch with the Python interpreter is an error.
    """
    import tempfile

    if target not in CORTEX_M_TARGETS:
        raise EdgeGhostError(f"measure_cortex_m takes one of {', '.join(CORTEX_M_TARGETS)}, not {target!r}")
    arr = None if isinstance(images, int) else np.asarray(images)
    num = images if isinstance(images, int) else len(arr)
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(work_dir) if work_dir is not None else Path(tmp) / "project"
        res = make_firmware(model_or_export, out, target=target, kernels=kernels, num_images=num, images=arr,
                            run=True, tflm_dir=tflm_dir, cache_dir=cache, timeout=timeout)
        arena_used = re.search(r"arena used (\d+) of", res.check.run.log)
    if not res.check.identical or res.check.run.passed is False:
        raise EdgeGhostError(f"{target} ({kernels}) firmware outputs differ from the TFLite-Micro Python interpreter")
    spec = get_target(target)
    return {
        "target": target,
        "kernels": kernels,
        "qemu_machine": spec.qemu_machine,
        "cpu_flags": spec.cpu_flags,
        "model": str(res.model.tflite),
        "ops": res.model.info["ops"],
        "num_images": len(res.check.outputs),
        "images": res.images_origin,
        "identical_to_tflm_python": res.check.identical,
        "instructions": res.instructions,
        "flash_bytes": res.size["flash"],
        "ram_bytes": res.size["ram"],
        "arena_bytes": res.model.info["arena_bytes"],
        "arena_used_bytes": int(arena_used.group(1)) if arena_used else None,
        "size": res.size,
        "toolchain": _compiler_id(spec.cc),
        "qemu": _compiler_id("qemu-system-arm"),
        "tflm_commit": TFLM_COMMIT,
    }


def default_cache_dir() -> Path:
    """Where TFLM object files are shared between builds: ``$EDGEGHOST_TFLM_CACHE`` or
    ``~/.cache/edgeghost/tflm-obj``."""
    env = os.environ.get("EDGEGHOST_TFLM_CACHE")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(env) if env else base / "edgeghost" / "tflm-obj"


def format_instructions(counts: dict[str, Any]) -> str:
    """The console table of :func:`instruction_counts`: per-inference summary, calibration, per-op table."""
    cal = counts["calibration"]
    lines = [
        f"instructions per inference: mean {counts['mean']:,.0f} (min {counts['min']:,}, max {counts['max']:,}, "
        f"spread {counts['spread']:.3%}) — {counts['unit']}",
        f"timer: {counts['timer']}; calibration loop {cal['loop_instructions']:,} instructions = {cal['ticks']:,} "
        f"ticks ({cal['instructions_per_tick']:.3f} per tick, nominal {cal['nominal_instructions_per_tick']:g})",
        f"{'op':<24} {'count':>5} {'instructions':>14} {'share':>7}",
    ]
    for r in counts["ops"]:
        lines.append(f"{r['op']:<24} {r['count']:>5} {r['instructions']:>14,} {r['share']:>7.1%}")
    if counts["profiled_inference"]:
        lines.append(f"{'sum of ops':<24} {'':>5} {counts['ops_total']:>14,} {counts['ops_total_vs_profiled']:>7.1%}"
                     f"  of the profiled inference ({counts['profiled_inference']:,})")
    return "\n".join(lines)


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m edgeghost.export.firmware --tflm-dir [--build]``: print the TFLite-Micro tree folder the
    library would use (the Makefile asks this); ``--build`` makes it in the user cache when none is found."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m edgeghost.export.firmware")
    p.add_argument("--tflm-dir", action="store_true", required=True, help="print the TFLite-Micro trees' folder")
    p.add_argument("--build", action="store_true", help="clone and generate the trees when none is found")
    args = p.parse_args(argv)
    try:
        try:
            root = find_tflm_root(None)
            find_tflm_root(None, kernels="cmsis-nn")
        except EdgeGhostError:
            if not args.build or os.environ.get("TFLM_DIR"):
                raise
            root = build_tflm_trees()
    except EdgeGhostError as err:
        print(f"edgeghost: {err}", file=sys.stderr)
        return 2
    print(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
