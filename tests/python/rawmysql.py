"""A packet-level MySQL client for what the drivers never do on their own (parameter
types sent only once, cursors). Logs in as app with caching_sha2_password, which both
Sluice and MySQL 8.4/9 accept (MySQL 9 has no mysql_native_password); a server that
asks for another plugin (MariaDB switches to mysql_native_password) gets that one."""
import socket
import struct

from pymysql._auth import scramble_caching_sha2, scramble_native_password, sha2_rsa_encrypt


PASSWORD = b"app-password"


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


# LONG_PASSWORD, CONNECT_WITH_DB, PROTOCOL_41, TRANSACTIONS, SECURE_CONNECTION,
# PLUGIN_AUTH; classic EOF packets.
BASE_CAPS = 0x1 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000


def login(port, charset=45, caps=BASE_CAPS):
    # A bounded wait: a response that never comes fails the test instead of hanging it.
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    greeting = read_packet(s)
    rest = greeting[greeting.index(b"\0", 1) + 1:]
    salt = rest[4:12] + rest[31:43]
    auth = scramble_caching_sha2(PASSWORD, salt)
    send(s, 1, struct.pack("<IIB", caps, 1 << 24, charset) + b"\0" * 23 + b"app\0"
         + bytes([len(auth)]) + auth + b"shop\0" + b"caching_sha2_password\0")
    seq = 2
    reply = read_packet(s)
    if reply[0] == 0xFE:  # AuthSwitchRequest
        plugin, _, data = reply[1:].partition(b"\0")
        salt = data.rstrip(b"\0")
        if plugin == b"mysql_native_password":
            answer = scramble_native_password(PASSWORD, salt)
        else:
            answer = scramble_caching_sha2(PASSWORD, salt)
        send(s, 3, answer)
        seq = 4
        reply = read_packet(s)
    if reply[:2] == b"\x01\x03":  # caching_sha2 fast path: OK follows
        reply = read_packet(s)
    elif reply[:2] == b"\x01\x04":  # full authentication: ask for the RSA key
        send(s, seq + 1, b"\x02")
        key = read_packet(s)[1:]
        send(s, seq + 3, sha2_rsa_encrypt(PASSWORD, salt, key))
        reply = read_packet(s)
    assert reply[0] == 0, "login failed: %r" % reply
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


def query_row(s, sql):
    """Runs a COM_QUERY that returns one row; returns its values as strings (None for
    NULL)."""
    send(s, 0, b"\x03" + sql.encode())
    first = read_packet(s)
    assert first[0] not in (0x00, 0xFF), error(first) if first[0] == 0xFF else first
    for _ in range(first[0]):
        read_packet(s)  # column definitions
    read_packet(s)  # EOF
    row = read_packet(s)
    while read_packet(s)[0] != 0xFE:
        pass
    values, i = [], 0
    while i < len(row):
        if row[i] == 0xFB:
            values.append(None)
            i += 1
            continue
        n = row[i]
        i += 1
        values.append(row[i:i + n].decode())
        i += n
    return values
