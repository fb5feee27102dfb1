"""Logs in over TLS and pings, nothing else (no statement, so no backend is needed).

usage: ping_login.py PORT USER PASSWORD CA     prints "ok" or the error code
"""
import sys

import pymysql

port, user, password, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
try:
    # autocommit=None: pymysql sends no SET after logging in.
    conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password,
                           ssl={"ca": ca}, autocommit=None)
    conn.ping(reconnect=False)
    conn.close()
    print("ok")
except pymysql.err.MySQLError as e:
    print(e.args[0])
