"""edgeghost flash: write a built NUCLEO project to its board and check what the board prints."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("flash a built bare-metal project (nucleo-f446re, nucleo-l4r5zi) with st-flash or openocd, then read the "
        "board's serial console and check its int8 outputs against TFLite-Micro in Python")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", type=Path, required=True,
                   help="project folder from `edgeghost firmware --target nucleo-... --build`")
    p.add_argument("--probe", default="stlink",
                   help="stlink (st-flash, Debian stlink-tools) or openocd (default: %(default)s)")
    p.add_argument("--port", help="serial port of the ST-LINK virtual COM port (default: /dev/serial/by-id/"
                                  "*STLINK*, else /dev/ttyACM*)")
    p.add_argument("--no-read", action="store_true", help="flash only; do not read the console")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds to wait for the board's verdict line (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print the flashing commands and exit")


def run(args: argparse.Namespace) -> int:
    import shlex

    from ..export import flash

    if args.dry_run:
        for cmd in flash.flash_commands(args.project, args.probe):
            print(shlex.join(cmd))
        return 0
    res = flash.flash_firmware(args.project, probe=args.probe, port=args.port, read=not args.no_read,
                               timeout=args.timeout)
    if res is None:
        print(f"flashed {args.project} with {args.probe}")
        return 0
    print(f"board clock: {res.clock_hz / 1e6:g} MHz ({res.clock_source})")
    for i, (out, ref) in enumerate(zip(res.outputs, res.expected)):
        cost = f"{res.cycles[i]:,} cycles = {res.ms[i]:.2f} ms" if res.ms else "-"
        print(f"{i:>5}  class {int(out.argmax())}  {cost}  {'identical' if (out == ref).all() else 'DIFFERENT'}")
    verdict = "identical" if res.identical else "DIFFERENT"
    print(f"int8 outputs {verdict} to TFLite-Micro (Python) on {len(res.outputs)} inputs; board verdict: "
          f"{'PASS' if res.passed else 'FAIL'}")
    return 0 if res.identical and res.passed else 1
