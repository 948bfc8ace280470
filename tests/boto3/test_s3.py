"""boto3 against `nimbus serve --s3-port`: the real AWS SDK for Python,
unmodified, pointed at the S3 endpoint. boto3 sends what every current SDK
sends (aws-chunked bodies with CRC32 trailers, SigV4, multipart through
the transfer manager) and validates what comes back.

Run by tests/boto3/run.sh, which installs boto3 into a venv under target/
and passes the server binary in NIMBUS_BIN.
"""

import datetime
import hashlib
import io
import os
import re
import subprocess
import unittest
import urllib.error
import urllib.request

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

BINARY = os.environ["NIMBUS_BIN"]
ALICE = ("AKIDALICE", "alice-secret")
BOB = ("AKIDBOB", "bob-secret")


class Server:
    """`nimbus serve --memory --port 0 --s3-port 0` with two S3 users."""

    def __init__(self):
        self.process = subprocess.Popen(
            [
                BINARY, "serve", "--memory", "--port", "0", "--quiet",
                "--s3-port", "0",
                "--s3-access-key", f"{ALICE[0]}:{ALICE[1]}:alice",
                "--s3-access-key", f"{BOB[0]}:{BOB[1]}:bob",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = None
        for _ in range(4):
            line = self.process.stderr.readline()
            match = re.search(r"serving S3 on (http://[0-9.]+:[0-9]+)", line)
            if match:
                self.url = match.group(1)
                break
        if self.url is None:
            self.process.kill()
            raise RuntimeError("the S3 endpoint did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stderr.close()


def s3_client(url, key=ALICE):
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def error_code(raised):
    return raised.exception.response["Error"]["Code"]


class S3Endpoint(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.s3 = s3_client(cls.server.url)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def bucket(self, name, **extra):
        self.s3.create_bucket(Bucket=name, **extra)
        return name

    def test_objects_round_trip_with_md5_etags_and_metadata(self):
        b = self.bucket("boto-objects")
        body = os.urandom(200_000)
        put = self.s3.put_object(Bucket=b, Key="dir/a.bin", Body=body,
                                 ContentType="application/x-test", Metadata={"k": "v"})
        self.assertEqual(put["ETag"].strip('"'), hashlib.md5(body).hexdigest())
        got = self.s3.get_object(Bucket=b, Key="dir/a.bin")
        self.assertEqual(got["Body"].read(), body)
        self.assertEqual(got["ContentType"], "application/x-test")
        self.assertEqual(got["Metadata"], {"k": "v"})
        ranged = self.s3.get_object(Bucket=b, Key="dir/a.bin", Range="bytes=10-19")
        self.assertEqual(ranged["Body"].read(), body[10:20])
        head = self.s3.head_object(Bucket=b, Key="dir/a.bin")
        self.assertEqual(head["ContentLength"], len(body))
        self.s3.copy_object(Bucket=b, Key="copy.bin", CopySource={"Bucket": b, "Key": "dir/a.bin"})
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=b, PaginationConfig={"PageSize": 1})
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        self.assertEqual(keys, ["copy.bin", "dir/a.bin"])
        listed = self.s3.list_objects_v2(Bucket=b, Delimiter="/")
        self.assertEqual([p["Prefix"] for p in listed["CommonPrefixes"]], ["dir/"])
        deleted = self.s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "copy.bin"}, {"Key": "dir/a.bin"}]})
        self.assertEqual(len(deleted["Deleted"]), 2)
        self.assertEqual(self.s3.list_objects_v2(Bucket=b)["KeyCount"], 0)

    def test_errors_are_the_modeled_ones(self):
        b = self.bucket("boto-errors")
        with self.assertRaises(ClientError) as raised:
            self.s3.get_object(Bucket=b, Key="missing")
        self.assertEqual(error_code(raised), "NoSuchKey")
        with self.assertRaises(ClientError) as raised:
            self.s3.get_object(Bucket="no-such-bucket-here", Key="x")
        self.assertEqual(error_code(raised), "NoSuchBucket")
        self.s3.put_object(Bucket=b, Key="k", Body=b"0123")
        with self.assertRaises(ClientError) as raised:
            self.s3.get_object(Bucket=b, Key="k", Range="bytes=10-20")
        self.assertEqual(error_code(raised), "InvalidRange")
        with self.assertRaises(ClientError) as raised:
            self.s3.put_object(Bucket=b, Key="k", Body=b"again", IfNoneMatch="*")
        self.assertEqual(error_code(raised), "PreconditionFailed")
        with self.assertRaises(ClientError) as raised:
            self.s3.delete_bucket(Bucket=b)
        self.assertEqual(error_code(raised), "BucketNotEmpty")

    def test_versioning_and_delete_markers(self):
        b = self.bucket("boto-versions")
        self.s3.put_object(Bucket=b, Key="before", Body=b"unversioned")
        self.s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
        self.assertEqual(self.s3.get_bucket_versioning(Bucket=b)["Status"], "Enabled")
        v1 = self.s3.put_object(Bucket=b, Key="k", Body=b"one")["VersionId"]
        self.s3.put_object(Bucket=b, Key="k", Body=b"two")
        marker = self.s3.delete_object(Bucket=b, Key="k")
        self.assertTrue(marker["DeleteMarker"])
        with self.assertRaises(ClientError) as raised:
            self.s3.get_object(Bucket=b, Key="k")
        self.assertEqual(raised.exception.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-delete-marker"), "true")
        old = self.s3.get_object(Bucket=b, Key="k", VersionId=v1)
        self.assertEqual(old["Body"].read(), b"one")
        listed = self.s3.list_object_versions(Bucket=b)
        self.assertEqual(len(listed["Versions"]), 3)
        self.assertEqual(len(listed["DeleteMarkers"]), 1)
        null = [v for v in listed["Versions"] if v["Key"] == "before"]
        self.assertEqual(null[0]["VersionId"], "null")
        self.s3.delete_object(Bucket=b, Key="k", VersionId=marker["VersionId"])
        self.assertEqual(self.s3.get_object(Bucket=b, Key="k")["Body"].read(), b"two")

    def test_multipart_through_the_transfer_manager(self):
        b = self.bucket("boto-multipart")
        body = os.urandom(11 * 1024 * 1024)
        config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
        self.s3.upload_fileobj(io.BytesIO(body), b, "big.bin", Config=config)
        head = self.s3.head_object(Bucket=b, Key="big.bin")
        parts = [body[i:i + 5 * 1024 * 1024] for i in range(0, len(body), 5 * 1024 * 1024)]
        expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
        self.assertEqual(head["ETag"].strip('"'), f"{expected}-{len(parts)}")
        out = io.BytesIO()
        self.s3.download_fileobj(b, "big.bin", out)
        self.assertEqual(out.getvalue(), body)
        upload = self.s3.create_multipart_upload(Bucket=b, Key="aborted")["UploadId"]
        self.s3.upload_part(Bucket=b, Key="aborted", UploadId=upload, PartNumber=1, Body=b"x")
        self.assertEqual(len(self.s3.list_parts(Bucket=b, Key="aborted", UploadId=upload)["Parts"]), 1)
        self.assertEqual(len(self.s3.list_multipart_uploads(Bucket=b)["Uploads"]), 1)
        self.s3.abort_multipart_upload(Bucket=b, Key="aborted", UploadId=upload)
        self.assertNotIn("Uploads", self.s3.list_multipart_uploads(Bucket=b))

    def test_presigned_urls(self):
        b = self.bucket("boto-presign")
        self.s3.put_object(Bucket=b, Key="doc", Body=b"shared")
        url = self.s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "doc"}, ExpiresIn=300)
        with urllib.request.urlopen(url) as answer:
            self.assertEqual(answer.read(), b"shared")
        # boto3 presigns with SigV2 unless told otherwise; SigV2 signs the
        # Content-Type urllib adds, SigV4 query signing signs only the host.
        v4 = boto3.client("s3", endpoint_url=self.server.url, region_name="us-east-1",
                          aws_access_key_id=ALICE[0], aws_secret_access_key=ALICE[1],
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        put_url = v4.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "up"}, ExpiresIn=300)
        self.assertIn("X-Amz-Signature", put_url)
        request = urllib.request.Request(put_url, data=b"uploaded", method="PUT")
        with urllib.request.urlopen(request) as answer:
            self.assertEqual(answer.status, 200)
        self.assertEqual(self.s3.get_object(Bucket=b, Key="up")["Body"].read(), b"uploaded")
        with self.assertRaises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(url.replace("doc", "dox"))
        self.assertEqual(raised.exception.code, 403)

    def test_object_lock_and_governance_bypass(self):
        b = self.bucket("boto-lock", ObjectLockEnabledForBucket=True)
        self.s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        })
        config = self.s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]
        self.assertEqual(config["Rule"]["DefaultRetention"]["Days"], 1)
        version = self.s3.put_object(Bucket=b, Key="locked", Body=b"keep")["VersionId"]
        retention = self.s3.get_object_retention(Bucket=b, Key="locked", VersionId=version)["Retention"]
        self.assertEqual(retention["Mode"], "GOVERNANCE")
        with self.assertRaises(ClientError) as raised:
            self.s3.delete_object(Bucket=b, Key="locked", VersionId=version)
        self.assertEqual(error_code(raised), "AccessDenied")
        self.s3.put_object_legal_hold(Bucket=b, Key="locked", VersionId=version, LegalHold={"Status": "ON"})
        self.assertEqual(self.s3.get_object_legal_hold(Bucket=b, Key="locked", VersionId=version)["LegalHold"]["Status"], "ON")
        self.s3.put_object_legal_hold(Bucket=b, Key="locked", VersionId=version, LegalHold={"Status": "OFF"})
        refused = self.s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "locked", "VersionId": version}]})
        self.assertEqual(refused["Errors"][0]["Code"], "AccessDenied")
        bypassed = self.s3.delete_objects(Bucket=b, BypassGovernanceRetention=True,
                                          Delete={"Objects": [{"Key": "locked", "VersionId": version}]})
        self.assertEqual(bypassed["Deleted"][0]["VersionId"], version)

    def test_lifecycle_tagging_and_notifications(self):
        b = self.bucket("boto-config")
        self.s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [{
            "ID": "expire-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
            "Expiration": {"Days": 30},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        }]})
        rules = self.s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
        self.assertEqual(rules[0]["ID"], "expire-logs")
        self.assertEqual(rules[0]["Expiration"]["Days"], 30)
        self.s3.put_object(Bucket=b, Key="t", Body=b"x", Tagging="team=blue")
        self.assertEqual(self.s3.get_object_tagging(Bucket=b, Key="t")["TagSet"], [{"Key": "team", "Value": "blue"}])
        self.s3.put_object_tagging(Bucket=b, Key="t", Tagging={"TagSet": [{"Key": "team", "Value": "red"}]})
        self.assertEqual(self.s3.get_object_tagging(Bucket=b, Key="t")["TagSet"][0]["Value"], "red")
        self.s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "cost", "Value": "42"}]})
        self.assertEqual(self.s3.get_bucket_tagging(Bucket=b)["TagSet"], [{"Key": "cost", "Value": "42"}])
        self.s3.put_bucket_notification_configuration(Bucket=b, NotificationConfiguration={
            "QueueConfigurations": [{
                "Id": "uploads", "QueueArn": "arn:aws:sqs:us-east-1:000000000000:uploads",
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"}]}},
            }],
        })
        queues = self.s3.get_bucket_notification_configuration(Bucket=b)["QueueConfigurations"]
        self.assertEqual(queues[0]["QueueArn"], "arn:aws:sqs:us-east-1:000000000000:uploads")

    def test_other_users_and_bad_signatures_are_refused(self):
        b = self.bucket("boto-private")
        bob = s3_client(self.server.url, BOB)
        with self.assertRaises(ClientError) as raised:
            bob.list_objects_v2(Bucket=b)
        self.assertEqual(error_code(raised), "AccessDenied")
        forged = s3_client(self.server.url, (ALICE[0], "wrong"))
        with self.assertRaises(ClientError) as raised:
            forged.list_buckets()
        self.assertEqual(error_code(raised), "SignatureDoesNotMatch")
        names = [x["Name"] for x in bob.list_buckets()["Buckets"]]
        self.assertNotIn(b, names)


if __name__ == "__main__":
    unittest.main(verbosity=2)
