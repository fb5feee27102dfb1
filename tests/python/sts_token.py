"""A token for Sluice's `sts` IAM mode, made the way aws-iam-authenticator makes EKS
tokens: assume a role, presign STS GetCallerIdentity with a signed header naming the
proxy, base64url it behind a prefix.

usage: sts_token.py STS_ENDPOINT AUDIENCE ROLE_ARN|- [--unsigned-audience]
With a role ARN the request is signed with credentials from AssumeRole at that
endpoint; with "-", with the environment's own credentials. Prints the token.
"""
import base64
import sys

import boto3

endpoint, audience, role_arn = sys.argv[1], sys.argv[2], sys.argv[3]
sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1")
if role_arn == "-":
    role = sts
else:
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="lambda-1")["Credentials"]
    role = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def add_audience(request, **kwargs):
    request.headers["x-sluice-server-id"] = audience


if "--unsigned-audience" not in sys.argv:
    role.meta.events.register("before-sign.sts.GetCallerIdentity", add_audience)
url = role.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60,
                                  HttpMethod="GET")
print("sluice-sts-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("="))
