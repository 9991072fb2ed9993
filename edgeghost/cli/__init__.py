"""``edgeghost`` command line: a thin layer over the library.

Each module in this package is one subcommand named after the module. It defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``, and imports heavy libraries inside ``run`` so that
``edgeghost --help`` stays fast. User errors (:class:`EdgeGhostError`) print one line and exit with 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from .. import __version__
from ..errors import EdgeGhostError


def _commands() -> dict[str, object]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return {name: importlib.import_module(f"{__name__}.{name}") for name in names}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeghost", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edgeghost {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in _commands().items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except EdgeGhostError as err:
        print(f"edgeghost {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgeghost {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
