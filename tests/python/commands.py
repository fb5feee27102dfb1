"""Commands through Sluice and directly, with pymysql (a client without
CLIENT_SESSION_TRACK or CLIENT_DEPRECATE_EOF): OK info strings, COM_FIELD_LIST,
warnings. Prints one JSON object per target; the test compares them.

usage: commands.py PORT [PORT ...]   (user app, database shop)
"""
import json
import sys

import pymysql
from pymysql.constants import CLIENT, COMMAND


def run(port):
    conn = pymysql.connect(host="127.0.0.1", port=port, user="app", password="app-password",
                           database="shop", ssl_disabled=True, autocommit=True,
                           client_flag=CLIENT.MULTI_STATEMENTS)
    out = {}
    with conn.cursor() as cur:
        cur.execute("UPDATE menus SET price = price WHERE id <= 3")
        out["update_rows"] = cur.rowcount
        out["update_info"] = conn._result.message.decode()
        cur.execute("INSERT INTO items (owner, note) VALUES (7, 'a'), (7, 'b')")
        out["insert_info"] = conn._result.message.decode()
        out["insert_rows"] = cur.rowcount
        cur.execute("DELETE FROM items WHERE owner = 7")
        cur.execute("SELECT CAST('abc' AS SIGNED)")
        out["warning_count"] = conn._result.warning_count
        cur.execute("SELECT 1; SELECT 2")
        out["multi"] = [cur.fetchall()]
        cur.nextset()
        out["multi"].append(cur.fetchall())
    # COM_FIELD_LIST, through pymysql's packet layer (it has no public call for it).
    conn._execute_command(COMMAND.COM_FIELD_LIST, b"menus\0")
    names = []
    while True:
        pkt = conn._read_packet()
        if pkt.is_eof_packet():
            break
        # Column definition: catalog, schema, table, org_table, name, ...
        fields = [pkt.read_length_coded_string() for _ in range(5)]
        names.append(fields[4].decode())
    out["field_list"] = names
    conn.ping()
    conn.close()
    return out


for p in sys.argv[1:]:
    print(json.dumps(run(int(p)), default=list))
