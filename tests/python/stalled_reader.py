"""A client that asks for a large result and then stops reading (a frozen Lambda).

usage: stalled_reader.py PORT
"""
import sys
import time

import pymysql
from pymysql.constants import COMMAND

conn = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="app",
                       password="app-password", database="shop", ssl_disabled=True)
conn._execute_command(COMMAND.COM_QUERY, "SELECT REPEAT('s', 1000000) FROM seq_1_to_200")
print("sent", flush=True)
time.sleep(30)
