"""edgeghost export: a model or checkpoint → ONNX, TFLite fp32, int8 TFLite and TFLite-Micro files."""

from __future__ import annotations

import argparse

HELP = "export a model or checkpoint to ONNX, TFLite fp32/int8 and TFLite-Micro files, with a fidelity ladder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="edgeghost checkpoint (model, width, dataset, normalization come from it)")
    p.add_argument("--pretrained", metavar="NAME", help="a shipped zoo model (see `edgeghost zoo`) instead of --checkpoint")
    p.add_argument("--img-size", type=int, help="input size of an untrained model (default 32; a checkpoint has its own)")
    p.add_argument("--in-chans", type=int, help="input channels 1|3 of an untrained model (default 3)")
    p.add_argument("--model", help="registered model name without a checkpoint (default: ghostnetv3_small)")
    p.add_argument("--width", type=float, help="width multiplier 0.25–4.0 (default 1.0; must match a checkpoint)")
    p.add_argument("--out", help="output folder (default: exports/<model>_w<width>)")
    p.add_argument("--formats", type=lambda v: [f for f in v.split(",") if f],
                   help="comma-separated artefacts: onnx, tflite_fp32, tflite_int8, tflm, tflite_int16x8, "
                        "tflm_int16x8; each brings the stages it is made from (default: onnx,tflite_fp32)")
    p.add_argument("--int8", action="store_true", help="also write the full-integer int8 model and tflm/ files")
    p.add_argument("--int16x8", action="store_true",
                   help="also write a 16-bit-activation, 8-bit-weight model and its tflm_int16x8/ files")
    p.add_argument("--dataset", help="calibration/eval dataset without a checkpoint (default: fashion_mnist)")
    p.add_argument("--data-dir", help="folder with the dataset files (default: the dataset's standard place)")
    p.add_argument("--calib-samples", type=int, default=500, help="training images for int8 calibration "
                   "(default: %(default)s)")
    p.add_argument("--calib-random-noise", action="store_true",
                   help="calibrate on uniform random pixels instead of real images (only for experiments)")
    p.add_argument("--calib-method", choices=["percentile", "minmax", "mse"], default=None,
                   help="int8 activation ranges: 99.99th percentile of |x|, TFLite's min/max, or the clip with the "
                        "least expected quantization error per tensor (default: minmax "
                        "for a QAT checkpoint, the ranges it trained with; percentile otherwise)")
    p.add_argument("--bias-correction", action=argparse.BooleanOptionalAction, default=None,
                   help="int8: shift each conv/FC bias by the mean error its int8 output has against the float model "
                        "on 200 calibration images (default: on, off for a QAT checkpoint and for "
                        "--calib-random-noise; see export/README.md)")
    p.add_argument("--layer-report", action="store_true",
                   help="with --int8: also write int8_layers.md, the int8 error each layer adds")
    p.add_argument("--eval-samples", type=int, default=500, help="test images for the checks and the fidelity "
                   "ladder (default: %(default)s)")
    p.add_argument("--tflm-samples", type=int, default=100, help="how many of those (the first) TFLite-Micro also "
                   "runs, checked against LiteRT's reference kernels; 0 = all (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed for untrained weights and image samples")
    p.add_argument("--quiet", action="store_true", help="print only the ladder and the output folder")


def run(args: argparse.Namespace) -> int:
    from edgeghost.export import export_model
    from edgeghost.zoo import resolve_checkpoint
    from edgeghost.export.fidelity import ladder_table

    result = export_model(
        model=args.model,
        width=args.width,
        checkpoint=resolve_checkpoint(args.checkpoint, args.pretrained),
        img_size=args.img_size,
        in_chans=args.in_chans,
        out=args.out,
        formats=args.formats,
        int8=args.int8,
        int16x8=args.int16x8,
        dataset=args.dataset,
        data_dir=args.data_dir,
        calib_samples=args.calib_samples,
        calib_random_noise=args.calib_random_noise,
        calib_method=args.calib_method,
        bias_correction=args.bias_correction,
        layer_report=args.layer_report,
        eval_samples=args.eval_samples,
        tflm_samples=args.tflm_samples,
        seed=args.seed,
        verbose=not args.quiet,
    )
    n = result.ladder[0].samples
    print(f"Fidelity ladder ({n} test images; {result.manifest['weights']['checkpoint'] or 'UNTRAINED weights'}):")
    print(ladder_table(result.ladder))
    t = result.timings
    parts = [f"{k} {v:.1f}" + (f"+{t[k + ' eval']:.1f}" if k + " eval" in t else "")
             for k, v in t.items() if k not in ("cpu_s", "total") and not k.endswith(" eval")]
    print(f"seconds per stage (build+eval): {', '.join(parts)}; total {t['total']:.1f} s wall, "
          f"{sum(t['cpu_s'].values()):.1f} s CPU")
    print(f"exported to {result.out_dir}/")
    return 0
