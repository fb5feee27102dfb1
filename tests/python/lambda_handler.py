"""The user story's Lambda handler, run through Sluice with pymysql.

usage: lambda_handler.py PORT USER PASSWORD [--ssl-ca CA] [--count N] [--iam-region R]
Prints one JSON line per invocation: the rows of SELECT * FROM menus. With --iam-region,
the password is an IAM auth token made by boto3 at each invocation, as in a Lambda that
connects to RDS Proxy, signed with the key pair in SLUICE_KEY_ID / SLUICE_KEY_SECRET
(Sluice's local mode); PASSWORD is ignored.
"""
import argparse
import json
import os

import boto3
import pymysql

p = argparse.ArgumentParser()
p.add_argument("port", type=int)
p.add_argument("user")
p.add_argument("password")
p.add_argument("--ssl-ca")
p.add_argument("--count", type=int, default=1)
p.add_argument("--iam-region")
a = p.parse_args()


def handler(event, context):
    password = a.password
    if a.iam_region:
        # Signed with a key pair Sluice knows (local mode), not the execution role.
        rds = boto3.client("rds", region_name=a.iam_region,
                           aws_access_key_id=os.environ["SLUICE_KEY_ID"],
                           aws_secret_access_key=os.environ["SLUICE_KEY_SECRET"])
        password = rds.generate_db_auth_token(DBHostname="127.0.0.1", Port=a.port,
                                              DBUsername=a.user, Region=a.iam_region)
    kwargs = dict(host="127.0.0.1", port=a.port, user=a.user, password=password,
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
