"""Logs in again and again, from one source address, one attempt after the other, and
reports each attempt: the error code (or "ok") and the seconds it took.

usage: guess_passwords.py PORT BIND_ADDRESS USER ATTEMPTS PASSWORD...
  the passwords are tried in turn (the last one repeats); prints "CODE SECONDS" lines
"""
import sys
import time

import pymysql

port, bind, user, attempts = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
passwords = sys.argv[5:]
for i in range(attempts):
    password = passwords[min(i, len(passwords) - 1)]
    start = time.monotonic()
    try:
        conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password,
                               bind_address=bind, autocommit=None, connect_timeout=30)
        conn.close()
        code = "ok"
    except pymysql.err.MySQLError as e:
        code = str(e.args[0])
    print(code, f"{time.monotonic() - start:.3f}", flush=True)
