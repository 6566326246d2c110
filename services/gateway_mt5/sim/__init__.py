"""The embedded simulated broker: an MT5-faithful trade server replaying real M1 history.

Modules: config (the [sim] table), history (M1 loader), feed (one replayed symbol), ledger (account,
positions, money, SL/TP/stop-out on the tick path), orders (order_send checks and retcodes), faults
(seeded faults), trusted (fast output construction), persist (the trade server's state in SQLite,
resumed after a gateway restart), broker (SimBroker). Market hours live in
../hours.py, shared with the real backends.

Choices where MT5-FACTS is silent (each explained where it is made):
- tick path per M1 bar: open, nearer extreme, other extreme, close at 0/15/30/59 s; a tie goes low
  first on an up bar; continuous inside the bar (fill at the level), a gap at the open (fill there);
- margin = volume * contract * open price / leverage * margin_rate, opposite positions not netted;
- money rounded half away from zero to cents per deal; commission on entry and exit deals; swap at
  00:00 UTC, x3 on swap_triple_weekday, none on weekend nights for a symbol closed at weekends,
  realised on the exit deal; stop-out closes the most losing position at market (reason 6);
- retcodes: see orders.py; None outcomes carry last_error (-10005, 'IPC timeout') whether filled or
  not (a caller must not be able to tell), disconnect windows (-10004, 'No IPC connection');
- DealClosed.side is the deal's type (a buy position exits with a "sell" deal), as MT5 reports it.
"""

from services.gateway_mt5.hours import MarketHours
from services.gateway_mt5.sim.broker import PacingClock, SimBroker
from services.gateway_mt5.sim.config import (
    FaultConfig,
    SimConfig,
    SpecConfig,
    SpreadConfig,
    StaleWindow,
    SymbolConfig,
    Window,
)
from services.gateway_mt5.sim.history import HistoryError, M1History, load_m1

__all__ = [
    "FaultConfig", "HistoryError", "M1History", "MarketHours", "PacingClock", "SimBroker", "SimConfig",
    "SpecConfig", "SpreadConfig", "StaleWindow", "SymbolConfig", "Window", "load_m1",
]
