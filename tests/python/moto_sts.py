"""moto's STS backend alone on a port, for Sluice's `sts` IAM mode. (moto_server sends an
unsigned GET such as a presigned GetCallerIdentity to its S3 backend; this app is STS
only.) moto does not check signatures: it answers GetCallerIdentity for a presigned
request with its default caller, arn:aws:sts::123456789012:user/moto.

usage: moto_sts.py PORT
"""
import sys

from moto.moto_server.werkzeug_app import create_backend_app
from werkzeug.serving import run_simple

run_simple("127.0.0.1", int(sys.argv[1]), create_backend_app("sts"), threaded=True)
