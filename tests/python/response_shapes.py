"""Runs commands whose responses have many shapes (rows, no rows, several results, an
error after COM_SET_OPTION, warnings read after a pause, a prepare and its binary rows,
a cursor and its fetches, COM_FIELD_LIST) and prints every response packet by packet:
sequence id and payload in hex. Through Sluice a client must get exactly the bytes a
direct connection gives it, whichever EOF style it negotiated.

usage: response_shapes.py PORT EXTRA_CAPS   (0x1000000 = CLIENT_DEPRECATE_EOF)
"""
import socket
import struct
import sys
import time

from rawmysql import BASE_CAPS, login, send

MULTI_RESULTS, PS_MULTI_RESULTS = 0x20000, 0x40000


def read(s):
    head = s.recv(4, socket.MSG_WAITALL)
    n = head[0] | head[1] << 8 | head[2] << 16
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    return head[3], body


def show(label, packets):
    for seq, body in packets:
        print(label, seq, body.hex())


def one(s, label):
    show(label, [read(s)])


def ok_status(body):
    i = 1
    for _ in range(2):  # affected rows, insert id (length-encoded)
        i += {0xFC: 3, 0xFD: 4, 0xFE: 9}.get(body[i], 1)
    return struct.unpack("<H", body[i:i + 2])[0]


def end_status(body):
    """Status of a packet that ends rows: an EOF, or an OK with the EOF header."""
    return ok_status(body) if len(body) > 5 else struct.unpack("<H", body[3:5])[0]


def is_end(body):
    return body[0] == 0xFE and len(body) < 9


def rows(s, packets):
    """Reads rows up to the packet that ends them; returns its status (None: an error)."""
    while True:
        packets.append(read(s))
        body = packets[-1][1]
        if body[0] == 0xFF:
            return None
        if is_end(body):
            return end_status(body)


def results(s, label):
    """Reads a whole COM_QUERY or COM_STMT_EXECUTE response and prints it."""
    packets = []
    while True:
        packets.append(read(s))
        body = packets[-1][1]
        if body[0] == 0xFF:
            break
        if body[0] == 0x00:
            status = ok_status(body)
        else:
            packets.extend(read(s) for _ in range(body[0]))
            if not deprecate:
                packets.append(read(s))
                if end_status(packets[-1][1]) & 0x40:  # a cursor: no rows follow
                    break
            status = rows(s, packets)
            if status is None or status & 0x40:
                break
        if not status & 0x08:  # no more results
            break
    show(label, packets)


def fetched(s, label):
    packets = []
    rows(s, packets)
    show(label, packets)


port, extra = int(sys.argv[1]), int(sys.argv[2], 0)
deprecate = bool(extra & 0x1000000)
s = login(port, caps=BASE_CAPS | MULTI_RESULTS | PS_MULTI_RESULTS | extra)

def query(label, sql):
    send(s, 0, b"\x03" + sql.encode())
    results(s, label)

query("rows", "SELECT 1 AS a, 'two' AS b UNION SELECT 3, 'four'")
query("no-rows", "SELECT id FROM menus WHERE id < 0")
send(s, 0, b"\x1b\x00\x00")
one(s, "option-on")
query("multi", "SELECT 1; SELECT name FROM menus WHERE id = 1; DO 1")
send(s, 0, b"\x1b\x01\x00")
one(s, "option-off")
query("multi-off", "SELECT 1; SELECT 2")
send(s, 0, b"\x1b\x07\x00")
one(s, "option-unknown")
query("warning", "SELECT CAST('1x' AS SIGNED)")
time.sleep(0.3)  # past Sluice's affinity window: the backend goes back to the pool
query("show-warnings", "SHOW WARNINGS")

# A prepare (1 parameter, 2 columns), its execute (binary rows), then a cursor.
send(s, 0, b"\x16SELECT ? + 1 AS x, name FROM menus WHERE id <= 2 ORDER BY id")
ok = read(s)
stmt, columns, params = struct.unpack("<IHH", ok[1][1:9])
blocks = (params + (0 if deprecate else 1)) + (columns + (0 if deprecate else 1))
rest = [read(s) for _ in range(blocks)]
print("prepare", ok[0], ok[1][:1].hex() + "<id>" + ok[1][5:].hex())
for seq, body in rest:
    print("prepare", seq, body.hex())
param = struct.pack("<IBI", stmt, 0, 1) + b"\x00" + b"\x01" + b"\x08\x00" + struct.pack("<q", 41)
send(s, 0, b"\x17" + param)
results(s, "execute")
send(s, 0, b"\x17" + struct.pack("<IBI", stmt, 1, 1) + b"\x00\x01\x08\x00" + struct.pack("<q", 1))
results(s, "cursor")
send(s, 0, b"\x1c" + struct.pack("<II", stmt, 1))
fetched(s, "fetch")
send(s, 0, b"\x1c" + struct.pack("<II", stmt, 5))
fetched(s, "fetch")
send(s, 0, b"\x04menus\x00")
fetched(s, "field-list")
send(s, 0, b"\x0e")
one(s, "ping")
s.close()
