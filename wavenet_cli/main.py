"""The `wavenet` command. It sits above both packages (the library never imports the server).

Each subcommand lives in wavenet_cli/commands/<name>.py with `add_arguments(parser)` and
`run(args) -> int`; modules are imported only when their subcommand runs, so
`wavenet --help` stays fast and `wavenet generate` never loads FastAPI.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "serve": "start the inference server (uvicorn)",
    "generate": "write a WAV from a checkpoint",
    "train": "train a WaveNet on a corpus",
    "corpus": "build a multi-speaker speech corpus with the installed synthesizers",
    "bench": "side-by-side generation speed benchmark",
    "load": "load-test a running server over loopback",
    "precision-cost": "measure (and record) the held-out NLL cost of each CPU precision",
    "sampling": "show or set a checkpoint's default (voicing-shaped) sampling",
    "convert": "import a checkpoint trained elsewhere (r9y9 wavenet_vocoder)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wavenet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints usage / error and exits
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(f"wavenet_cli.commands.{name.replace('-', '_')}")
    sub = argparse.ArgumentParser(prog=f"wavenet {name}", description=COMMANDS[name])
    module.add_arguments(sub)
    return int(module.run(sub.parse_args(rest)) or 0)


if __name__ == "__main__":
    sys.exit(main())
