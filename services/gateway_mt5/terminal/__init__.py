"""The real backends (``mt5``, ``mt5linux``): one adapter over an object with the MetaTrader5 API.

Modules: api (the Protocols of that object, checked against metatrader5-stubs), convert (records ->
messages), guard (every call on one thread with a deadline), lock (one gateway per terminal and
account), cursors (closed bars and exit deals exactly once), settings (config, credentials, how to
reach the terminal), adapter (TerminalBroker, the ``Broker``).
"""
