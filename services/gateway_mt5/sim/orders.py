"""order_send of the simulated broker: MT5's checks, in MT5's order, with MT5's retcodes.

Market execution only (TRADE_ACTION_DEAL at the current bid/ask, whatever ``price`` says, except
under an injected requote) and TRADE_ACTION_SLTP. Pending orders are refused with 10013: the system
does not use them. Retcodes MT5-FACTS leaves open, as chosen here:
- unknown symbol -> 10013; unknown position ticket -> 10013, an already closed one -> 10036;
- close with the same type as the position, or on another symbol -> 10013; close volume above the
  position's -> 10038; an order type other than BUY/SELL -> 10035;
- trade_mode long-only / short-only / close-only refusing an opening -> 10042 / 10043 / 10044 (as
  MT5 does; trade_mode 0 -> 10017);
- SL/TP not a multiple of trade_tick_size (beyond 1e-6 tick of float noise) -> 10016, else they are
  normalised to digits; an SL/TP exactly at the current price is refused even at stops level 0;
- no quote yet -> 10021.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.gateway_mt5.sim.faults import FaultInjector
from services.gateway_mt5.sim.feed import Feed
from services.gateway_mt5.sim.ledger import Ledger, Position
from shared import mt5
from shared.messages import TradeRequest, TradeResult

EXTRA_RETCODES = {
    10042: "only long positions are allowed",
    10043: "only short positions are allowed",
    10044: "only position closing is allowed",
}
IPC_TIMEOUT = (mt5.RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout")
NO_IPC = (mt5.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")


def retcode_comment(retcode: int) -> str:
    """The server's comment for a retcode, like the terminal's ('Request executed', 'Invalid stops'...)."""
    if retcode == 10009:
        return "Request executed"
    entry = mt5.RETCODES.get(retcode)
    text = entry[1] if entry else EXTRA_RETCODES.get(retcode, "unknown")
    return text[:1].upper() + text[1:]


def normalise_volume(volume: float, step: float) -> float:
    """A volume as an exact multiple of the step (float noise removed)."""
    return round(round(volume / step) * step, 8)


@dataclass(frozen=True, slots=True)
class _Checked:
    """A deal request that passed every check: what to execute."""

    side: int
    volume: float
    pos: Position | None
    sl: float
    tp: float


class OrderDesk:
    """Validates and executes trade requests against the feeds and the ledger."""

    def __init__(self, feeds: list[Feed], ledger: Ledger, faults: FaultInjector) -> None:
        self._feeds = {feed.name: feed for feed in feeds}
        self._ledger = ledger
        self._faults = faults
        self.last_error: tuple[int, str] = (mt5.RES_S_OK, "Success")

    def send(self, request: TradeRequest, now: float, connected: bool) -> TradeResult | None:
        """MT5 order_send: a TradeResult, or None (outcome unknown) with ``last_error`` set."""
        if len(request.comment) > mt5.COMMENT_MAX_CHARS:
            return self._none((mt5.RES_E_INVALID_PARAMS, 'Invalid "comment" argument'))
        if not connected:
            return self._none(NO_IPC)
        self.last_error = (mt5.RES_S_OK, "Success")
        feed = self._feeds.get(request.symbol)
        if feed is None:
            return TradeResult(retcode=10013, comment=retcode_comment(10013))
        if request.action == mt5.TRADE_ACTION_DEAL:
            return self._deal(request, feed, now)
        if request.action == mt5.TRADE_ACTION_SLTP:
            return self._sltp(request, feed, now)
        return self._refuse(10013, feed)

    def _none(self, error: tuple[int, str]) -> TradeResult | None:
        """order_send's None: the outcome is unknown to the caller; last_error says why."""
        self.last_error = error
        return None

    def _refuse(
        self, retcode: int, feed: Feed, bid: float | None = None, ask: float | None = None,
    ) -> TradeResult:
        quote_bid, quote_ask = feed.quote()
        return TradeResult(
            retcode=retcode, bid=quote_bid if bid is None else bid, ask=quote_ask if ask is None else ask,
            comment=retcode_comment(retcode),
        )

    def _position(self, request: TradeRequest) -> Position | int:
        """The position a request names, or the retcode refusing it."""
        pos = self._ledger.positions.get(request.position)
        if pos is None:
            return 10036 if request.position in self._ledger.closed else 10013
        if pos.symbol != request.symbol:
            return 10013
        return pos

    def _deal(self, request: TradeRequest, feed: Feed, now: float) -> TradeResult | None:
        checked = self._check_deal(request, feed, now)
        if isinstance(checked, int):
            return self._refuse(checked, feed)
        fault = self._faults.draw()
        bid, ask = feed.quote()
        price = ask if checked.side > 0 else bid
        if fault == "timeout":
            return self._refuse(10012, feed)
        if fault == "price_off":
            return self._refuse(10021, feed, 0.0, 0.0)
        if fault == "price_changed":
            return self._refuse(10020, feed)
        if fault == "requote":
            shift = self._faults.shift() * feed.point * checked.side
            moved_bid, moved_ask = round(bid + shift, feed.digits), round(ask + shift, feed.digits)
            price = moved_ask if checked.side > 0 else moved_bid
            off = round(abs(price - request.price) / feed.point) if request.price else None
            if off is None or off > request.deviation:
                return self._refuse(10004, feed, moved_bid, moved_ask)
        if fault == "none_not_filled":
            return self._none(IPC_TIMEOUT)
        if checked.pos is not None:
            closed = self._ledger.close(
                checked.pos, volume=checked.volume, price=price, when=now, reason=mt5.DEAL_REASON_EXPERT,
                comment=request.comment, magic=request.magic,
            )
            deal, order = closed.ticket, closed.order
        else:
            deal, order, _ = self._ledger.open(
                sym=feed.index, side=checked.side, volume=checked.volume, price=price, sl=checked.sl,
                tp=checked.tp, magic=request.magic, comment=request.comment, when=now,
            )
        if fault == "none_filled":
            return self._none(IPC_TIMEOUT)
        return TradeResult(
            retcode=10009, deal=deal, order=order, volume=checked.volume, price=price, bid=bid, ask=ask,
            comment=retcode_comment(10009),
        )

    def _check_deal(self, request: TradeRequest, feed: Feed, now: float) -> _Checked | int:
        """The validated deal, or the retcode MT5 would refuse it with."""
        spec = feed.config.spec
        if request.type not in (mt5.ORDER_TYPE_BUY, mt5.ORDER_TYPE_SELL):
            return 10035
        side = 1 if request.type == mt5.ORDER_TYPE_BUY else -1
        pos: Position | None = None
        if request.position:
            found = self._position(request)
            if isinstance(found, int):
                return found
            if found.side == side:
                return 10013
            pos = found
        refused = self._check_market(feed, opening=pos is None, side=side, now=now)
        if refused:
            return refused
        filling = request.type_filling
        if not (
            (filling == mt5.ORDER_FILLING_FOK and spec.filling_mode & mt5.SYMBOL_FILLING_FOK)
            or (filling == mt5.ORDER_FILLING_IOC and spec.filling_mode & mt5.SYMBOL_FILLING_IOC)
        ):
            return 10030
        volume = request.volume
        steps = volume / spec.volume_step
        if (
            volume < spec.volume_min - 1e-9 or volume > spec.volume_max + 1e-9
            or abs(steps - round(steps)) > 1e-6
        ):
            return 10014
        volume = normalise_volume(volume, spec.volume_step)
        bid, ask = feed.quote()
        if pos is not None:
            if volume > pos.volume + 1e-9:
                return 10038
            return 10029 if self._frozen(feed, pos, bid, ask) else _Checked(side, volume, pos, 0.0, 0.0)
        stops = self._stops(feed, side, request.sl, request.tp, bid=bid, ask=ask)
        if stops is None:
            return 10016
        floating, swap, margin = self._ledger.totals()
        free = self._ledger.balance + floating + swap - margin
        if self._ledger.margin_needed(feed.index, volume, ask if side > 0 else bid) > free + 1e-9:
            return 10019
        return _Checked(side, volume, None, *stops)

    @staticmethod
    def _check_market(feed: Feed, *, opening: bool, side: int, now: float) -> int:
        """trade_mode, market hours and quote checks; the refusing retcode or 0."""
        mode = feed.config.spec.trade_mode
        if mode == mt5.SYMBOL_TRADE_MODE_DISABLED:
            return 10017
        if opening and mode == mt5.SYMBOL_TRADE_MODE_CLOSEONLY:
            return 10044
        if opening and mode == mt5.SYMBOL_TRADE_MODE_LONGONLY and side < 0:
            return 10042
        if opening and mode == mt5.SYMBOL_TRADE_MODE_SHORTONLY and side > 0:
            return 10043
        if not feed.schedule.is_open(now):
            return 10018
        return 10021 if feed.cursor < 0 else 0

    def _sltp(self, request: TradeRequest, feed: Feed, now: float) -> TradeResult | None:
        if not request.position:
            return self._refuse(10013, feed)
        found = self._position(request)
        if isinstance(found, int):
            return self._refuse(found, feed)
        pos = found
        refused = self._check_market(feed, opening=False, side=pos.side, now=now)
        if refused:
            return self._refuse(refused, feed)
        bid, ask = feed.quote()
        stops = self._stops(feed, pos.side, request.sl, request.tp, bid=bid, ask=ask, check_distance=False)
        if stops is None:
            return self._refuse(10016, feed)
        sl, tp = stops
        if sl == pos.sl and tp == pos.tp:
            return self._refuse(10025, feed)
        if self._frozen(feed, pos, bid, ask):
            return self._refuse(10029, feed)
        if self._stops(feed, pos.side, sl, tp, bid=bid, ask=ask) is None:
            return self._refuse(10016, feed)
        fault = self._faults.draw()
        if fault == "timeout":
            return self._refuse(10012, feed)
        if fault == "none_not_filled":
            return self._none(IPC_TIMEOUT)
        self._ledger.set_stops(pos, sl, tp)
        if fault == "none_filled":
            return self._none(IPC_TIMEOUT)
        return TradeResult(retcode=10009, order=self._ledger.new_ticket(), bid=bid, ask=ask,
                           comment=retcode_comment(10009))

    @staticmethod
    def _stops(
        feed: Feed, side: int, sl: float, tp: float, *, bid: float, ask: float, check_distance: bool = True,
    ) -> tuple[float, float] | None:
        """Normalised (sl, tp), or None when MT5 would answer 10016 (invalid stops)."""
        spec = feed.config.spec
        levels = []
        for raw in (sl, tp):
            ticks = raw / spec.trade_tick_size
            if raw and abs(ticks - round(ticks)) > 1e-6:
                return None
            levels.append(round(round(ticks) * spec.trade_tick_size, spec.digits) if raw else 0.0)
        sl, tp = levels
        if not check_distance:
            return sl, tp
        reference = bid if side > 0 else ask
        minimum = max(spec.trade_stops_level, 1)
        for level, sign in ((sl, side), (tp, -side)):
            if level and round((reference - level) * sign / feed.point) < minimum:
                return None
        return sl, tp

    @staticmethod
    def _frozen(feed: Feed, pos: Position, bid: float, ask: float) -> bool:
        """Whether the position's SL or TP is within freeze_level of the price (modify/close refused)."""
        freeze = feed.config.spec.trade_freeze_level
        if not freeze:
            return False
        reference = bid if pos.side > 0 else ask
        for level, sign in ((pos.sl, pos.side), (pos.tp, -pos.side)):
            if level and round((reference - level) * sign / feed.point) <= freeze:
                return True
        return False
