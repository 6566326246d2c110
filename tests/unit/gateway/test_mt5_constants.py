"""shared/mt5.py and the fake terminal agree with the real MetaTrader5 package's constants."""

from __future__ import annotations

from pathlib import Path

from services.gateway_mt5.sim.broker import SimBroker
from shared import mt5
from tests.fakes import fake_mt5_constants as real
from tests.fakes.fake_mt5 import FakeMetaTrader5
from tests.unit.sim.helpers import broker, flat

PACKAGE = {name: getattr(real, name) for name in dir(real) if name.isupper() and name != "PACKAGE_VERSION"}
OURS_ONLY = {"COMMENT_MAX_CHARS", "SYMBOL_FILLING_FOK", "SYMBOL_FILLING_IOC"}  # the package exports no such names


def test_every_shared_constant_has_the_packages_value() -> None:
    ours = {name: value for name, value in vars(mt5).items() if name.isupper() and isinstance(value, int)}
    assert len(PACKAGE) > 200 and set(OURS_ONLY) <= set(ours)
    assert {name: value for name, value in ours.items() if name not in OURS_ONLY} == {
        name: PACKAGE[name] for name in ours if name not in OURS_ONLY
    }
    assert mt5.TIMEFRAMES == {"M1": real.TIMEFRAME_M1, "M5": real.TIMEFRAME_M5, "M15": real.TIMEFRAME_M15}


def test_every_package_retcode_has_a_policy_under_its_own_name() -> None:
    package = {value: name for name, value in PACKAGE.items() if name.startswith("TRADE_RETCODE_")}
    assert set(mt5.RETCODES) == set(package)
    assert {code: entry[0] for code, entry in mt5.RETCODES.items()} == package


def test_ipc_errors_are_the_packages_ipc_codes() -> None:
    ipc = {real.RES_E_INTERNAL_FAIL_SEND, real.RES_E_INTERNAL_FAIL_RECEIVE, real.RES_E_INTERNAL_FAIL_CONNECT,
           real.RES_E_INTERNAL_FAIL_TIMEOUT}
    assert ipc == mt5.IPC_ERRORS


def test_the_fake_module_exposes_every_constant(tmp_path: Path) -> None:
    sim: SimBroker = broker(tmp_path, xau=flat(3300.0, 3))
    fake = FakeMetaTrader5(sim)
    assert all(getattr(fake, name) == value for name, value in PACKAGE.items())
    assert fake.__version__ == real.PACKAGE_VERSION
