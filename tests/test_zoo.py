"""The model zoo: shipped weights are trained (real accuracy on real test images), addressable by name, and the
cards are generated from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeghost.cli import main
from edgeghost.errors import EdgeGhostError
from edgeghost.zoo import ZOO, pretrained_checkpoint, resolve_checkpoint, shipped
from edgeghost.zoo.cards import CARDS_DIR, load_cards

FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_every_shipped_model_is_a_zoo_entry_with_its_command() -> None:
    assert shipped(), "no zoo weights are shipped"
    from edgeghost.training.checkpoint import load_checkpoint

    for name in shipped():
        ckpt = load_checkpoint(pretrained_checkpoint(name))
        entry = ZOO[name]
        assert ckpt["model"] == entry.model and ckpt["width"] == entry.width
        assert ckpt["zoo"]["command"] == entry.command() and "optimizer" not in ckpt
        assert ckpt["epoch"] == entry.epochs and len(ckpt["training_curve"]) == entry.epochs


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_pretrained_weights_are_trained(capsys: pytest.CaptureFixture[str]) -> None:
    from edgeghost.training import evaluate_checkpoint

    for name in shipped():
        report = evaluate_checkpoint(pretrained_checkpoint(name), test_samples=500, progress=False)
        assert report["train_form_acc"] > 80.0, (name, report)  # chance is 10 %


def test_unknown_or_missing_names_are_one_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(EdgeGhostError, match="unknown zoo model"):
        pretrained_checkpoint("nope")
    with pytest.raises(EdgeGhostError, match="not both"):
        resolve_checkpoint("a.pt", shipped()[0])
    assert main(["eval", "--pretrained", "nope"]) == 2
    assert "unknown zoo model" in capsys.readouterr().err


def test_zoo_lists_every_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ZOO)
    assert main(["zoo", "--json"]) == 0
    cards = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in cards] == shipped()


def test_cards_match_the_shipped_weights() -> None:
    cards = load_cards()
    if not cards:
        pytest.skip("no cards generated yet (edgeghost zoo --cards)")
    for card in cards:
        assert card["weights"] == f"{card['name']}.pt" and card["name"] in shipped()
        assert (CARDS_DIR / f"{card['name']}.md").is_file()
        assert 0 <= card["int8_agreement"] <= 1 and card["top1"]["test_images"] > 0
        q = card["int16x8"]  # the 16-bit-activation model of the same weights, on the same test images
        assert 0 <= q["agreement"] <= 1 and q["test_images"] == card["top1"]["test_images"]
        assert q["arena_bytes"] > card["arena_bytes"]  # 16-bit activations need more arena
    # The card's accuracy rows are the export's, measured from these exact weights.
    from edgeghost.sysinfo import file_digest

    for card in cards:
        assert card["weights_sha256"] == file_digest(pretrained_checkpoint(card["name"]))


def test_firmware_takes_a_zoo_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["firmware", "--pretrained", "nope", "--target", "host", "--out", str(tmp_path / "fw")]) == 2
    assert "unknown zoo model" in capsys.readouterr().err
    assert not (tmp_path / "fw").exists()


def test_card_reuses_only_an_export_of_the_same_weights(tmp_path: Path) -> None:
    """An earlier card export is reused only when it holds these weights, on as many test images, made with
    today's default calibration (method and bias correction) and the firmware flatbuffer of today."""
    from edgeghost.zoo.cards import _reusable_export

    name = shipped()[0]
    weights = pretrained_checkpoint(name)
    out = tmp_path / name
    out.mkdir()
    (out / "model_int8.tflite").write_bytes(b"")
    (out / "tflm").mkdir()
    (out / "tflm" / "model.tflite").write_bytes(b"")  # the embedded (names stripped) flatbuffer
    (out / "tflm_int16x8").mkdir()
    (out / "tflm_int16x8" / "model.tflite").write_bytes(b"")  # and the int16x8 model's
    from edgeghost.sysinfo import file_digest

    ladder = [{"stage": "TFLite int8 (LiteRT reference kernels)", "top1_accuracy": 0.9, "samples": 100}]
    (out / "fidelity.json").write_text(json.dumps({"eval": {"samples": 100}, "ladder": ladder}))
    calibration = {"method": "percentile", "bias_correction": {"images": 200}}  # today's default for PTQ weights
    manifest = {"weights": {"checkpoint": str(weights), "sha256": file_digest(weights)},
                "quantization": {"calibration": calibration}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    got = _reusable_export(out, weights, 100)
    assert got is not None and got[1][0].top1_accuracy == 0.9
    # made before bias correction was the default, or with other ranges
    for other in ({**calibration, "bias_correction": False}, {**calibration, "method": "minmax"}):
        manifest["quantization"]["calibration"] = other
        (out / "manifest.json").write_text(json.dumps(manifest))
        assert _reusable_export(out, weights, 100) is None, other
    manifest["quantization"]["calibration"] = calibration
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert _reusable_export(out, weights, 10_000) is None  # other test-set size
    (out / "tflm" / "model.tflite").unlink()  # an export from before the firmware flatbuffer lost its names
    assert _reusable_export(out, weights, 100) is None
    (out / "tflm" / "model.tflite").write_bytes(b"")
    (out / "tflm_int16x8" / "model.tflite").unlink()  # an export from before cards carried the int16x8 model
    assert _reusable_export(out, weights, 100) is None
    (out / "tflm_int16x8" / "model.tflite").write_bytes(b"")
    manifest["weights"]["sha256"] = "0" * 64  # other weights
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert _reusable_export(out, weights, 100) is None


def test_zoo_training_parses_each_recipe_as_edgeghost_train_would(tmp_path: Path) -> None:
    """``python -m edgeghost.zoo train`` runs the library on the same flags the card's command shows."""
    from edgeghost.training import parse_config

    for entry in ZOO.values():
        cfg = parse_config(entry.train_args(tmp_path / entry.name)[1:])
        assert (cfg.model, cfg.width, cfg.epochs) == (entry.model, entry.width, entry.epochs)
        assert (cfg.dataset, cfg.in_chans, cfg.batch_size, cfg.threads) == ("fashion_mnist", 1, 64, 1)
        assert cfg.out == str(tmp_path / entry.name)
