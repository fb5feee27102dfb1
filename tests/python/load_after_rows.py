"""Runs, as one multi-statement, a SELECT, then LOAD DATA LOCAL INFILE of FILE, then a
count, with PyMySQL (classic EOF packets: through Sluice the SELECT's result gets EOFs
put in, so the packets of the file must be renumbered back for the server), and prints
each result.

usage: load_after_rows.py PORT FILE
"""
import sys

import pymysql
from pymysql.constants import CLIENT

port, path = int(sys.argv[1]), sys.argv[2]
c = pymysql.connect(host="127.0.0.1", port=port, user="app", password="app-password",
                    database="shop", local_infile=True,
                    client_flag=CLIENT.MULTI_STATEMENTS, ssl_disabled=True)
cur = c.cursor()
cur.execute(
    "SELECT 'before'; "
    f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE items (owner, note); "
    "SELECT COUNT(*), SUM(owner) FROM items")
results = []
while True:
    results.append((cur.rowcount, cur.fetchall()))
    if not cur.nextset():
        break
cur.execute("DELETE FROM items")
c.commit()
print(results)
