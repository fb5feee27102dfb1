"""One client's cursor must not change what another client gets from the same statement.
Client A executes a statement with a read-only cursor and fetches to the last row; then
client B prepares the same text and executes it twice without a cursor. Through Sluice
with a pool of one, B gets A's backend and (statements being shared) A's server
statement. Prints the status flags of B's prepare EOFs and the ids of each execute's rows.

MySQL 9.7 answers a plain execute of a statement that once had a cursor with its columns
and no rows; and the EOF status of a prepare shows what the connection's last command
left (LAST_ROW_SENT after A's last fetch). Neither may reach B.

With "again", A then executes its statement once more without a cursor and prints
its rows: through Sluice it gets them, where MySQL itself (9.7) would send none.

usage: cursor_shared.py PORT [again]
"""
import struct
import sys

from rawmysql import eof_status, error, login, prepare, read_packet, send

SQL = b"SELECT id, name FROM menus WHERE id <= 2 ORDER BY id"
port = int(sys.argv[1])

a = login(port)
a_id, a_columns, _ = prepare(a, SQL)
send(a, 0, bytes([0x17]) + struct.pack("<IBI", a_id, 1, 1))  # flags 1: read-only cursor
first = read_packet(a)
assert first[0] != 0xFF, error(first)
for _ in range(a_columns + 1):
    read_packet(a)
while True:
    send(a, 0, bytes([0x1C]) + struct.pack("<II", a_id, 1))
    p = read_packet(a)
    while not (p[0] == 0xFE and len(p) < 9):
        assert p[0] != 0xFF, error(p)
        p = read_packet(a)
    if eof_status(p) & 0x80:  # LAST_ROW_SENT
        break

b = login(port)
send(b, 0, b"\x16" + SQL)
ok = read_packet(b)
assert ok[0] == 0, error(ok)
b_id, columns, params = struct.unpack("<IHH", ok[1:9])
statuses = []
for _ in range(columns + 1):
    p = read_packet(b)
    if p[0] == 0xFE:
        statuses.append("%04x" % eof_status(p))
print("prepare eof", " ".join(statuses))


def execute_plain(s, stmt_id):
    """The ids of the rows of a plain execute, and the status that ends them."""
    send(s, 0, bytes([0x17]) + struct.pack("<IBI", stmt_id, 0, 1))
    p = read_packet(s)
    assert p[0] != 0xFF, error(p)
    for _ in range(p[0]):
        read_packet(s)
    assert read_packet(s)[0] == 0xFE  # EOF after the columns
    ids = []
    while True:
        row = read_packet(s)
        if row[0] == 0xFE and len(row) < 9:
            return ids, "%04x" % eof_status(row)
        # A binary row whose first column is an INT: header, null bitmap, 4 bytes.
        assert row[0] == 0x00 and len(row) > 6, row.hex()
        ids.append(struct.unpack("<i", row[2:6])[0])


for run in range(2):
    print("execute", run + 1, *execute_plain(b, b_id))
if sys.argv[2:] == ["again"]:
    print("again", *execute_plain(a, a_id))
a.close()
b.close()
