"""Firmware projects for an int8 model: generate from ``firmware_examples/``, build, run, check, measure.

``generate_firmware`` writes a ready project for one target (host program, bare-metal Cortex-M4/M55, ESP32-S3,
Arduino, MLPerf Tiny harness): the target's example files, the shared classifier, the generated model files from
:mod:`edgeghost.export.tflm` and, for the self-checking targets, test inputs with the TFLite-Micro Python
interpreter's outputs. ``build_firmware`` compiles it against a TFLite-Micro source tree (``TFLM_DIR``), compiling
only the kernels the model uses and sharing object files between projects; ``run_firmware`` runs the host
binary or QEMU and returns the raw int8 outputs; ``firmware_size`` reads flash/RAM from the ELF.
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

# Shipped next to the package (wheel: edgeghost/firmware_examples) or at the repo root (source checkout); from
# export/firmware.py both are two levels up.
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "firmware_examples"

TFLM_COMMIT = "90b983c2b3f1480642e040bbd2ddb37b998f3424"  # the tree the examples are checked against in CI


@dataclass(frozen=True)
class Target:
    """One firmware target: where its example lives, how it builds and how it runs."""

    name: str
    example: str  # folder in firmware_examples/
    runner: str  # "host" (Linux program), "qemu" (semihosting ELF), "board" (built by the user's tools)
    cc: str = ""  # compiler that --build needs
    package: str = ""  # Debian package(s) providing the toolchain
    cpu_flags: str = ""
    linker_script: str = ""
    qemu_machine: str = ""
    kernels: tuple[str, ...] = ("reference",)  # kernel flavours that build for it
    sources: str = "src"  # project folder for sources and generated files (where the build system looks)


# name | example | runner | toolchain | Debian package | CPU flags | linker script | QEMU machine | kernels
TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("host", "host", "host", "g++", "g++"),
        Target("mlperf-tiny", "mlperf_tiny", "host", "g++", "g++"),
        Target(
            "cortex-m4", "cortex-m", "qemu", "arm-none-eabi-g++",
            "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev",
            "-mcpu=cortex-m4 -mfpu=fpv4-sp-d16", "mps2_an386.ld", "mps2-an386", ("reference", "cmsis-nn"),
        ),
        Target(
            "cortex-m55", "cortex-m", "qemu", "arm-none-eabi-g++",
            "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev",
            "-mcpu=cortex-m55", "mps3_an547.ld", "mps3-an547", ("reference", "cmsis-nn"),
        ),
        Target("esp32s3", "esp32s3", "board", kernels=("esp-nn",), sources="main"),
        Target("arduino", "arduino", "board", kernels=("arduino",), sources="edgeghost_classifier"),
    )
}
KERNELS = ("reference", "cmsis-nn")
_TREE_SUBDIR = {"reference": "reference", "cmsis-nn": "cmsis_nn"}
_QEMU_PACKAGE = "qemu-system-arm"


def get_target(name: str) -> Target:
    """The :class:`Target` called ``name``; an unknown name lists the known ones."""
    if name not in TARGETS:
        raise EdgeGhostError(f"unknown firmware target {name!r}; choose one of {', '.join(TARGETS)}")
    return TARGETS[name]


# --- TFLite-Micro tree -----------------------------------------------------------------------------------------


def resolve_tflm_dir(tflm_dir: str | Path | None, *, kernels: str = "reference") -> Path:
    """The TFLM source tree for ``kernels``: ``tflm_dir`` or ``$TFLM_DIR``, either a tree made by
    ``create_tflm_tree.py`` or a folder holding ``reference/`` and ``cmsis_nn/`` trees."""
    if kernels not in KERNELS:
        raise EdgeGhostError(f"unknown kernels {kernels!r}; choose one of {', '.join(KERNELS)}")
    raw = tflm_dir or os.environ.get("TFLM_DIR")
    if not raw:
        raise EdgeGhostError(
            "no TFLite-Micro tree: pass --tflm-dir or set TFLM_DIR (make one with tflite-micro's "
            f"create_tflm_tree.py at commit {TFLM_COMMIT[:8]}, see firmware_examples/README.md)"
        )
    root = Path(raw).expanduser().resolve()
    for tree in (root, root / _TREE_SUBDIR[kernels]):
        if (tree / "tensorflow/lite/micro/micro_interpreter.h").is_file():
            has_cmsis = (tree / "tensorflow/lite/micro/kernels/cmsis_nn").is_dir()
            if has_cmsis == (kernels == "cmsis-nn"):
                return tree
    raise EdgeGhostError(
        f"{root} holds no TFLite-Micro tree with {kernels} kernels (expected tensorflow/lite/micro/ in it or "
        f"in {root / _TREE_SUBDIR[kernels]})"
    )


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

    tflite: Path
    tflm_dir: Path  # folder with model_data.cc/.h, model_settings.h, model_ops.h, tflm.json
    info: dict[str, Any]  # tflm.json
    dataset: str | None


def model_from_export(export_dir: str | Path) -> ModelSource:
    """An export folder (``edgeghost export``): its int8 model and the ``tflm/`` artefacts made at export."""
    export_dir = Path(export_dir)
    tflite, tflm_dir = export_dir / "model_int8.tflite", export_dir / "tflm"
    if not tflite.is_file() or not (tflm_dir / "tflm.json").is_file():
        raise EdgeGhostError(
            f"{export_dir} is not an int8 export (needs model_int8.tflite and tflm/): run `edgeghost export --int8`"
        )
    manifest_path = export_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    dataset = manifest.get("dataset") if isinstance(manifest.get("dataset"), str) else None
    return ModelSource(tflite, tflm_dir, json.loads((tflm_dir / "tflm.json").read_text()), dataset)


def model_from_tflite(tflite: str | Path, work_dir: str | Path, *, labels: Sequence[str] | None = None) -> ModelSource:
    """Any int8 ``.tflite``: TFLM artefacts are generated (arena measured) into ``work_dir``."""
    from .tflm import read_tflite, write_tflm_artifacts

    tflite = Path(tflite)
    facts = read_tflite(tflite)
    labels = list(labels) if labels else [f"class_{i}" for i in range(facts.output.shape[-1])]
    info = write_tflm_artifacts(tflite, work_dir, labels=labels)
    return ModelSource(tflite, Path(work_dir), info, None)


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
    header = (
        "// Generated by edgeghost: test inputs and the TFLite-Micro Python interpreter's outputs for them.\n"
        "#ifndef EDGEGHOST_TEST_DATA_H_\n#define EDGEGHOST_TEST_DATA_H_\n\n"
        "#include <cstdint>\n\n#include \"model_settings.h\"\n\n"
        f"constexpr int kNumTestInputs = {len(inputs)};\n"
        "extern const int8_t kTestInputs[kNumTestInputs][kInputSize];\n"
        "extern const int8_t kTestExpected[kNumTestInputs][kNumClasses];\n\n"
        "#endif  // EDGEGHOST_TEST_DATA_H_\n"
    )
    source = (
        "// Generated by edgeghost: raw int8 model inputs (pixel - 128 for edgeghost models) and the reference\n"
        "// outputs of the TFLite-Micro Python interpreter; the firmware must reproduce them exactly.\n"
        '#include "test_data.h"\n\n'
        f"const int8_t kTestInputs[kNumTestInputs][kInputSize] = {{\n    {_c_array_rows(inputs)}}};\n\n"
        f"const int8_t kTestExpected[kNumTestInputs][kNumClasses] = {{\n    {_c_array_rows(expected)}}};\n"
    )
    return header, source


def to_model_inputs(images: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """uint8 NHWC images -> raw int8 model inputs with the model's own input quantization."""
    images = np.asarray(images)
    shape = tuple(info["input"]["shape"][1:])
    if images.dtype != np.uint8 or images.shape[1:] != shape:
        raise EdgeGhostError(f"test images must be uint8 N×{'×'.join(map(str, shape))}, got {images.dtype} {images.shape}")
    from ..runtime.remote_runner import quantize  # the one affine quantization of the runtime side

    return quantize(images, info["input"]["scale"], info["input"]["zero_point"], np.int8)


def generate_firmware(
    model: ModelSource,
    out_dir: str | Path,
    *,
    target: str,
    kernels: str = "reference",
    test_images: np.ndarray | None = None,
) -> Path:
    """Write a ready firmware project for ``target`` into ``out_dir`` (replaced atomically); returns it.

    ``test_images`` (uint8 N×H×W×C): for the self-checking targets (Cortex-M, boards) they are embedded with the
    TFLite-Micro Python interpreter's outputs, so the firmware itself reports whether it matches.
    """
    spec = get_target(target)
    if spec.runner != "board" and kernels not in spec.kernels:
        raise EdgeGhostError(f"target {target} builds with {' or '.join(spec.kernels)} kernels, not {kernels}")
    from .tflm import replace_dir

    out_dir = Path(out_dir)
    replace_dir(out_dir, lambda tmp: _write_project(spec, model, tmp, kernels=kernels, test_images=test_images))
    return out_dir


_MODEL_FILES = ("model_data.cc", "model_data.h", "model_settings.h", "model_ops.h")


def _write_project(
    spec: Target, model: ModelSource, out: Path, *, kernels: str, test_images: np.ndarray | None
) -> None:
    example = EXAMPLES_DIR / spec.example
    if not example.is_dir():
        raise EdgeGhostError(f"firmware examples not found at {EXAMPLES_DIR} (broken install?)")
    info = model.info
    src = out / spec.sources
    for f in sorted(example.rglob("*")):
        rel = f.relative_to(example)
        if not f.is_file() or rel.name == "Makefile":
            continue  # the Makefile is chosen per runner below
        # Board projects keep their own layout; the make-based ones get sources under src/.
        _copy(f, out / rel if spec.runner == "board" or rel.name == "README.md" else src / rel)
    shared = EXAMPLES_DIR / "common"
    for name in ("classifier.h", "classifier.cc"):
        _copy(shared / name, src / name)
    for name in _MODEL_FILES:
        _copy(model.tflm_dir / name, src / name)
    if spec.runner != "board":
        _copy(shared / "tflm.mk", out / "tflm.mk")
        _copy(_makefile(spec), out / "Makefile")

    if test_images is not None and spec.runner != "host":
        inputs = to_model_inputs(test_images, info)
        from ..runtime.tflm import tflm_invoke

        expected = np.asarray(tflm_invoke(model.tflite, inputs, arena_size=info["arena_bytes"])).astype(np.int8)
        h, cc = _test_data_files(inputs, expected.reshape(len(inputs), -1))
        (src / "test_data.h").write_text(h)
        (src / "test_data.cc").write_text(cc)
    elif spec.runner in ("qemu", "board"):
        raise EdgeGhostError(f"target {spec.name} embeds test images: pass test images (--num-images ≥ 1)")

    if spec.name == "arduino":  # the Arduino builder compiles .cpp, not .cc
        for f in src.glob("*.cc"):
            f.rename(f.with_suffix(".cpp"))
    if spec.runner == "qemu":
        (out / "board.mk").write_text(
            "# Generated by edgeghost: the core this project is built for.\n"
            f"CPU_FLAGS := {spec.cpu_flags}\nLINKER_SCRIPT := src/{spec.linker_script}\n"
            f"QEMU_MACHINE := {spec.qemu_machine}\n"
        )
    facts = {
        "target": spec.name,
        "kernels": kernels if spec.runner != "board" else spec.kernels[0],
        "model": model.tflite.name,
        "ops": info["ops"],
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
    sources = tflm_sources(tree, facts["ops"], own_platform=spec.runner == "qemu")
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
        flags = [line for mk in (EXAMPLES_DIR / "common/tflm.mk", _makefile(spec))
                 for line in mk.read_text().splitlines() if not line.lstrip().startswith("#")]
        key = hashlib.sha256("\n".join([str(tree), spec.cpu_flags, facts["kernels"], _compiler_id(spec.cc), *flags])
                             .encode()).hexdigest()[:16]
        cpu = re.search(r"-mcpu=(\S+)", spec.cpu_flags)
        obj_dir = Path(cache_dir).resolve() / f"{cpu.group(1) if cpu else 'host'}-{facts['kernels']}-{key}"
        args.append(f"TFLM_OBJ_DIR={obj_dir}")
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise EdgeGhostError(f"firmware build failed in {project}:\n{tail}")
    binary = project / "build" / ("edgeghost_fw.elf" if spec.runner == "qemu" else "edgeghost_fw")
    if not binary.is_file():
        raise EdgeGhostError(f"build finished but {binary} is missing")
    return binary


# --- run ------------------------------------------------------------------------------------------------------

_RESULT = re.compile(r"^result (\d+) class=(\d+) .*?q=(-?\d+(?:,-?\d+)*)", re.M)


@dataclass(frozen=True)
class FirmwareRun:
    """What a firmware run printed: raw int8 outputs per input, its own verdict (self-checking targets)."""

    outputs: np.ndarray  # int8 N×classes
    passed: bool | None  # Cortex-M self-check (exit code 0); None for the host program
    log: str


def parse_results(log: str) -> np.ndarray:
    """The int8 scores of every ``result`` line, in input order."""
    rows = sorted((int(m.group(1)), [int(v) for v in m.group(3).split(",")]) for m in _RESULT.finditer(log))
    if not rows:
        raise EdgeGhostError("firmware printed no result lines:\n" + "\n".join(log.splitlines()[-10:]))
    return np.array([r for _, r in rows], dtype=np.int8)


def run_firmware(
    project: str | Path, *, inputs: np.ndarray | None = None, timeout: float = 300.0
) -> FirmwareRun:
    """Run a built project: the host program on raw int8 ``inputs`` (N×H×W×C), or the Cortex-M ELF in QEMU on
    its embedded test inputs. Returns the outputs the firmware printed."""
    project = Path(project)
    facts = json.loads((project / "edgeghost_firmware.json").read_text())
    spec = get_target(facts["target"])
    if spec.runner == "host":
        if inputs is None:
            raise EdgeGhostError("the host firmware needs inputs to run on")
        images = project / "build" / "inputs.bin"
        np.ascontiguousarray(inputs, dtype=np.int8).tofile(images)
        cmd = [str(project / "build/edgeghost_fw"), str(images)]
    elif spec.runner == "qemu":
        if shutil.which("qemu-system-arm") is None:
            raise EdgeGhostError(f"qemu-system-arm not found: install it with `sudo apt-get install {_QEMU_PACKAGE}`")
        cmd = ["qemu-system-arm", "-M", spec.qemu_machine, "-nographic", "-monitor", "none", "-serial", "none",
               "-semihosting-config", "enable=on,target=native", "-kernel", str(project / "build/edgeghost_fw.elf")]
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
    return FirmwareRun(parse_results(log), None if spec.runner == "host" else proc.returncode == 0, log)


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

    outputs: np.ndarray  # int8 N×classes printed by the firmware
    expected: np.ndarray  # int8 N×classes from edgeghost.runtime.tflm.tflm_invoke
    identical: bool
    run: FirmwareRun


def check_firmware(project: str | Path, model: ModelSource, images: np.ndarray, *, timeout: float = 300.0) -> FirmwareCheck:
    """Run a built project on ``images`` (uint8 N×H×W×C; Cortex-M projects use the ones embedded at generation,
    which must be the same) and compare every int8 output with the TFLite-Micro Python interpreter's."""
    from ..runtime.tflm import tflm_invoke

    inputs = to_model_inputs(images, model.info)
    run = run_firmware(project, inputs=inputs, timeout=timeout)
    expected = np.asarray(tflm_invoke(model.tflite, inputs, arena_size=model.info["arena_bytes"]))
    expected = expected.astype(np.int8).reshape(len(inputs), -1)
    identical = run.outputs.shape == expected.shape and bool(np.array_equal(run.outputs, expected))
    return FirmwareCheck(run.outputs, expected, identical, run)


def sample_images(model: ModelSource, *, num: int, dataset: str | None = None,
                  data_dir: str | Path | None = None) -> tuple[np.ndarray, str]:
    """``num`` test images for the firmware: the first test images of ``dataset`` (default: the export's), or,
    for a model without a dataset, seeded random pixels. Returns the images and where they came from."""
    shape = tuple(model.info["input"]["shape"][1:])
    name = dataset or model.dataset
    if name:
        from ..data import load_split

        split = load_split(name, "test", data_dir)
        if tuple(split.images.shape[1:]) != shape:
            raise EdgeGhostError(f"{name} images are {split.images.shape[1:]}, the model takes {shape}")
        return np.ascontiguousarray(split.images[:num]), f"first {num} {name} test images"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (num, *shape), dtype=np.uint8), f"{num} random images (seed 0; no dataset given)"
