"""Bounded input: bodies over MAX_BODY_BYTES are refused with 413 in the envelope,
declared or chunked, before they are read whole, and nothing is written."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.api import counts
from tests.support.asgi import running

LIMIT = 64 * 1024


def padded_attendee(size: int) -> bytes:
    """A valid attendee body of exactly `size` bytes (the padding is an ignored field)."""
    base = {"name": "Ada", "email": "ada@example.com", "pad": ""}
    room = size - len(json.dumps(base).encode())
    assert room >= 0
    return json.dumps({**base, "pad": "x" * room}).encode()


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.json() == {
        "statusCode": 413,
        "message": f"Request body too large: at most {LIMIT} bytes",
        "error": "Payload Too Large",
    }
    assert response.headers["connection"] == "close"


async def test_a_body_at_the_limit_is_accepted(client, db):
    body = padded_attendee(LIMIT)
    response = await client.post(
        "/attendee", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert counts(db) == (0, 1, 0)


async def test_a_declared_length_over_the_limit_is_refused(client, db):
    response = await client.post(
        "/attendee",
        content=padded_attendee(LIMIT + 1),
        headers={"content-type": "application/json"},
    )
    assert_too_large(response)
    assert counts(db) == (0, 0, 0)


async def test_a_chunked_body_is_cut_off_at_the_limit(client, db):
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"name": "Ada", "email": "ada@example.com", "pad": "'
        for _ in range(1000):  # 16 MB if read whole
            sent += 1
            yield b"x" * 16384
        yield b'"}'

    response = await client.post(
        "/attendee", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_too_large(response)
    assert sent < 10  # stopped reading just past the limit, not at the end
    assert counts(db) == (0, 0, 0)


async def test_the_limit_applies_to_every_route_and_method(client, db):
    big = b"{" + b" " * LIMIT + b"}"
    for method, path in [
        ("PATCH", "/event/6f1c0000-0000-0000-0000-000000000000"),
        ("POST", "/registration"),
        ("POST", "/nowhere"),
    ]:
        response = await client.request(
            method, path, content=big, headers={"content-type": "application/json"}
        )
        assert_too_large(response)


async def test_max_body_bytes_is_a_setting(settings):
    from eventms.app import create_app

    async with running(create_app(settings.model_copy(update={"max_body_bytes": 2048}))) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as http:
            response = await http.post(
                "/attendee",
                content=padded_attendee(2049),
                headers={"content-type": "application/json"},
            )
            assert response.status_code == 413
            assert "at most 2048 bytes" in response.json()["message"]
            response = await http.post(
                "/attendee",
                content=padded_attendee(2048),
                headers={"content-type": "application/json"},
            )
            assert response.status_code == 201


@pytest.mark.parametrize("chunked", [False, True])
def test_a_60_mb_body_over_a_real_socket_is_refused_early(live_server, chunked):
    """Through uvicorn: the answer comes while most of the body is still unsent."""
    head = (
        "POST /api/v1/attendee HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + ("Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {60 << 20}\r\n")
        + "\r\n"
    ).encode()

    def framed(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data) if chunked else data

    piece = framed(b"x" * 65536)
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as connection:
        connection.sendall(head + framed(b'{"name": "Ada", "pad": "'))
        sent = 0
        answer = b""
        connection.settimeout(0.05)
        while sent < 60 << 20 and b"\r\n\r\n" not in answer:
            try:
                connection.sendall(piece)
                sent += len(piece)
            except OSError:  # the server closed its side after answering
                break
            try:
                answer += connection.recv(65536)
            except TimeoutError:
                pass
        connection.settimeout(5)
        while b"}" not in answer.partition(b"\r\n\r\n")[2]:
            more = connection.recv(65536)
            if not more:
                break
            answer += more
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 8 << 20  # refused long before the 60 MB were sent
    assert b"\r\nconnection: close\r\n" in answer.lower()
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["statusCode"] == 413
