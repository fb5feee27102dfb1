"""The user story's Lambda handler, run through Sluice with pymysql.

usage: lambda_handler.py PORT USER PASSWORD [--ssl-ca CA] [--count N]
Prints one JSON line per invocation: the rows of SELECT * FROM menus.
"""
import argparse
import json

import pymysql

p = argparse.ArgumentParser()
p.add_argument("port", type=int)
p.add_argument("user")
p.add_argument("password")
p.add_argument("--ssl-ca")
p.add_argument("--count", type=int, default=1)
a = p.parse_args()


def handler(event, context):
    kwargs = dict(host="127.0.0.1", port=a.port, user=a.user, password=a.password,
                  database="shop", charset="utf8mb4")
    if a.ssl_ca:
        kwargs["ssl"] = {"ca": a.ssl_ca}
    else:
        kwargs["ssl_disabled"] = True
    conn = pymysql.connect(**kwargs)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM menus")
            rows = cur.fetchall()
            cur.execute("SELECT @@ssl_cipher IS NOT NULL")  # runs on the backend; tolerated
            cur.fetchall()
        return {"rows": [list(r) for r in rows],
                "tls": bool(conn._sock and hasattr(conn._sock, "cipher"))}
    finally:
        conn.close()


for _ in range(a.count):
    print(json.dumps(handler({}, None), ensure_ascii=False))
