"""boto3 against `nimbus serve --data DIR --s3-port 0`: a table exported to
a bucket of the same server, the export polled with describe_export until
COMPLETED and listed, imported back into a new table, the import described
and listed (by hand and with its paginator's tokens), and every
description still there after the server restarts.

Run by tests/boto3/run.sh (NIMBUS_BIN names the server binary).
"""

import os
import re
import subprocess
import tempfile
import unittest

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from test_endpoint import client

BINARY = os.environ["NIMBUS_BIN"]
# The S3 endpoint checks signatures only against configured users.
S3_USER = ("AKIDEXPORTS", "exports-secret")
# How many times a poller asks before giving up (nimbus finishes exports
# within the call, so the first answer is already final).
POLLS_MAX = 10


class Server:
    """`nimbus serve --data DIR --port 0 --s3-port 0`: DynamoDB and S3 on
    one database."""

    def __init__(self, data):
        self.process = subprocess.Popen(
            [
                BINARY, "serve", "--data", data, "--port", "0", "--quiet",
                "--s3-port", "0", "--s3-access-key", f"{S3_USER[0]}:{S3_USER[1]}",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        urls = {}
        for _ in range(2):
            line = self.process.stderr.readline()
            match = re.search(r"serving (DynamoDB|S3) on (http://[0-9.]+:[0-9]+)", line)
            if match:
                urls[match.group(1)] = match.group(2)
        if set(urls) != {"DynamoDB", "S3"}:
            self.process.kill()
            raise RuntimeError(f"server did not start: {urls!r}")
        self.url = urls["DynamoDB"]
        self.s3_url = urls["S3"]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stderr.close()


def s3_client(url):
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=S3_USER[0],
        aws_secret_access_key=S3_USER[1],
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def error_code(raised):
    return raised.exception.response["Error"]["Code"]


class ExportsAndImports(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.server = Server(self.dir.name)
        # A cleanup, not tearDown: it runs even when setUp fails, so no
        # server outlives the test (the test may replace self.server).
        self.addCleanup(lambda: self.server.stop())
        self.ddb = client(self.server.url)
        s3_client(self.server.s3_url).create_bucket(Bucket="exports")
        self.ddb.create_table(
            TableName="Orders",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(25):
            self.ddb.put_item(
                TableName="Orders",
                Item={"id": {"S": f"o{n}"}, "total": {"N": str(n * 3)}},
            )
        self.table_arn = self.ddb.describe_table(TableName="Orders")["Table"]["TableArn"]

    def poll_export(self, arn):
        for _ in range(POLLS_MAX):
            description = self.ddb.describe_export(ExportArn=arn)["ExportDescription"]
            if description["ExportStatus"] != "IN_PROGRESS":
                return description
        self.fail(f"export {arn} never finished")

    def test_export_poll_list_import_describe_list_and_restart(self):
        ddb = self.ddb
        started = ddb.export_table_to_point_in_time(
            TableArn=self.table_arn, S3Bucket="exports", S3Prefix="nightly",
            ClientToken="nightly-2026-11-22",
        )["ExportDescription"]
        export = self.poll_export(started["ExportArn"])
        self.assertEqual(export["ExportStatus"], "COMPLETED")
        self.assertEqual(export["ItemCount"], 25)
        self.assertEqual(export["ExportType"], "FULL_EXPORT")
        self.assertEqual(export["TableArn"], self.table_arn)
        # Timestamps arrive as datetimes, parsed by botocore from numbers.
        self.assertLessEqual(export["StartTime"], export["EndTime"])

        # The same client token and parameters: the same export.
        again = ddb.export_table_to_point_in_time(
            TableArn=self.table_arn, S3Bucket="exports", S3Prefix="nightly",
            ClientToken="nightly-2026-11-22",
        )["ExportDescription"]
        self.assertEqual(again["ExportArn"], export["ExportArn"])
        with self.assertRaises(ClientError) as raised:
            ddb.export_table_to_point_in_time(
                TableArn=self.table_arn, S3Bucket="exports", S3Prefix="other",
                ClientToken="nightly-2026-11-22",
            )
        self.assertEqual(error_code(raised), "ExportConflictException")
        second = ddb.export_table_to_point_in_time(
            TableArn=self.table_arn, S3Bucket="exports"
        )["ExportDescription"]

        listed = ddb.list_exports(TableArn=self.table_arn, MaxResults=1)
        self.assertEqual(len(listed["ExportSummaries"]), 1)
        rest = ddb.list_exports(TableArn=self.table_arn, NextToken=listed["NextToken"])
        arns = {s["ExportArn"] for s in listed["ExportSummaries"] + rest["ExportSummaries"]}
        self.assertEqual(arns, {export["ExportArn"], second["ExportArn"]})
        self.assertNotIn("NextToken", rest)

        data = export["ExportManifest"].replace("manifest-summary.json", "data/")
        imports = []
        for table in ("OrdersCopy", "OrdersCopy2"):
            imported = ddb.import_table(
                S3BucketSource={"S3Bucket": "exports", "S3KeyPrefix": data},
                InputFormat="DYNAMODB_JSON",
                InputCompressionType="GZIP",
                TableCreationParameters={
                    "TableName": table,
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                    "BillingMode": "PAY_PER_REQUEST",
                },
            )["ImportTableDescription"]
            imports.append(imported)
        imported = imports[0]
        described = ddb.describe_import(ImportArn=imported["ImportArn"])["ImportTableDescription"]
        self.assertEqual(described["ImportStatus"], "COMPLETED")
        self.assertEqual(described["ImportedItemCount"], 25)
        self.assertEqual(described["ErrorCount"], 0)
        self.assertEqual(described["TableCreationParameters"]["TableName"], "OrdersCopy")
        self.assertEqual(described["S3BucketSource"]["S3Bucket"], "exports")
        item = ddb.get_item(TableName="OrdersCopy", Key={"id": {"S": "o7"}})["Item"]
        self.assertEqual(item["total"], {"N": "21"})

        # botocore checks ListImports' NextToken pattern and length itself.
        page = ddb.list_imports(PageSize=1)
        self.assertEqual(len(page["ImportSummaryList"]), 1)
        rest = ddb.list_imports(PageSize=1, NextToken=page["NextToken"])
        arns = {s["ImportArn"] for s in page["ImportSummaryList"] + rest["ImportSummaryList"]}
        self.assertEqual(arns, {i["ImportArn"] for i in imports})
        only = ddb.list_imports(TableArn=imported["TableArn"])["ImportSummaryList"]
        self.assertEqual([s["ImportArn"] for s in only], [imported["ImportArn"]])

        with self.assertRaises(ClientError) as raised:
            ddb.describe_export(ExportArn=export["ExportArn"] + "0")
        self.assertEqual(error_code(raised), "ExportNotFoundException")
        with self.assertRaises(ClientError) as raised:
            ddb.describe_import(ImportArn=imported["ImportArn"] + "0")
        self.assertEqual(error_code(raised), "ImportNotFoundException")

        # Descriptions are durable: a restarted server still has them.
        self.server.stop()
        self.server = Server(self.dir.name)
        self.ddb = ddb = client(self.server.url)
        self.assertEqual(
            ddb.describe_export(ExportArn=export["ExportArn"])["ExportDescription"],
            export,
        )
        after = ddb.describe_import(ImportArn=imported["ImportArn"])["ImportTableDescription"]
        self.assertEqual(after, described)
        self.assertEqual(len(ddb.list_exports()["ExportSummaries"]), 2)

    def test_an_import_of_a_missing_bucket_is_failed_and_listed(self):
        failed = self.ddb.import_table(
            S3BucketSource={"S3Bucket": "no-such-bucket"},
            InputFormat="CSV",
            TableCreationParameters={
                "TableName": "Never",
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
        )["ImportTableDescription"]
        self.assertEqual(failed["ImportStatus"], "FAILED")
        self.assertEqual(failed["FailureCode"], "S3NoSuchBucket")
        summaries = self.ddb.list_imports()["ImportSummaryList"]
        self.assertEqual([s["ImportStatus"] for s in summaries], ["FAILED"])
        # botocore checks only the minimum; the server refuses 26.
        with self.assertRaises(ClientError) as raised:
            self.ddb.list_exports(MaxResults=26)
        self.assertEqual(error_code(raised), "ValidationException")


if __name__ == "__main__":
    unittest.main()
