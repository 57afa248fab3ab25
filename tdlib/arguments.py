"""Command-line argument types shared by the ``tdlib`` commands.

Each type turns a command-line word into a value or fails with one line that says what was
expected and what was given (argparse prints it and exits with status 2); :func:`program_text`
reads a program given as a word, from standard input or from a file.
"""

from __future__ import annotations

import argparse
import sys


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


def _bounded(convert, accept, what: str):
    """An argparse type: ``convert`` the text, then check it with ``accept``; both failures
    say what was expected and what was given, in one line."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {what}, not {value}")
        return value
    parse.__name__ = what  # argparse names the type in its messages
    return parse


image_size = _bounded(int, lambda v: 8 <= v <= 4096, "a size of 8 to 4096 pixels")
non_negative_int = _bounded(int, lambda v: v >= 0, "a non-negative integer")
positive_int = _bounded(int, lambda v: v >= 1, "a positive integer")
positive_float = _bounded(float, lambda v: 0 < v < float("inf"), "a positive number")
fraction = _bounded(float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")


def program_text(text: str) -> str:
    """A program given on the command line, ``-`` for standard input, or ``@FILE`` for a file
    (a program longer than the system's limit on arguments, about 128 KiB, must come so);
    surrounding white space is dropped."""
    if text == "-":
        return sys.stdin.read().strip()
    if text.startswith("@"):
        path = text[1:]
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
        except (OSError, UnicodeDecodeError) as err:
            raise UsageError(f"cannot read a program from {path}: "
                             f"{getattr(err, 'strerror', None) or err}") from None
    return text


def device(text: str) -> str:
    """A device torch knows and this machine has: cpu, cuda, cuda:N."""
    import torch  # only when a device is named: `tdlib --help` and the light commands stay fast
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device (cpu, cuda, cuda:1)") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: no CUDA GPU is available here")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(
                f"{text}: this machine has {torch.cuda.device_count()} GPU(s)")
    elif parsed.type != "cpu":
        raise argparse.ArgumentTypeError(f"{text}: tdlib runs on cpu or cuda")
    return text
