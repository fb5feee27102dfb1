"""Prints the server version a client sees in the greeting, and the greeting's
authentication plugin, as PyMySQL reads them.

usage: server_info.py PORT
"""
import sys

import pymysql

c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="app",
                    password="app-password", database="shop", ssl_disabled=True)
print(c.get_server_info(), c._auth_plugin_name)
c.close()
