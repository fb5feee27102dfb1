"""IAM auth tokens (boto3 generate_db_auth_token, credentials from the environment) with
other clients and transports.

usage: iam_clients.py PORT USER REGION CA
Prints one line per case: the client and what it got (the rows' count, or the error).
"""
import socket
import struct
import sys
import time

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

# A client that sends the token in a clear-password handshake without TLS: 3159, and the
# token, seen on the network, is refused later even over TLS.
def plaintext_clear_handshake(tok):
    from rawmysql import read_packet, send
    s = socket.create_connection(("127.0.0.1", port))
    read_packet(s)
    # PLUGIN_AUTH_LENENC_CLIENT_DATA: a token is longer than 250 bytes.
    caps = 0x1 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000 | 0x200000
    answer = tok.encode() + b"\0"
    send(s, 1, struct.pack("<IIB", caps, 1 << 24, 45) + b"\0" * 23 + user.encode() + b"\0"
         + b"\xfc" + struct.pack("<H", len(answer)) + answer + b"shop\0"
         + b"mysql_clear_password\0")
    p = read_packet(s)
    s.close()
    return struct.unpack("<H", p[1:3])[0] if p[0] == 0xFF else "accepted"


# Tokens are signed to the second: wait for one that differs from the token above, and
# afterwards, so that later tokens differ from this one.
time.sleep(1.1)
exposed = boto3.client("rds", region_name=region).generate_db_auth_token(
    DBHostname="127.0.0.1", Port=port, DBUsername=user, Region=region)
print("clear_plaintext", plaintext_clear_handshake(exposed))


def attempt(name, password):
    """Logs in over TLS with `password`; prints the name and what happened."""
    try:
        pymysql.connect(host="127.0.0.1", port=port, user=user, password=password,
                        database="shop", ssl={"ca": ca})
        print(name, "accepted")
    except pymysql.err.MySQLError as e:
        print(name, e.args[0])


attempt("exposed_over_tls", exposed)
# Re-encoded (parameters reordered, an escape in lower case) it is the same token.
base, query = exposed.split("/?", 1)
params = query.split("&")
reordered = base + "/?" + "&".join([params[1], params[0]] + params[2:]).replace("%2F", "%2f")
attempt("exposed_reencoded", reordered)
time.sleep(1.1)

# A token for another user, and a mangled one: 1045.
other = boto3.client("rds", region_name=region).generate_db_auth_token(
    DBHostname="127.0.0.1", Port=port, DBUsername="someone", Region=region)
attempt("other_user", other)
attempt("tampered", token[:-1] + ("0" if token[-1] != "0" else "1"))
