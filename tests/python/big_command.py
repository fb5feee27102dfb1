"""Sends one COM_QUERY of about SIZE bytes (several packets past 16 MiB) and prints what
came back: "ok", or the error code.

usage: big_command.py PORT USER PASSWORD SIZE
"""
import sys

import pymysql

port, user, password, size = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password,
                       max_allowed_packet=1 << 30, autocommit=None)
try:
    with conn.cursor() as cur:
        cur.execute("SELECT LENGTH('" + "x" * (size - 25) + "')")
        cur.fetchall()
    print("ok")
except pymysql.err.MySQLError as e:
    print(e.args[0])
