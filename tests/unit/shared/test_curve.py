"""CURVE over real tcp sockets at the ZeroMQ level: a client without an admitted key gets nothing; an admitted
one is named by its key file, whatever routing id it claims; authenticators start and stop with servers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from shared.codec import decode, encode
from shared.curve import (
    AUTHENTICATORS,
    CurveError,
    CurveKeys,
    admitted_clients,
    make_client,
    make_server,
    peer_user_id,
    release_server,
)
from shared.messages import AccountRequest
from tests.curve_keys import Keyring, last_endpoint

Context = zmq.Context[zmq.Socket[bytes]]


@pytest.fixture
def ring(tmp_path: Path) -> Keyring:
    return Keyring(tmp_path)


@pytest.fixture
def ctx() -> Iterator[Context]:
    context: Context = zmq.Context()
    yield context
    context.destroy(linger=0)


def dealer(ctx: Context, endpoint: str, keys: CurveKeys | None) -> zmq.Socket[bytes]:
    socket = ctx.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.ROUTING_ID, b"executor")  # claims the executor's routing id: must not be enough
    if keys is not None:
        make_client(socket, endpoint, keys)
    socket.connect(endpoint)
    return socket


def test_only_an_admitted_key_gets_through_and_is_named_by_its_file(ctx: Context, ring: Keyring) -> None:
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    make_server(ctx, router, ring.keys("gateway_mt5"))
    router.bind("tcp://127.0.0.1:*")
    endpoint = last_endpoint(router)
    servers = {endpoint: "gateway_mt5"}
    plain = dealer(ctx, endpoint, None)
    intruder = dealer(ctx, endpoint, ring.keys("intruder", servers))
    risk = dealer(ctx, endpoint, ring.keys("risk", servers))
    for socket in (plain, intruder):
        socket.send(encode(AccountRequest(ts=1)))
    request = AccountRequest(ts=2)
    risk.send(encode(request))
    assert router.poll(5000, zmq.POLLIN)
    routing_id, payload = router.recv_multipart(copy=False)
    assert decode(payload.bytes).id == request.id
    assert routing_id.bytes == b"executor"  # what it claims...
    assert peer_user_id(payload) == "risk"  # ...and who it is
    router.send_multipart([routing_id.bytes, b"reply"])
    assert risk.poll(5000, zmq.POLLIN) and risk.recv() == b"reply"
    # Nothing else ever arrived: the plain and the unknown-key clients never completed a handshake.
    assert not router.poll(500, zmq.POLLIN)
    for socket in (plain, intruder, risk, router):
        socket.close()
    release_server(ctx)


def test_one_authenticator_per_context_stopped_by_the_last_server_so_the_context_terminates(ring: Keyring) -> None:
    context: Context = zmq.Context()
    keys = ring.keys("gateway_mt5")
    servers = [context.socket(zmq.ROUTER), context.socket(zmq.PUB)]
    for socket in servers:  # a second authenticator would fail to bind the context's ZAP endpoint
        make_server(context, socket, keys)
        socket.bind("tcp://127.0.0.1:*")
    assert AUTHENTICATORS.running(context) == 2
    for socket in servers:
        socket.close(linger=0)
        release_server(context)
    assert AUTHENTICATORS.running(context) == 0
    terminating = threading.Thread(target=context.term, daemon=True)
    terminating.start()
    terminating.join(timeout=5)
    assert not terminating.is_alive(), "ctx.term() hangs: the authenticator thread still holds a socket"


def test_keys_on_disk(tmp_path: Path, ring: Keyring) -> None:
    keys = ring.keys("executor")
    assert keys.secret.decode() not in repr(keys)  # a logged CurveKeys never shows the secret
    assert sorted(admitted_clients(ring.public_dir).values()) == ["executor", "gateway_mt5", "risk", "telegram"]
    assert (ring.root / "secret").stat().st_mode & 0o077 == 0
    assert (ring.root / "secret" / "risk.key_secret").stat().st_mode & 0o077 == 0
    with pytest.raises(CurveError, match=r"absent\.key_secret"):
        CurveKeys.load("absent", tmp_path / "absent.key_secret", ring.public_dir, {})
    with pytest.raises(CurveError, match=r"holds no secret key"):
        CurveKeys.load("risk", ring.public_dir / "risk.key", ring.public_dir, {})
    (ring.public_dir / "risk.key").write_text('metadata\ncurve\n    public-key = "too short"\n')
    with pytest.raises(CurveError, match=r"risk\.key: not a readable CURVE public key file"):
        admitted_clients(ring.public_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CurveError, match="no client public key"):
        admitted_clients(tmp_path / "empty")
    with pytest.raises(CurveError, match="no server public key is known"):
        keys.server_key("tcp://127.0.0.1:1")
