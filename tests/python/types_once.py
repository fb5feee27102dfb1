"""A client that sends parameter types only with a statement's first execute (as
libmysqlclient does after one mysql_stmt_bind_param). Between its two executes another
client takes the backend it used, so through Sluice the second execute runs on a backend
that has never seen the types.

usage: types_once.py PORT      prints the two results
"""
import struct
import sys

import pymysql

from rawmysql import error, login, prepare, read_packet, send

port = int(sys.argv[1])
s = login(port)
stmt_id, _, _ = prepare(s, b"SELECT ? + 1")


def execute(with_types, value):
    body = bytes([0x17]) + struct.pack("<IBI", stmt_id, 0, 1) + b"\0"  # null bitmap
    body += b"\1" + struct.pack("<BB", 8, 0) if with_types else b"\0"  # LONGLONG
    send(s, 0, body + struct.pack("<q", value))
    first = read_packet(s)
    if first[0] == 0xFF:
        return error(first)
    read_packet(s)  # column definition
    read_packet(s)  # EOF
    row = read_packet(s)
    read_packet(s)  # EOF
    return str(struct.unpack("<q", row[2:10])[0])


first = execute(True, 41)
holder = pymysql.connect(host="127.0.0.1", port=port, user="app", password="app-password",
                         database="shop")
cur = holder.cursor()
cur.execute("BEGIN")
cur.execute("SELECT 1")
second = execute(False, 99)
holder.rollback()
holder.close()
print(first, second)
