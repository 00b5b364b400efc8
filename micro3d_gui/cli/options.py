"""Option types and small helpers shared by the ``micro3d`` commands: argparse types that
refuse bad values with the fix, durations, warnings, the options given on the line."""
from __future__ import annotations

import argparse
import math
import sys

from ..errors import InputError


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value

def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value

def seed_value(text: str) -> int:
    from ..core.bounds import check_seed

    try:
        return check_seed(int(text), "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).strip()) from None

def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value

def positive_float(text: str) -> float:
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value

def non_negative_float(text: str) -> float:
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value

def unit_interval(text: str) -> float:
    value = number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value

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
    from ..core.device import DEVICES

    parser.add_argument("--device", default=DEVICES[0],
                        help=f"{what}{', '.join(DEVICES)}, or a numbered GPU such as cuda:1")
