"""Option types and small helpers shared by the ``micro3d`` commands: argparse types that
refuse bad values with the fix, durations, warnings, the options given on the line."""
from __future__ import annotations

import argparse
import math
import sys

from ..errors import InputError


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _checked(name: str, convert, ok, must: str):
    """An argparse type: the text ``convert``-ed, refused unless ``ok(value)`` ("must be
    ``must``, got ..."). ``name``: argparse's word for the type in its own messages."""
    def parse(text: str):
        value = convert(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {must}, got {text}")
        return value

    parse.__name__ = name
    return parse


positive = _checked("positive", int, lambda v: v >= 1, "a positive integer")
non_negative = _checked("non_negative", int, lambda v: v >= 0, ">= 0")
positive_float = _checked("positive_float", number, lambda v: v > 0, "a positive number")
non_negative_float = _checked("non_negative_float", number, lambda v: v >= 0, "0 or more")
unit_interval = _checked("unit_interval", number, lambda v: 0.0 <= v <= 1.0, "between 0 and 1")


def seed_value(text: str) -> int:
    from ..core.bounds import check_seed

    try:
        return check_seed(int(text), "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).strip()) from None


def duration(text: str) -> float:
    """``600``, ``90s``, ``10m``, ``1h30m`` -> seconds."""
    import re

    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        seconds = float(t)
    else:
        number = r"(\d+(?:\.\d+)?)"
        parts = re.fullmatch(rf"(?:{number}h)?(?:{number}m)?(?:{number}s)?", t)
        if not t or parts is None:
            raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 10m, 90s, "
                                             "1h30m)")
        h, m, sec = (float(v) if v else 0.0 for v in parts.groups())
        seconds = 3600 * h + 60 * m + sec
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"must be a positive duration, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if s else f"{m}m"


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def given_options(parser: argparse.ArgumentParser, argv: list[str], command: str) -> set[str]:
    """The long options of ``command`` written on the command line (abbreviations
    resolved as argparse does), to tell a given option from a default."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = [o for o in sub.choices[command]._option_string_actions if o.startswith("--")]
    given = set()
    for token in argv:
        name = token.split("=", 1)[0]
        if not name.startswith("--"):
            continue
        matches = [o for o in options if o == name] or [o for o in options
                                                         if o.startswith(name)]
        if len(matches) == 1:
            given.add(matches[0])
    return given


def stopped_by(stop) -> str:
    """`` by SIGTERM`` for a stop that came as a signal other than Ctrl-C."""
    return f" by {stop.name}" if stop() and stop.name != "SIGINT" else ""


def device_option(name: str):
    from ..core.device import resolve_device

    try:
        return resolve_device(name)
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"--device {name}: {exc}") from None


def add_device_option(parser: argparse.ArgumentParser, what: str = "") -> None:
    """``--device``, default auto; ``what``: what runs there, when not the whole command."""
    from ..core.device import DEFAULT_DEVICE, DEVICES

    parser.add_argument("--device", default=DEFAULT_DEVICE,
                        help=f"{what}{', '.join(DEVICES)}, or a numbered GPU such as cuda:1")
