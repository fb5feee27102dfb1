"""IAM auth tokens (boto3 generate_db_auth_token, credentials from the environment) with
other clients and transports.

usage: iam_clients.py PORT USER REGION CA
Prints one line per case: the client and what it got (the rows' count, or the error).
"""
import sys

import boto3
import mysql.connector
import pymysql

port, user, region, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
token = boto3.client("rds", region_name=region).generate_db_auth_token(
    DBHostname="127.0.0.1", Port=port, DBUsername=user, Region=region)


def count(conn):
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) FROM menus")
    n = cur.fetchone()[0]
    conn.close()
    return n


# mysql-connector-python sends the token in its handshake with the clear-password plugin.
c = mysql.connector.connect(host="127.0.0.1", port=port, user=user, password=token,
                            database="shop", auth_plugin="mysql_clear_password",
                            ssl_ca=ca, ssl_verify_cert=True, use_pure=True)
print("connector", count(c))

# Without TLS the token is never sent: 3159.
try:
    pymysql.connect(host="127.0.0.1", port=port, user=user, password=token,
                    database="shop", ssl_disabled=True)
    print("plaintext accepted")
except pymysql.err.MySQLError as e:
    print("plaintext", e.args[0])

# A token for another user, and a mangled one: 1045.
other = boto3.client("rds", region_name=region).generate_db_auth_token(
    DBHostname="127.0.0.1", Port=port, DBUsername="someone", Region=region)
for name, bad in [("other_user", other), ("tampered", token[:-1] + ("0" if token[-1] != "0" else "1"))]:
    try:
        pymysql.connect(host="127.0.0.1", port=port, user=user, password=bad,
                        database="shop", ssl={"ca": ca})
        print(name, "accepted")
    except pymysql.err.MySQLError as e:
        print(name, e.args[0])
