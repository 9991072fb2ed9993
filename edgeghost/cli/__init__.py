"""``edgeghost`` command line: a thin layer over the library.

Each module in this package is one subcommand named after the module. It defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``, and imports heavy libraries inside ``run`` so that
``edgeghost --help`` stays fast. User errors (:class:`EdgeGhostError`) print one line and exit with 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys

from .. import __version__
from ..errors import EdgeGhostError


def _commands() -> dict[str, object]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return {name: importlib.import_module(f"{__name__}.{name}") for name in names}


_DEFAULT_NOTE = re.compile(r"\s*\(default: [^()]*\)")


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that an option whose help states its default in words ("(default: the
    dataset's choice)") does not also get a generic "(default: None)" appended after it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if text and len(_DEFAULT_NOTE.findall(text)) > 1:
            last = list(_DEFAULT_NOTE.finditer(text))[-1]
            text = text[: last.start()] + text[last.end():]
        return text


def _plain(text: str) -> str:
    """Docstring markup (``literal``) as plain terminal text."""
    return text.replace("``", "")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeghost", description=_plain(__doc__.splitlines()[0]),
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"edgeghost {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in _commands().items():
        # HELP is plain text; argparse %-formats help strings, so a literal "%" is escaped.
        p = sub.add_parser(name, help=_plain(module.HELP).replace("%", "%%"), description=_plain(module.HELP),
                           formatter_class=_HelpFormatter)
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
