"""edgeghost zoo: the trained models that ship with edgeghost, and their generated model cards."""

from __future__ import annotations

import argparse
import json

HELP = "list the shipped trained models (--json: their cards); --cards regenerates the cards from the weights"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the model cards as JSON")
    p.add_argument("--cards", nargs="*", metavar="NAME",
                   help="regenerate the cards (all shipped models, or the NAMEs) by exporting and measuring them")
    p.add_argument("--eval-samples", type=int, default=10_000, help="test images for the card (default: all 10,000)")
    p.add_argument("--firmware", action="store_true",
                   help="also build the Cortex-M firmware: flash, RAM, instructions per target")
    p.add_argument("--no-reuse", action="store_true",
                   help="export again even where an export of the same weights on as many images exists")
    p.add_argument("--pareto", metavar="PNG",
                   help="write the Pareto plot (top-1 vs Cortex-M4 CMSIS-NN instructions, marker = arena) of the cards")


def run(args: argparse.Namespace) -> int:
    from ..zoo import ZOO, shipped
    from ..zoo.cards import load_cards, make_cards, plot_pareto

    if args.cards is not None:
        for card in make_cards(args.cards or None, eval_samples=args.eval_samples, firmware=args.firmware,
                               reuse=not args.no_reuse):
            t = card["top1"]
            print(f"{card['name']}: fp32 {t['fp32']} %, int8 {t['int8']} %, TFLM {t['tflm']} % on "
                  f"{t['test_images']} images; agreement {card['int8_agreement']}; arena {card['arena_bytes']} B")
    if args.pareto:
        missing = plot_pareto(load_cards(), args.pareto)
        print(f"wrote {args.pareto}" + (f" (no Cortex-M4 numbers yet: {', '.join(missing)})" if missing else ""))
    if args.cards is not None or args.pareto:
        return 0
    cards = {c["name"]: c for c in load_cards()}
    if args.json:
        print(json.dumps([cards.get(n, {"name": n, "card": "not generated"}) for n in shipped()], indent=2))
        return 0
    have = set(shipped())
    print(f"{'name':<22} {'model':<24} {'width':>5}  {'shipped':<7} {'fp32':>7} {'int8':>7} {'arena':>9}")
    for name, e in ZOO.items():
        c = cards.get(name, {})
        t = c.get("top1", {})
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        arena = c.get("arena_bytes")
        print(f"{name:<22} {e.model:<24} {e.width:>5g}  {'yes' if name in have else 'no':<7} {fmt(t.get('fp32')):>7} "
              f"{fmt(t.get('int8')):>7} {arena if arena else '-':>9}")
    return 0
