"""Logs in with the given collation id in the handshake and nothing else (no SET NAMES),
then prints the connection's character set and collation twice, with a pause between
(through Sluice, other clients use the backends meanwhile).

usage: handshake_charset.py PORT COLLATION_ID
"""
import sys
import time

from rawmysql import login, query_row

port, collation = int(sys.argv[1]), int(sys.argv[2])
s = login(port, collation)
sql = ("SELECT @@character_set_client, @@character_set_connection, "
       "@@character_set_results, @@collation_connection")
first = query_row(s, sql)
time.sleep(0.3)
print(first, query_row(s, sql))
