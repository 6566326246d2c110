"""MetaTrader 5 constants and retcode semantics, as the MetaTrader5 package defines them.

The values are those of the package's ``__init__.py`` (see MT5-FACTS.md). They live here, not in the
gateway, because the executor's retry policy and the simulated broker must agree with them exactly.
"""

from __future__ import annotations

from enum import Enum

TRADE_ACTION_DEAL = 1
TRADE_ACTION_PENDING = 5
TRADE_ACTION_SLTP = 6

ORDER_TYPE_BUY = 0
ORDER_TYPE_SELL = 1

POSITION_TYPE_BUY = 0
POSITION_TYPE_SELL = 1

ORDER_FILLING_FOK = 0
ORDER_FILLING_IOC = 1
ORDER_FILLING_RETURN = 2
ORDER_FILLING_BOC = 3

ORDER_TIME_GTC = 0

# symbol_info().filling_mode is a bit mask; the package exports no SYMBOL_FILLING_* names.
SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2

SYMBOL_TRADE_MODE_DISABLED = 0
SYMBOL_TRADE_MODE_LONGONLY = 1
SYMBOL_TRADE_MODE_SHORTONLY = 2
SYMBOL_TRADE_MODE_CLOSEONLY = 3
SYMBOL_TRADE_MODE_FULL = 4

DEAL_TYPE_BUY = 0
DEAL_TYPE_SELL = 1
DEAL_TYPE_BALANCE = 2

DEAL_ENTRY_IN = 0
DEAL_ENTRY_OUT = 1
DEAL_ENTRY_INOUT = 2
DEAL_ENTRY_OUT_BY = 3

DEAL_REASON_CLIENT = 0
DEAL_REASON_EXPERT = 3
DEAL_REASON_SL = 4
DEAL_REASON_TP = 5
DEAL_REASON_SO = 6

TIMEFRAME_M1 = 1
TIMEFRAME_M5 = 5
TIMEFRAME_M15 = 15
TIMEFRAMES = {"M1": TIMEFRAME_M1, "M5": TIMEFRAME_M5, "M15": TIMEFRAME_M15}

ACCOUNT_MARGIN_MODE_RETAIL_NETTING = 0
ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = 2

COMMENT_MAX_CHARS = 31

# last_error() codes
RES_S_OK = 1
RES_E_FAIL = -1
RES_E_INVALID_PARAMS = -2
RES_E_NO_MEMORY = -3
RES_E_NOT_FOUND = -4
RES_E_INVALID_VERSION = -5
RES_E_AUTH_FAILED = -6
RES_E_UNSUPPORTED = -7
RES_E_AUTO_TRADING_DISABLED = -8
RES_E_INTERNAL_FAIL = -10000
RES_E_INTERNAL_FAIL_SEND = -10001
RES_E_INTERNAL_FAIL_RECEIVE = -10002
RES_E_INTERNAL_FAIL_INIT = -10003
RES_E_INTERNAL_FAIL_CONNECT = -10004
RES_E_INTERNAL_FAIL_TIMEOUT = -10005
IPC_ERRORS = frozenset({-10001, -10002, -10004, -10005})


class RetcodeClass(Enum):
    """What the executor may do after a retcode (MT5-FACTS, 'Result and retcodes')."""

    SUCCESS = "success"
    RETRY_FRESH_PRICE = "retry_fresh_price"
    RETRY_OTHER_FILLING = "retry_other_filling"
    UNKNOWN = "unknown"
    FINAL = "final"


# retcode -> (name, meaning, class)
RETCODES: dict[int, tuple[str, str, RetcodeClass]] = {
    10004: ("TRADE_RETCODE_REQUOTE", "requote", RetcodeClass.RETRY_FRESH_PRICE),
    10006: ("TRADE_RETCODE_REJECT", "request rejected", RetcodeClass.FINAL),
    10007: ("TRADE_RETCODE_CANCEL", "request canceled by trader", RetcodeClass.FINAL),
    10008: ("TRADE_RETCODE_PLACED", "order placed", RetcodeClass.SUCCESS),
    10009: ("TRADE_RETCODE_DONE", "request completed", RetcodeClass.SUCCESS),
    10010: ("TRADE_RETCODE_DONE_PARTIAL", "only part of the request was completed", RetcodeClass.SUCCESS),
    10011: ("TRADE_RETCODE_ERROR", "request processing error", RetcodeClass.UNKNOWN),
    10012: ("TRADE_RETCODE_TIMEOUT", "request canceled by timeout", RetcodeClass.UNKNOWN),
    10013: ("TRADE_RETCODE_INVALID", "invalid request", RetcodeClass.FINAL),
    10014: ("TRADE_RETCODE_INVALID_VOLUME", "invalid volume in the request", RetcodeClass.FINAL),
    10015: ("TRADE_RETCODE_INVALID_PRICE", "invalid price in the request", RetcodeClass.FINAL),
    10016: ("TRADE_RETCODE_INVALID_STOPS", "invalid stops in the request", RetcodeClass.FINAL),
    10017: ("TRADE_RETCODE_TRADE_DISABLED", "trade is disabled", RetcodeClass.FINAL),
    10018: ("TRADE_RETCODE_MARKET_CLOSED", "market is closed", RetcodeClass.FINAL),
    10019: ("TRADE_RETCODE_NO_MONEY", "not enough money to complete the request", RetcodeClass.FINAL),
    10020: ("TRADE_RETCODE_PRICE_CHANGED", "prices changed", RetcodeClass.RETRY_FRESH_PRICE),
    10021: ("TRADE_RETCODE_PRICE_OFF", "no quotes to process the request", RetcodeClass.RETRY_FRESH_PRICE),
    10022: ("TRADE_RETCODE_INVALID_EXPIRATION", "invalid order expiration date", RetcodeClass.FINAL),
    10023: ("TRADE_RETCODE_ORDER_CHANGED", "order state changed", RetcodeClass.FINAL),
    10024: ("TRADE_RETCODE_TOO_MANY_REQUESTS", "too frequent requests", RetcodeClass.RETRY_FRESH_PRICE),
    10025: ("TRADE_RETCODE_NO_CHANGES", "no changes in request", RetcodeClass.SUCCESS),
    10026: ("TRADE_RETCODE_SERVER_DISABLES_AT", "autotrading disabled by server", RetcodeClass.FINAL),
    10027: ("TRADE_RETCODE_CLIENT_DISABLES_AT", "autotrading disabled by client terminal", RetcodeClass.FINAL),
    10028: ("TRADE_RETCODE_LOCKED", "request locked for processing", RetcodeClass.RETRY_FRESH_PRICE),
    10029: ("TRADE_RETCODE_FROZEN", "order or position frozen", RetcodeClass.FINAL),
    10030: ("TRADE_RETCODE_INVALID_FILL", "invalid order filling type", RetcodeClass.RETRY_OTHER_FILLING),
    10031: ("TRADE_RETCODE_CONNECTION", "no connection with the trade server", RetcodeClass.RETRY_FRESH_PRICE),
    10032: ("TRADE_RETCODE_ONLY_REAL", "operation allowed only for live accounts", RetcodeClass.FINAL),
    10033: ("TRADE_RETCODE_LIMIT_ORDERS", "pending orders limit reached", RetcodeClass.FINAL),
    10034: ("TRADE_RETCODE_LIMIT_VOLUME", "volume limit for the symbol reached", RetcodeClass.FINAL),
    10035: ("TRADE_RETCODE_INVALID_ORDER", "incorrect or prohibited order type", RetcodeClass.FINAL),
    10036: ("TRADE_RETCODE_POSITION_CLOSED", "position already closed", RetcodeClass.FINAL),
    10038: ("TRADE_RETCODE_INVALID_CLOSE_VOLUME", "close volume exceeds position volume", RetcodeClass.FINAL),
    10039: ("TRADE_RETCODE_CLOSE_ORDER_EXIST", "a close order already exists", RetcodeClass.FINAL),
    10040: ("TRADE_RETCODE_LIMIT_POSITIONS", "open positions limit reached", RetcodeClass.FINAL),
    10041: ("TRADE_RETCODE_REJECT_CANCEL", "pending order activation rejected", RetcodeClass.FINAL),
    10042: ("TRADE_RETCODE_LONG_ONLY", "only long positions are allowed", RetcodeClass.FINAL),
    10043: ("TRADE_RETCODE_SHORT_ONLY", "only short positions are allowed", RetcodeClass.FINAL),
    10044: ("TRADE_RETCODE_CLOSE_ONLY", "only position closing is allowed", RetcodeClass.FINAL),
    10045: ("TRADE_RETCODE_FIFO_CLOSE", "position closing allowed only by the FIFO rule", RetcodeClass.FINAL),
}

SUCCESS_RETCODES = frozenset(code for code, (_, _, c) in RETCODES.items() if c is RetcodeClass.SUCCESS)


def classify_retcode(retcode: int | None) -> RetcodeClass:
    """The executor's policy for a result; None (order_send returned None) is an unknown outcome."""
    if retcode is None:
        return RetcodeClass.UNKNOWN
    entry = RETCODES.get(retcode)
    return entry[2] if entry else RetcodeClass.FINAL


def describe_retcode(retcode: int | None) -> str:
    """'10016 TRADE_RETCODE_INVALID_STOPS (invalid stops in the request)' for logs and reports."""
    if retcode is None:
        return "None (no result: outcome unknown)"
    entry = RETCODES.get(retcode)
    if entry is None:
        return f"{retcode} UNKNOWN_RETCODE (not in the MT5 table)"
    name, meaning, _ = entry
    return f"{retcode} {name} ({meaning})"


def filling_for(filling_mode_bits: int) -> int:
    """The filling type for a market order on a market-execution symbol (MT5-FACTS, 'Requests')."""
    if filling_mode_bits & SYMBOL_FILLING_FOK:
        return ORDER_FILLING_FOK
    if filling_mode_bits & SYMBOL_FILLING_IOC:
        return ORDER_FILLING_IOC
    return ORDER_FILLING_RETURN


def other_filling(filling_mode_bits: int, tried: int) -> int | None:
    """The other allowed filling type after a 10030, or None when the symbol allows no other."""
    candidates = []
    if filling_mode_bits & SYMBOL_FILLING_FOK:
        candidates.append(ORDER_FILLING_FOK)
    if filling_mode_bits & SYMBOL_FILLING_IOC:
        candidates.append(ORDER_FILLING_IOC)
    candidates.append(ORDER_FILLING_RETURN)
    for candidate in candidates:
        if candidate != tried:
            return candidate
    return None
