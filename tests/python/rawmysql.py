"""A packet-level MySQL client for what the drivers never do on their own (parameter
types sent only once, cursors). Logs in as app with mysql_native_password."""
import socket
import struct

from pymysql._auth import scramble_native_password


def read_packet(s):
    head = b""
    while len(head) < 4:
        head += s.recv(4 - len(head))
    n = head[0] | head[1] << 8 | head[2] << 16
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    return body


def send(s, seq, payload):
    s.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload)


def login(port):
    s = socket.create_connection(("127.0.0.1", port))
    greeting = read_packet(s)
    rest = greeting[greeting.index(b"\0", 1) + 1:]
    salt = rest[4:12] + rest[31:43]
    # LONG_PASSWORD, CONNECT_WITH_DB, PROTOCOL_41, TRANSACTIONS, SECURE_CONNECTION,
    # PLUGIN_AUTH; classic EOF packets.
    caps = 0x1 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000
    auth = scramble_native_password(b"app-password", salt)
    send(s, 1, struct.pack("<IIB", caps, 1 << 24, 45) + b"\0" * 23 + b"app\0"
         + bytes([len(auth)]) + auth + b"shop\0" + b"mysql_native_password\0")
    assert read_packet(s)[0] == 0, "login failed"
    return s


def prepare(s, sql):
    """Returns (statement id, columns, params)."""
    send(s, 0, b"\x16" + sql)
    ok = read_packet(s)
    assert ok[0] == 0, ok
    stmt_id, columns, params = struct.unpack("<IHH", ok[1:9])
    for _ in range((params + 1 if params else 0) + (columns + 1 if columns else 0)):
        read_packet(s)
    return stmt_id, columns, params


def error(packet):
    return "error %d %s" % (struct.unpack("<H", packet[1:3])[0], packet[9:].decode())


def eof_status(packet):
    return struct.unpack("<H", packet[3:5])[0]
