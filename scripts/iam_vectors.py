"""Writes tests/fixtures/iam_tokens.json: RDS IAM auth tokens made by boto3's
generate_db_auth_token with a fixed clock and dummy keys, the golden vectors Sluice's
local verifier must accept (src/auth/iam, tests/iam_tokens.rs).

usage: .venv/bin/python scripts/iam_vectors.py
"""
import datetime
import json
import pathlib
from unittest import mock

import boto3

CLOCK = datetime.datetime(2026, 11, 20, 12, 0, 0, tzinfo=datetime.timezone.utc)
KEY_ID = "AKIDSLUICEEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSLUICEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+sluice/test=="

CASES = [
    # (name, host, port, user, region, session token)
    ("port_3306", "proxy.example.com", 3306, "app", "us-east-1", None),
    ("port_443", "proxy.example.com", 443, "app", "us-east-1", None),
    ("user_with_space_and_at", "proxy.example.com", 3306, "app user@x", "eu-west-1", None),
    ("session_token", "sluice.internal", 3306, "lambda", "us-east-1", SESSION_TOKEN),
]


def main():
    vectors = []
    for name, host, port, user, region, token in CASES:
        session = boto3.session.Session(
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            aws_session_token=token,
            region_name=region,
        )
        rds = session.client("rds")
        with mock.patch("botocore.auth.get_current_datetime", return_value=CLOCK):
            value = rds.generate_db_auth_token(host, port, user)
        vectors.append({"name": name, "host": host, "port": port, "user": user,
                        "region": region, "token": value})
    out = {
        "generator": f"boto3 {boto3.__version__} generate_db_auth_token",
        "clock": CLOCK.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET,
        "vectors": vectors,
    }
    path = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/iam_tokens.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {len(vectors)} vectors to {path}")


if __name__ == "__main__":
    main()
