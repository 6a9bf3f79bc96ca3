"""``getResolvedOptions`` as AWS Glue provides it to job scripts: named ``--key value`` arguments."""

from __future__ import annotations

import argparse


class GlueArgumentError(Exception):
    """Raised (like AWS's) when a required job argument is missing."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise GlueArgumentError(message)


def getResolvedOptions(args: list[str], options: list[str]) -> dict[str, str]:  # noqa: N802 (AWS's name)
    """Return ``{option: value}`` for each requested option found as ``--option value`` in args."""
    parser = _Parser(add_help=False)
    for option in options:
        parser.add_argument(f"--{option}", required=True)
    known, _unknown = parser.parse_known_args(args[1:])
    return vars(known)
