"""A reply to another function than the request's is not an answer (r46c F6): a ``malformed`` fault. Before, a write
answered by a confused gateway with a read reply counted as written, and an input read answered with a holding
read's registers returned them."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

import pytest

from powergrid_hil.client import CommError, ModbusLink


def confused_peer() -> tuple[socket.socket, threading.Thread]:
    """A Modbus TCP peer that answers every request with a function-3 reply of one register, 7 (a confused gateway)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:  # closed by the test
            return
        with conn:
            while header := conn.recv(7):
                tid, _, length, unit = struct.unpack(">HHHB", header)
                conn.recv(length - 1)
                pdu = bytes([3, 2, 0, 7])
                conn.sendall(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


CALLS: list[tuple[Callable[[ModbusLink], object], int]] = [
    (lambda link: link.write_words(0, [5]), 6),
    (lambda link: link.write_words(0, [5, 6]), 16),
    (lambda link: link.read_words("input", 0, 1), 4),
]


@pytest.mark.parametrize(("call", "code"), CALLS, ids=["write one", "write two", "read input"])
def test_a_reply_to_another_function_is_malformed(call, code) -> None:
    listener, thread = confused_peer()
    link = ModbusLink("127.0.0.1", listener.getsockname()[1], timeout_s=2.0)
    try:
        with pytest.raises(CommError, match=f"the reply is to function 3, not {code}") as info:
            call(link)  # was accepted: the setpoint counted as written, the holding register read as input
        assert info.value.kind == "malformed"
    finally:
        link.close()
        listener.close()
        thread.join(5)
