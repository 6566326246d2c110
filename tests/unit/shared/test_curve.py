"""CURVE over real tcp sockets: a client without an admitted key gets nothing; an admitted one is named."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
import zmq.auth

from shared.codec import decode, encode
from shared.curve import CurveError, NamedKeyAuthenticator, make_client, make_server, peer_user_id
from shared.messages import AccountRequest


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    for name in ("gateway", "executor", "intruder"):
        zmq.auth.create_certificates(tmp_path, name)
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    shutil.copy(tmp_path / "executor.key", allowed / "executor.key")
    return tmp_path


@pytest.fixture
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield context
    context.destroy(linger=0)


def server(ctx: zmq.Context[zmq.Socket[bytes]], keys: Path) -> tuple[zmq.Socket[bytes], int]:
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    make_server(router, keys / "gateway.key_secret")
    port = router.bind_to_random_port("tcp://127.0.0.1")
    return router, port


def client(ctx: zmq.Context[zmq.Socket[bytes]], port: int, secure: tuple[Path, Path] | None) -> zmq.Socket[bytes]:
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.ROUTING_ID, b"executor")  # claims the executor's routing id: must not be enough
    if secure is not None:
        make_client(dealer, *secure)
    dealer.connect(f"tcp://127.0.0.1:{port}")
    return dealer


def test_only_an_admitted_key_gets_through_and_is_named(ctx: zmq.Context[zmq.Socket[bytes]], keys: Path) -> None:
    auth = NamedKeyAuthenticator(ctx, keys / "allowed")
    auth.start()
    try:
        router, port = server(ctx, keys)
        plain = client(ctx, port, None)
        intruder = client(ctx, port, (keys / "intruder.key_secret", keys / "gateway.key"))
        executor = client(ctx, port, (keys / "executor.key_secret", keys / "gateway.key"))
        for dealer in (plain, intruder):
            dealer.send(encode(AccountRequest(ts=1)))
        request = AccountRequest(ts=2)
        executor.send(encode(request))
        assert router.poll(5000, zmq.POLLIN)
        identity, payload = router.recv_multipart(copy=False)
        assert decode(payload.bytes).id == request.id
        assert peer_user_id(payload) == "executor"
        router.send_multipart([identity.bytes, b"reply"])
        assert executor.poll(5000, zmq.POLLIN) and executor.recv() == b"reply"
        # Nothing else ever arrived: the plain and the unknown-key clients never completed a handshake.
        assert not router.poll(500, zmq.POLLIN)
        for dealer in (plain, intruder, executor):
            dealer.close()
        router.close()
    finally:
        auth.stop()


def test_a_missing_key_file_is_named(tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    socket = ctx.socket(zmq.ROUTER)
    with pytest.raises(CurveError, match=r"absent\.key_secret"):
        make_server(socket, tmp_path / "absent.key_secret")
    socket.close(linger=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CurveError, match="no client public key"):
        NamedKeyAuthenticator(ctx, tmp_path / "empty")
