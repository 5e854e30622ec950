"""`eventms serve`'s HTTP protocol (`eventms.http.protocol`: a connection's writes of
one loop turn sent together), over raw sockets: pipelined requests are answered whole
and in order, a large answer arrives complete, and `Connection: close` still sends
everything before closing."""

from __future__ import annotations

import socket

import httpx

from tests.support.live_server import LiveServer


def _exchange(server: LiveServer, raw: bytes) -> bytes:
    """Send `raw` on one connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(raw)
        received = bytearray()
        while chunk := connection.recv(65536):
            received += chunk
    return bytes(received)


def _answers(data: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each HTTP/1.1 answer in `data` (content-length framed)."""
    answers = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in lines
            if line.lower().startswith(b"content-length:")
        )
        answers.append((int(lines[0].split()[1]), rest[:length]))
        data = rest[length:]
    return answers


def test_pipelined_requests_are_answered_in_order(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base) as http:
        made = http.post(
            "/api/v1/event", json={"name": "Pipes", "date": "2031-05-01", "maxAttendees": 5}
        ).json()["result"]
    path = f"/api/v1/event/{made['id']}".encode()
    requests = [
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a miss, then cached hits
        b"GET /api/v1/event/00000000-0000-0000-0000-000000000000 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ]
    answers = _answers(_exchange(live_server, b"".join(requests)))
    assert [status for status, _ in answers] == [200, 404, 200, 200, 200]
    assert answers[0][1] == answers[2][1] == answers[4][1]
    assert b'"name":"Pipes"' in answers[0][1]
    assert answers[3][1] == b'{"status":"ok"}'


def test_a_large_answer_arrives_whole(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base, timeout=30) as http:
        for number in range(300):
            http.post(
                "/api/v1/event",
                json={
                    "name": f"Large {number}",
                    "description": "d" * 2000,
                    "date": "2031-06-01",
                    "location": f"Hall {number}",
                    "maxAttendees": 5,
                },
            )
        expected = http.get("/api/v1/event?limit=300").content
    assert len(expected) > 600_000
    raw = b"GET /api/v1/event?limit=300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    (status, body), *more = _answers(_exchange(live_server, raw))
    assert status == 200 and body == expected and not more
