"""Connects with a driver's defaults (whatever it sends at connect time), reads one row.

usage: default_connect.py DRIVER PORT   (DRIVER: pymysql | mysql.connector)
"""
import importlib
import sys

driver, port = sys.argv[1], int(sys.argv[2])
m = importlib.import_module(driver)
kw = dict(host="127.0.0.1", port=port, user="app", password="app-password", database="shop")
if driver == "mysql.connector":
    kw["ssl_disabled"] = True
c = m.connect(**kw)
cur = c.cursor()
cur.execute("SELECT name FROM menus WHERE id = 4")
print(cur.fetchone()[0])
c.commit()
c.close()
