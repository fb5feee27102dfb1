"""TLS through Sluice with pymysql and mysql-connector-python.

usage: tls_clients.py PORT USER PASSWORD CA
Prints one line per client: name, the TLS version it negotiated, and the menus count.
"""
import ssl
import sys

import mysql.connector
import pymysql

port, user, password, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password,
                       database="shop", ssl={"ca": ca})
with conn.cursor() as cur:
    cur.execute("SELECT COUNT(*) FROM menus")
    count = cur.fetchone()[0]
print("pymysql", conn._sock.version(), count)
conn.close()

conn = mysql.connector.connect(host="127.0.0.1", port=port, user=user, password=password,
                               database="shop", ssl_ca=ca, ssl_verify_cert=True,
                               use_pure=True)
cur = conn.cursor()
cur.execute("SELECT COUNT(*) FROM menus")
count = cur.fetchone()[0]
print("mysql-connector", conn._socket.sock.version(), count)
conn.close()
