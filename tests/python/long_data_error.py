"""COM_STMT_SEND_LONG_DATA has no response, so when Sluice cannot deliver it (here: no
backend free within connection_borrow_timeout) the error must come at the statement's
execute, and the connection must stay in step for the next command.

usage: long_data_error.py PORT      prints what the execute and a following query got
"""
import struct
import sys

import pymysql

from rawmysql import error, login, prepare, read_packet, send

port = int(sys.argv[1])
s = login(port)
stmt_id, _, params = prepare(s, b"SELECT LENGTH(?)")
assert params == 1

# Another client holds the only backend in a transaction.
holder = pymysql.connect(host="127.0.0.1", port=port, user="app", password="app-password",
                         database="shop")
holder.begin()
holder.cursor().execute("SELECT 1")

send(s, 0, bytes([0x18]) + struct.pack("<IH", stmt_id, 0) + b"x" * 1000)
# Execute: no NULLs, new types bound, one MYSQL_TYPE_BLOB parameter (its data came as long data).
send(s, 0, bytes([0x17]) + struct.pack("<IBI", stmt_id, 0, 1) + b"\0\x01" + b"\xfc\0")
p = read_packet(s)
executed = error(p) if p[0] == 0xFF else "result"
holder.commit()
holder.close()
send(s, 0, b"\x03SELECT 42")
p = read_packet(s)
assert p[0] != 0xFF, error(p)
read_packet(s)  # column definition
read_packet(s)  # EOF
row = read_packet(s)
print(executed, "|", row[1:].decode())
