"""Session-wide fixtures shared by several test files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tflm_root() -> Path:
    """The TFLite-Micro trees (reference and CMSIS-NN), found by the library's one rule. Without them the
    firmware tests are skipped with the reason printed, and fail under ``$CI``."""
    from edgeghost.errors import EdgeGhostError
    from edgeghost.export import firmware as fw

    try:
        return fw.find_tflm_root(None, kernels="cmsis-nn")
    except EdgeGhostError as err:
        if os.environ.get("CI"):
            pytest.fail(f"CI has no TFLite-Micro tree: {err}")
        pytest.skip(f"firmware tests skipped: {err}")


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The shared TFLM object cache (``$EDGEGHOST_TFLM_CACHE`` or ``~/.cache/edgeghost/tflm-obj``), as users get
    it: objects are keyed by tree, compiler and flags, so a warm cache is correct and saves most of the build."""
    from edgeghost.export import firmware as fw

    return fw.default_cache_dir()


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic data, an (untrained, epoch 0) GN-S w0.25 checkpoint and its int8 export, made once per
    session: {data, checkpoint, exports_dir, export}. Used by the bench and Raspberry Pi tests."""
    base = tmp_path_factory.getbasetemp() / "edgeghost-bench-shared"
    paths = {"data": base / "data", "checkpoint": base / "ckpt" / "gns.pt", "exports_dir": base / "exports",
             "export": base / "exports" / "ckpt-gns"}
    if (paths["export"] / "manifest.json").is_file():
        return paths
    import torch

    from edgeghost.data import get_spec, load_split
    from edgeghost.data.synthetic import write_synthetic_fashion_mnist
    from edgeghost.export.pipeline import export_model
    from edgeghost.models import create_model, estimate_bn_statistics
    from edgeghost.training.checkpoint import atomic_torch_save, make_checkpoint

    write_synthetic_fashion_mnist(paths["data"], train=64, test=64)
    spec = get_spec("fashion_mnist")
    torch.manual_seed(0)
    model = create_model("ghostnetv3_small", width=0.25, num_classes=10)
    # BatchNorm statistics of real images, as in any trained checkpoint (the init's 0/1 let an untrained net's
    # activations explode, which no export check passes); the export pipeline's own helper does it.
    estimate_bn_statistics(model, load_split("fashion_mnist", "train", paths["data"]).images, mean=spec.mean,
                       std=spec.std)
    ckpt = make_checkpoint(model, model_name="ghostnetv3_small", dataset=spec.name, classes=spec.classes,
                           mean=spec.mean, std=spec.std)
    atomic_torch_save(ckpt, paths["checkpoint"])
    export_model(checkpoint=paths["checkpoint"], out=paths["export"], int8=True, data_dir=paths["data"],
                 calib_samples=32, eval_samples=16, verbose=False)
    return paths


def _tiny_keras(keras):
    shape = (40, 40, 1)
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape, batch_size=1)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(10)(x)), shape


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory):
    """A tiny int8 CNN with a [1, 40, 40, 1] input (conv, depthwise, pointwise, mean, dense): seconds to build
    into any firmware target, and not 32×32×3, so the firmware's shapes must come from the model."""
    import numpy as np

    tf = pytest.importorskip("tensorflow")
    from edgeghost.export import firmware as fw

    model, shape = _tiny_keras(tf.keras)
    rng = np.random.default_rng(0)

    def calibration():
        for _ in range(8):
            yield [rng.uniform(-128, 127, (1, *shape)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = calibration
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    work = tmp_path_factory.mktemp("tiny")
    path = work / "tiny40.tflite"
    path.write_bytes(conv.convert())
    return fw.model_from_tflite(path, work / "tflm")


@pytest.fixture(scope="session")
def tiny_model_int16x8(tmp_path_factory: pytest.TempPathFactory):
    """The same tiny CNN quantized by the export's own converter with 16-bit activations (int16x8); built with
    tf_keras, the Keras the export's converter takes (onnx2tf's)."""
    import numpy as np

    tf_keras = pytest.importorskip("tf_keras")
    from edgeghost.export import firmware as fw
    from edgeghost.export.tflite import convert_quantized

    model, shape = _tiny_keras(tf_keras)
    pixels = np.random.default_rng(0).integers(0, 256, (8, *shape), dtype=np.uint8)
    work = tmp_path_factory.mktemp("tiny16")
    path = convert_quantized(model, work / "tiny40_int16x8.tflite", calib_images=pixels, mode="int16x8")
    return fw.model_from_tflite(path, work / "tflm")


class MLPerfExchange:
    """A scripted EEMBC runner session (performance mode) and the checks on the harness's replies: every
    command answered with m-ready, one load, two timestamps, and scores equal to the TFLite-Micro Python
    interpreter's on the same pixels (dequantized, 3 decimals)."""

    CHUNK = 512  # hex digits per `db` command

    def commands(self, pixels) -> list[str]:
        digits = pixels.tobytes().hex()
        chunks = [digits[i : i + self.CHUNK] for i in range(0, len(digits), self.CHUNK)]
        return ["name", "profile", f"db load {pixels.size}", *(f"db {c}" for c in chunks), "infer 2 1", "results"]

    def script(self, pixels) -> str:
        return "".join(f"{c}%" for c in self.commands(pixels))

    def check(self, out: str, model, pixels) -> list[int]:
        """Asserts the replies; returns the two m-lap-us timestamps."""
        import re

        import numpy as np

        from edgeghost.runtime.tflm import tflm_invoke

        out = out.replace("\r", "")
        assert "m-init-done" in out and out.count("m-ready") == len(self.commands(pixels)) + 1
        assert "m-name-dut-[edgeghost]" in out and "m-model-[ic01]" in out
        assert f"m-[Expecting {pixels.size} bytes]" in out and out.count("m-load-done") == 1
        laps = [int(v) for v in re.findall(r"m-lap-us-(\d+)", out)]
        assert "m-infer-done" in out and len(laps) == 2 and laps[1] >= laps[0]
        results = re.findall(r"m-results-\[([^\]]*)\]", out)
        assert len(results) == 2 and results[0] == results[1]  # infer prints them, `results` repeats them
        got = np.array([float(v) for v in results[0].split(",")])
        # The harness feeds uint8 pixels as int8 = pixel - 128 and prints dequantized scores with 3 decimals.
        shape = tuple(model.info["input"]["shape"])
        raw = tflm_invoke(model.tflite, (pixels.astype(np.int16) - 128).astype(np.int8).reshape(shape))
        out_q = model.info["output"]
        want = out_q["scale"] * (raw.reshape(-1).astype(np.float64) - out_q["zero_point"])
        np.testing.assert_allclose(got, want, atol=0.0006)
        return laps


@pytest.fixture(scope="session")
def mlperf() -> MLPerfExchange:
    return MLPerfExchange()
