"""Command arguments, checked before anything leaves the service.

A command that changes broker state must never act on a typo: a missing, negative, zero, non-numeric,
non-finite or absurdly large amount, an unknown symbol or an extra word is refused with the command's
usage, and nothing is sent. ``UsageError`` carries the text the owner gets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

ALL_WORDS = frozenset({"all", "*"})


class UsageError(ValueError):
    """The owner's arguments cannot be used; the message is the answer (what is wrong, then usage)."""


def protection_usage(command: str, level: str, symbols: Sequence[str], max_usd: float) -> str:
    """The usage text of /tek_prof or /stop_ls."""
    return (f"Usage: /{command} USD [SYMBOL]\n"
            f"Puts the {level} of every open position of ours USD away from its open price (per position), "
            f"keeping the other level. USD: a positive number up to {max_usd:,.0f}, e.g. /{command} 50. "
            f"SYMBOL (optional): {', '.join(symbols)}.")


def parse_usd(text: str, max_usd: float) -> float:
    """'50', '$50', '12.5usd' -> a finite amount in (0, max_usd]; UsageError otherwise."""
    cleaned = text.strip().lower().removeprefix("$").removesuffix("usd").removesuffix("$").strip()
    try:
        value = float(cleaned)
    except ValueError:
        raise UsageError(f"{text!r} is not a number.") from None
    if not math.isfinite(value):
        raise UsageError(f"{text!r} is not a number.")
    if value <= 0:
        raise UsageError(f"The amount must be positive, got {text}.")
    if value > max_usd:
        raise UsageError(f"{value:,.2f} USD is over the {max_usd:,.0f} USD limit (telegram.max_protection_usd); "
                           "a typo?")
    return value


def resolve_symbol(text: str, symbols: Sequence[str]) -> str:
    """The configured symbol ``text`` names: exact, any case, or a unique prefix ('xau' -> 'XAUUSDm')."""
    lowered = text.lower()
    matches = [s for s in symbols if s.lower() == lowered] or [s for s in symbols if s.lower().startswith(lowered)]
    if len(matches) != 1:
        raise UsageError(f"Unknown symbol {text!r}; use one of {', '.join(symbols)}.")
    return matches[0]


def parse_protection(command: str, level: str, args: Sequence[str], symbols: Sequence[str],
                     max_usd: float) -> tuple[float, str | None]:
    """/tek_prof USD [SYMBOL] and /stop_ls USD [SYMBOL] -> (usd, symbol or None for all)."""
    usage = protection_usage(command, level, symbols, max_usd)
    try:
        if not args:
            raise UsageError("Missing the amount in USD.")
        if len(args) > 2:
            raise UsageError(f"Too many arguments: {' '.join(args)}.")
        usd = parse_usd(args[0], max_usd)
        symbol = resolve_symbol(args[1], symbols) if len(args) == 2 else None
    except UsageError as exc:
        raise UsageError(f"{exc}\n{usage}") from None
    return usd, symbol


def parse_symbol_or_all(command: str, args: Sequence[str], symbols: Sequence[str]) -> str | None:
    """/closeall [SYMBOL|all] -> the symbol, or None for every symbol."""
    usage = f"Usage: /{command} [SYMBOL]: SYMBOL one of {', '.join(symbols)}; without it, every symbol."
    if len(args) > 1:
        raise UsageError(f"Too many arguments: {' '.join(args)}.\n{usage}")
    if not args or args[0].lower() in ALL_WORDS:
        return None
    try:
        return resolve_symbol(args[0], symbols)
    except UsageError as exc:
        raise UsageError(f"{exc}\n{usage}") from None


def parse_service(args: Sequence[str], known: Sequence[str]) -> str:
    """/restart SERVICE -> a program name supervisord knows (exact; a restart is not a guess)."""
    usage = f"Usage: /restart SERVICE, SERVICE one of: {', '.join(known) or '(supervisord lists none)'}."
    if len(args) != 1:
        raise UsageError(("Name one service." if not args else f"Too many arguments: {' '.join(args)}.")
                           + f"\n{usage}")
    if args[0] not in known:
        raise UsageError(f"Unknown service {args[0]!r}.\n{usage}")
    return args[0]
