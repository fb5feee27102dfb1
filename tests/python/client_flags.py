"""Connects with extra capability flags (PyMySQL's client_flag) and prints what they
change on the server: the session's sql_mode and wait_timeout, and whether a function
name followed by a space parses (`COUNT (*)`, which needs IGNORE_SPACE).

usage: client_flags.py PORT FLAGS
"""
import sys

import pymysql

port, flags = int(sys.argv[1]), int(sys.argv[2])
c = pymysql.connect(host="127.0.0.1", port=port, user="app", password="app-password",
                    database="shop", client_flag=flags, ssl_disabled=True)
cur = c.cursor()
cur.execute("SELECT @@sql_mode, @@wait_timeout")
print(cur.fetchone())
try:
    cur.execute("SELECT COUNT (*) FROM menus")
    print(cur.fetchone())
except pymysql.MySQLError as e:
    print("error", e.args[0])
c.close()
