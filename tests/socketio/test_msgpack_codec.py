"""The socket.io-msgpack-parser wire format (fastapi_realtime/socketio/msgpack_codec.py).

NODE holds what npm socket.io-msgpack-parser 3.0.2 (notepack.io 2.2.0) writes, captured with:

    const { Encoder } = require("socket.io-msgpack-parser");
    Buffer.from(new Encoder().encode(packet)[0]).toString("hex")

for the objects the Node server builds (key order as Socket#emit, Socket#ack, Socket#_error...),
and for socket.io-client's own packets (client_*, date).
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from fastapi_realtime.exceptions import RemoteProtocolError
from fastapi_realtime.socketio import msgpack_codec
from fastapi_realtime.socketio.msgpack_codec import Decoder, decode, encode
from fastapi_realtime.socketio.packet import Packet
from fastapi_realtime.socketio.packet import PacketType as T

msgpack = pytest.importorskip("msgpack")

NODE = {
    "connect": "82a47479706500a36e7370a12f",
    "connect_auth": "83a47479706500a46461746182a5746f6b656ea3616263a16e01a36e7370a12f",
    "connect_admin_reply": "83a47479706500a46461746181a3736964a6616263313233a36e7370a62f61646d696e",
    "disconnect": "82a47479706501a36e7370a12f",
    "disconnect_admin": "82a47479706501a36e7370a62f61646d696e",
    "event": "83a47479706502a46461746192a46368617482a474657874a26869a16e01a36e7370a12f",
    "event_ack": "84a47479706502a4646174619ba87175657374696f6ecb3ff8000000000000fdcd012cce00011170cf000000012a05f200d1ff38d2ffff63c0c0c3c2a269640ca36e7370a52f63686174",
    "event_binary": "83a47479706502a46461746193a466696c65c40301020381a4626f6479c5012c070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707a36e7370a12f",
    "event_unicode": "83a47479706502a46461746193a9c3a9e282acf09f9880d92878787878787878787878787878787878787878787878787878787878787878787878787878787878da012c797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979a36e7370a32fc3a9",
    "ack": "84a269640da47479706503a46461746191a26f6ba36e7370a12f",
    "ack_admin_binary": "84a2696400a47479706503a46461746191c4026869a36e7370a62f61646d696e",
    "connect_error": "83a47479706504a46461746182a76d657373616765ae4e6f7420617574686f72697a6564a46461746181a4636f6465cd0191a36e7370a12f",
    "connect_error_str": "83a47479706504a464617461a66c6567616379a36e7370a22f78",
    "event_map16": "83a47479706502a46461746192a16dde0014a26b3000a26b3101a26b3202a26b3303a26b3404a26b3505a26b3606a26b3707a26b3808a26b3909a36b31300aa36b31310ba36b31320ca36b31330da36b31340ea36b31350fa36b313610a36b313711a36b313812a36b313913a36e7370a12f",
    "event_array16": "83a47479706502a46461746192a161dc0014000102030405060708090a0b0c0d0e0f10111213a36e7370a12f",
    "client_connect_noauth": "83a47479706500a464617461d40000a36e7370a12f",
    "client_event": "85a47479706502a46461746192a568656c6c6f01a76f7074696f6e7381a8636f6d7072657373c3a2696403a36e7370a12f",
    "date": "83a47479706502a46461746195a164d7000000018bcfe5687bd4000082a175d40000a17601cb7ff8000000000000a36e7370a12f",
}

PACKETS = {
    "connect": Packet(T.CONNECT, "/"),
    "connect_auth": Packet(T.CONNECT, "/", {"token": "abc", "n": 1}),
    "connect_admin_reply": Packet(T.CONNECT, "/admin", {"sid": "abc123"}),
    "disconnect": Packet(T.DISCONNECT, "/"),
    "disconnect_admin": Packet(T.DISCONNECT, "/admin"),
    "event": Packet(T.EVENT, "/", ["chat", {"text": "hi", "n": 1}]),
    "event_ack": Packet(
        T.EVENT, "/chat", ["question", 1.5, -3, 300, 70000, 5000000000, -200, -40000, None, True, False], 12
    ),
    "event_binary": Packet(T.EVENT, "/", ["file", b"\x01\x02\x03", {"body": b"\x07" * 300}]),
    "event_unicode": Packet(T.EVENT, "/\u00e9", ["\u00e9\u20ac\U0001f600", "x" * 40, "y" * 300]),
    "ack": Packet(T.ACK, "/", ["ok"], 13),
    "ack_admin_binary": Packet(T.ACK, "/admin", [b"hi"], 0),
    "connect_error": Packet(T.CONNECT_ERROR, "/", {"message": "Not authorized", "data": {"code": 401}}),
    "connect_error_str": Packet(T.CONNECT_ERROR, "/x", "legacy"),
    "event_map16": Packet(T.EVENT, "/", ["m", {f"k{i}": i for i in range(20)}]),
    "event_array16": Packet(T.EVENT, "/", ["a", list(range(20))]),
}


@pytest.mark.parametrize("name", sorted(PACKETS))
def test_encode_is_byte_identical_to_node(name: str) -> None:
    assert encode(PACKETS[name]).hex() == NODE[name]


@pytest.mark.parametrize("name", sorted(PACKETS))
def test_decode_node_packets(name: str) -> None:
    assert decode(bytes.fromhex(NODE[name])) == PACKETS[name]
    assert Decoder().feed(bytes.fromhex(NODE[name])) == PACKETS[name]


def test_binary_types_travel_as_event_and_ack() -> None:
    assert encode(Packet(T.BINARY_EVENT, "/", ["file", b"\x01\x02\x03", {"body": b"\x07" * 300}])).hex() == NODE[
        "event_binary"
    ]
    assert encode(Packet(T.BINARY_ACK, "/admin", [b"hi"], 0)).hex() == NODE["ack_admin_binary"]


def test_socket_io_client_packets() -> None:
    """socket.io-client sends `data: undefined` in a CONNECT without auth and `options` in an EVENT."""
    assert decode(bytes.fromhex(NODE["client_connect_noauth"])) == Packet(T.CONNECT, "/")
    assert decode(bytes.fromhex(NODE["client_event"])) == Packet(T.EVENT, "/", ["hello", 1], 3)


def test_javascript_values_read_as_json_would_carry_them() -> None:
    """A Date becomes a UTC datetime; undefined is null in an array and no key in an object; NaN is null."""
    when = datetime.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=datetime.timezone.utc)
    assert decode(bytes.fromhex(NODE["date"])) == Packet(T.EVENT, "/", ["d", when, None, {"v": 1}, None])


def pack(obj: Any) -> bytes:
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


@pytest.mark.parametrize(
    "obj",
    [
        [0, "/"],  # not a map
        "x",
        {"type": 5, "nsp": "/", "data": ["x"]},  # no binary types in this format
        {"type": -1, "nsp": "/"},
        {"type": True, "nsp": "/"},
        {"type": 2.0, "nsp": "/", "data": ["x"]},
        {"type": "2", "nsp": "/", "data": ["x"]},
        {"nsp": "/", "data": ["x"]},
        {"type": 2, "data": ["x"]},  # no namespace
        {"type": 2, "nsp": 1, "data": ["x"]},
        {"type": 2, "nsp": "admin", "data": ["x"]},
        {"type": 2, "nsp": "/"},  # EVENT needs an array
        {"type": 2, "nsp": "/", "data": []},
        {"type": 2, "nsp": "/", "data": [None]},
        {"type": 2, "nsp": "/", "data": ["connect"]},  # reserved
        {"type": 2, "nsp": "/", "data": {"a": 1}},
        {"type": 3, "nsp": "/", "data": "x", "id": 1},
        {"type": 1, "nsp": "/", "data": {}},
        {"type": 0, "nsp": "/", "data": [1]},
        {"type": 4, "nsp": "/", "data": 1},
        {"type": 2, "nsp": "/", "data": ["x"], "id": -1},
        {"type": 2, "nsp": "/", "data": ["x"], "id": 2**53},
        {"type": 2, "nsp": "/", "data": ["x"], "id": None},
        {"type": 2, "nsp": "/", "data": ["x"], "id": 1.0},
        {"type": 2, "nsp": "/", "data": ["x"], "id": "1"},
        {"type": 2, "nsp": "/", "data": ["x", {b"key": 1}]},  # a bin map key
    ],
)
def test_decode_invalid(obj: Any) -> None:
    with pytest.raises(RemoteProtocolError):
        decode(pack(obj))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xc1",  # never used
        b"\x82\xa4type",  # truncated
        pack({"type": 2, "nsp": "/", "data": ["x"]}) + b"\x00",  # trailing data
        b"\x91" * 5000 + b"\xc0",  # nested too deeply
        bytes.fromhex("83a47479706502a36e7370a12fa464617461" "92a178d5050000"),  # unknown extension
    ],
)
def test_decode_invalid_bytes(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode(raw)


def test_decoder_refuses_text() -> None:
    with pytest.raises(RemoteProtocolError):
        Decoder().feed('2["x"]')


def test_nil_data_in_connect_and_disconnect_is_absent() -> None:
    """python-socketio writes `"data": nil` (Node's decoder refuses it); read as no data."""
    assert decode(pack({"type": 0, "data": None, "nsp": "/"})) == Packet(T.CONNECT, "/")
    assert decode(pack({"type": 1, "data": None, "nsp": "/a"})) == Packet(T.DISCONNECT, "/a")


def test_largest_ack_id() -> None:
    assert decode(pack({"type": 3, "nsp": "/", "data": [], "id": 2**53 - 1})).id == 2**53 - 1


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_encode_refuses_non_finite_floats(value: float) -> None:
    with pytest.raises(ValueError, match=r"data\[1\]\['a'\] is"):
        encode(Packet(T.EVENT, "/", ["x", {"a": value}]))


def test_encode_default_hook_and_errors() -> None:
    when = datetime.date(2024, 1, 2)
    out = encode(Packet(T.EVENT, "/", ["d", when]), default=lambda o: o.isoformat())
    assert decode(out) == Packet(T.EVENT, "/", ["d", "2024-01-02"])
    with pytest.raises(TypeError, match="not msgpack serializable"):
        encode(Packet(T.EVENT, "/", ["x", object()]))
    cycle: list[Any] = ["x"]
    cycle.append(cycle)
    with pytest.raises(ValueError, match="reference cycle"):
        encode(Packet(T.EVENT, "/", cycle))


def test_ints_beyond_64_bits_travel_as_floats() -> None:
    assert decode(encode(Packet(T.EVENT, "/", ["n", 2**70, [-(2**64)]]))).data == ["n", 2.0**70, [-(2.0**64)]]


def test_round_trip_odd_values() -> None:
    data = ["e", (1, 2), {"nested": [b"", bytearray(b"x"), -0.5, "\u2028"]}]
    assert decode(encode(Packet(T.ACK, "/n", data, 5))) == Packet(
        T.ACK, "/n", ["e", [1, 2], {"nested": [b"", b"x", -0.5, "\u2028"]}], 5
    )


# --------------------------------------------------------------------------- python-socketio


def test_python_socketio_msgpack_packet_is_the_same_map_format() -> None:
    """socketio.msgpack_packet.MsgPackPacket writes the same map (`type`, `data`, `nsp`, `id`), in
    another key order and with `"data": nil` when there is none: each side reads the other's."""
    from socketio.msgpack_packet import MsgPackPacket

    for name, packet in PACKETS.items():
        theirs = MsgPackPacket(int(packet.type), data=packet.data, namespace=packet.namespace, id=packet.id).encode()
        assert decode(theirs) == packet, name
        back = MsgPackPacket(encoded_packet=encode(packet))
        assert (back.packet_type, back.namespace, back.data, back.id) == (
            int(packet.type), packet.namespace, packet.data, packet.id
        ), name


def test_module_needs_no_msgpack_at_import() -> None:
    assert "msgpack" not in {name.split(".")[0] for name in vars(msgpack_codec)}
