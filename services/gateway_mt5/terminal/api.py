"""What the adapter needs of "an object with the MetaTrader5 API", written as Protocols.

The same adapter drives three such objects: the ``MetaTrader5`` module (Windows), an
``mt5linux.MetaTrader5(host, port)`` proxy (an RPyC bridge to the module under Wine) and the fake
terminal of the tests. The Protocols name exactly the calls and record fields the adapter reads; the
records are structural (read-only attributes), so the package's named tuples, RPyC proxies of them and
the fake's own named tuples all fit, and the adapter converts each to a plain validated message at once.

``StubbedApi`` is the part the ``metatrader5-stubs`` package types: mypy checks below that the stubbed
module satisfies it, so a signature or record field we got wrong fails ``mypy``. The stubs (0.1.3) do not
cover account_info, symbol_info and history_deals_get; ``Mt5Api`` adds them typed from
the package documentation (MT5-FACTS.md), and the fake's tests exercise them.

The mt5linux client cannot be checked this way: it is untyped (no py.typed) and returns RPyC proxies,
so mypy sees ``Any``. ``settings.api_factory`` casts it to ``Mt5Api`` (the same calls by the same names,
which the contract tests drive through a real mt5linux client), and every value read from a proxy is
cast to a plain type in ``convert`` before it leaves the terminal thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypedDict

import numpy as np
import numpy.typing as npt


class TradeRequestDict(TypedDict, total=False):
    """order_send's request dictionary, field names as the package has them."""

    action: int
    magic: int
    order: int
    symbol: str
    volume: float
    price: float
    stoplimit: float
    sl: float
    tp: float
    deviation: int
    type: int
    type_filling: int
    type_time: int
    expiration: int
    comment: str
    position: int
    position_by: int


class TickRecord(Protocol):
    """symbol_info_tick(): the last quote (times are the broker's server clock)."""

    @property
    def time(self) -> int: ...
    @property
    def bid(self) -> float: ...
    @property
    def ask(self) -> float: ...
    @property
    def time_msc(self) -> int: ...


class PositionRecord(Protocol):
    """positions_get(): one open position."""

    @property
    def ticket(self) -> int: ...
    @property
    def time(self) -> int: ...
    @property
    def type(self) -> int: ...
    @property
    def magic(self) -> int: ...
    @property
    def volume(self) -> float: ...
    @property
    def price_open(self) -> float: ...
    @property
    def sl(self) -> float: ...
    @property
    def tp(self) -> float: ...
    @property
    def price_current(self) -> float: ...
    @property
    def swap(self) -> float: ...
    @property
    def profit(self) -> float: ...
    @property
    def symbol(self) -> str: ...
    @property
    def comment(self) -> str: ...


class OrderResultRecord(Protocol):
    """order_send(): OrderSendResult."""

    @property
    def retcode(self) -> int: ...
    @property
    def deal(self) -> int: ...
    @property
    def order(self) -> int: ...
    @property
    def volume(self) -> float: ...
    @property
    def price(self) -> float: ...
    @property
    def bid(self) -> float: ...
    @property
    def ask(self) -> float: ...
    @property
    def comment(self) -> str: ...


class TerminalRecord(Protocol):
    """terminal_info(): whether the terminal reaches the trade server and may trade."""

    @property
    def connected(self) -> bool: ...
    @property
    def trade_allowed(self) -> bool: ...
    @property
    def build(self) -> int: ...


class AccountRecord(Protocol):
    """account_info() (not in the stubs)."""

    @property
    def login(self) -> int: ...
    @property
    def leverage(self) -> int: ...
    @property
    def margin_mode(self) -> int: ...
    @property
    def balance(self) -> float: ...
    @property
    def profit(self) -> float: ...
    @property
    def equity(self) -> float: ...
    @property
    def margin(self) -> float: ...
    @property
    def margin_free(self) -> float: ...
    @property
    def margin_level(self) -> float: ...
    @property
    def currency(self) -> str: ...


class SymbolRecord(Protocol):
    """symbol_info() (not in the stubs): the spec fields of MT5-FACTS."""

    @property
    def name(self) -> str: ...
    @property
    def digits(self) -> int: ...
    @property
    def point(self) -> float: ...
    @property
    def trade_tick_size(self) -> float: ...
    @property
    def trade_tick_value(self) -> float: ...
    @property
    def trade_contract_size(self) -> float: ...
    @property
    def volume_min(self) -> float: ...
    @property
    def volume_max(self) -> float: ...
    @property
    def volume_step(self) -> float: ...
    @property
    def trade_stops_level(self) -> int: ...
    @property
    def trade_freeze_level(self) -> int: ...
    @property
    def trade_mode(self) -> int: ...
    @property
    def filling_mode(self) -> int: ...
    @property
    def spread(self) -> int: ...
    @property
    def currency_profit(self) -> str: ...


class DealRecord(Protocol):
    """history_deals_get() (not in the stubs): one deal."""

    @property
    def ticket(self) -> int: ...
    @property
    def order(self) -> int: ...
    @property
    def time(self) -> int: ...
    @property
    def type(self) -> int: ...
    @property
    def entry(self) -> int: ...
    @property
    def magic(self) -> int: ...
    @property
    def position_id(self) -> int: ...
    @property
    def reason(self) -> int: ...
    @property
    def volume(self) -> float: ...
    @property
    def price(self) -> float: ...
    @property
    def commission(self) -> float: ...
    @property
    def swap(self) -> float: ...
    @property
    def profit(self) -> float: ...
    @property
    def fee(self) -> float: ...
    @property
    def symbol(self) -> str: ...
    @property
    def comment(self) -> str: ...


Rates = npt.NDArray[Any]
"""copy_rates_*: a structured array time(i8), open, high, low, close (f8), tick_volume (u8), spread (i4),
real_volume (u8)."""

RATES_DTYPE = np.dtype([
    ("time", "<i8"), ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8"),
    ("tick_volume", "<u8"), ("spread", "<i4"), ("real_volume", "<u8"),
])


class StubbedApi(Protocol):
    """The calls ``metatrader5-stubs`` types; checked against the stubs at the end of this module."""

    def initialize(
        self, path: str = ..., *, login: int = ..., password: str = ..., server: str = ...,
        timeout: int = ..., portable: bool = ...,
    ) -> bool: ...

    def shutdown(self) -> None: ...

    def last_error(self) -> tuple[int, str]: ...

    def terminal_info(self) -> TerminalRecord | None: ...

    def symbol_select(self, symbol: str, enable: bool = True) -> bool: ...

    def symbol_info_tick(self, symbol: str) -> TickRecord | None: ...

    def copy_rates_from_pos(self, symbol: str, timeframe: int, start_pos: int, count: int, /) -> Rates | None: ...

    def positions_get(
        self, *, symbol: str = ..., group: str = ..., ticket: int = ...,
    ) -> tuple[PositionRecord, ...] | None: ...

    def order_send(self, request: TradeRequestDict) -> OrderResultRecord | None: ...


class Mt5Api(StubbedApi, Protocol):
    """Everything the adapter calls: the stubbed part plus the calls the stubs do not cover."""

    def account_info(self) -> AccountRecord | None: ...

    def symbol_info(self, symbol: str) -> SymbolRecord | None: ...

    def history_deals_get(self, date_from: int, date_to: int, /) -> tuple[DealRecord, ...] | None: ...


if TYPE_CHECKING:
    import MetaTrader5

    _STUBS_AGREE: StubbedApi = MetaTrader5  # mypy: the real package's typed surface fits what we call
