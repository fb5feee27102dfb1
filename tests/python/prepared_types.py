"""Prepared statements with every common MySQL type, NULLs, and a large blob sent with
COM_STMT_SEND_LONG_DATA (Connector/Python's pure implementation sends file-like
parameters that way). Prints what it reads back, exactly.

usage: prepared_types.py PORT TABLE
"""
import datetime
import decimal
import hashlib
import io
import sys

import mysql.connector

port, table = int(sys.argv[1]), sys.argv[2]
c = mysql.connector.connect(host="127.0.0.1", port=port, user="app", password="app-password",
                            database="shop", ssl_disabled=True, use_pure=True)
plain = c.cursor()
plain.execute(f"DROP TABLE IF EXISTS {table}")
plain.execute(f"""CREATE TABLE {table} (
    id INT PRIMARY KEY, ti TINYINT, si SMALLINT, mi MEDIUMINT, i INT, bi BIGINT,
    ubi BIGINT UNSIGNED, f FLOAT, d DOUBLE, de DECIMAL(20,6), dt DATE, tm TIME(3),
    dtm DATETIME(6), ts TIMESTAMP(6) NULL, ch CHAR(10), vc VARCHAR(100),
    tx MEDIUMTEXT, bl LONGBLOB, en ENUM('a','b'), n INT NULL) CHARACTER SET utf8mb4""")
ps = c.cursor(prepared=True)
insert = f"INSERT INTO {table} VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
rows = [
    (1, -128, -32768, -8388608, -2147483648, -9223372036854775808, 18446744073709551615,
     1.5, 2.25, decimal.Decimal("12345678901234.123456"), datetime.date(2026, 11, 25),
     # TIME's upper bound. (Connector/Python's encoding of negative TIMEs beyond a day is
     # refused by MySQL 9 with 1690 even directly, so the negative one is in row 3.)
     datetime.timedelta(hours=838, minutes=59, seconds=59),
     datetime.datetime(2026, 11, 25, 1, 2, 3, 456789),
     datetime.datetime(2038, 1, 19, 3, 14, 7, 999999), "定食", "ラーメン 🍜",
     "t" * 70000, b"\x00\xff" * 10, "b", None),
    (2, None, None, None, None, None, None, None, None, None, None, None, None, None,
     None, None, None, None, None, None),
    # The blob is a file-like parameter: sent in pieces with COM_STMT_SEND_LONG_DATA.
    (3, 127, 32767, 8388607, 2147483647, 9223372036854775807, 0, -0.0, 1e308,
     decimal.Decimal("-0.000001"), datetime.date(1000, 1, 1),
     -datetime.timedelta(hours=1, minutes=2, seconds=3, microseconds=4000),
     datetime.datetime(1000, 1, 1), None, "", "", "", io.BytesIO(b"blob" * 1_500_000),
     "a", 7),
]
for row in rows:
    ps.execute(insert, row)
c.commit()
select = f"SELECT * FROM {table} WHERE id = ?"
for row_id in (1, 2, 3, 2, 1):
    ps.execute(select, (row_id,))
    for row in ps.fetchall():
        shown = []
        for v in row:
            if isinstance(v, (bytes, bytearray)) and len(v) > 64:
                shown.append(f"<{len(v)} bytes sha256 {hashlib.sha256(v).hexdigest()}>")
            elif isinstance(v, str) and len(v) > 64:
                shown.append(f"<{len(v)} chars sha256 {hashlib.sha256(v.encode()).hexdigest()}>")
            else:
                shown.append(repr(v))
        print(row_id, ", ".join(shown))
# Errors come back as the server sends them.
try:
    ps.execute(f"SELECT nope FROM {table} WHERE id = ?", (1,))
except mysql.connector.Error as e:
    print("error", e.errno, e.sqlstate, e.msg)
c.close()
