"""Opens a transaction through Sluice, locks a row, writes, then dies without a goodbye
(no COM_QUIT, no ROLLBACK: the process exits and the kernel closes the socket).

usage: vanish.py PORT
"""
import os
import sys

import pymysql

c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="app",
                    password="app-password", database="shop", ssl_disabled=True)
cur = c.cursor()
cur.execute("BEGIN")
cur.execute("SELECT * FROM menus WHERE id = 1 FOR UPDATE")
cur.execute("INSERT INTO items (owner, note) VALUES (7, 'vanished')")
print("locked", flush=True)
os._exit(0)
