"""A read-only cursor (COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY, then COM_STMT_FETCH
in batches) while other clients use the pool between fetches, and the same client runs
other prepared statements between fetches, one of them the cursor's own text prepared
again, and then pauses (the cursor must survive statements that open none).

usage: cursor.py PORT      prints the ids fetched per batch and the final status
"""
import struct
import sys
import time

import pymysql

from rawmysql import eof_status, error, login, prepare, read_packet, send

CURSOR_EXISTS, LAST_ROW_SENT = 0x40, 0x80
port = int(sys.argv[1])
s = login(port)
stmt_id, columns, _ = prepare(s, b"SELECT id, name FROM menus ORDER BY id")
send(s, 0, bytes([0x17]) + struct.pack("<IBI", stmt_id, 1, 1))  # flags 1: read-only cursor
first = read_packet(s)
assert first[0] != 0xFF, error(first)
for _ in range(columns):
    read_packet(s)
opened = eof_status(read_packet(s)) & CURSOR_EXISTS != 0
other_id, other_columns, _ = prepare(s, b"SELECT price FROM menus WHERE id = 1")
# The cursor's own text prepared a second time by the same session: a statement of its own.
same_id, same_columns, _ = prepare(s, b"SELECT id, name FROM menus ORDER BY id")


def execute_plain(stmt, columns):
    """Runs a statement without a cursor; the first int column of each row."""
    send(s, 0, bytes([0x17]) + struct.pack("<IBI", stmt, 0, 1))
    p = read_packet(s)
    assert p[0] != 0xFF, error(p)
    for _ in range(columns):
        read_packet(s)
    read_packet(s)  # EOF after the columns
    values = []
    while True:
        row = read_packet(s)
        if row[0] == 0xFE and len(row) < 9:
            assert eof_status(row) & CURSOR_EXISTS == 0, row
            return values
        values.append(struct.unpack("<i", row[2:6])[0])


def execute_other():
    """Runs the other statements without a cursor."""
    assert len(execute_plain(same_id, same_columns)) == 9
    return execute_plain(other_id, other_columns)[0]


others = [pymysql.connect(host="127.0.0.1", port=port, user="app", password="app-password",
                          database="shop", autocommit=True) for _ in range(3)]
batches = []
while True:
    for o in others:
        cur = o.cursor()
        cur.execute("SELECT price FROM menus WHERE id = 2")
        assert cur.fetchone()[0] == 750
    assert execute_other() > 0
    # Past Sluice's affinity window.
    time.sleep(0.2)
    send(s, 0, bytes([0x1C]) + struct.pack("<II", stmt_id, 4))
    ids = []
    while True:
        p = read_packet(s)
        if p[0] == 0xFF:
            print(error(p))
            sys.exit(1)
        if p[0] == 0xFE and len(p) < 9:
            status = eof_status(p)
            break
        ids.append(struct.unpack("<i", p[2:6])[0])
    batches.append(ids)
    if status & LAST_ROW_SENT or not ids:
        break
for o in others:
    o.close()
# A fetch once the cursor is done is refused, as by the server.
send(s, 0, bytes([0x1C]) + struct.pack("<II", stmt_id, 4))
p = read_packet(s)
# The message names the statement by the id this client was given.
refusal = error(p).replace(f"({stmt_id})", "(its id)") if p[0] == 0xFF else "no error"
print("opened" if opened else "no cursor", batches, refusal)
