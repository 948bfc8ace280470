"""boto3 against `nimbus serve`: the real AWS SDK for Python, unmodified,
pointed at the endpoint (botocore also checks every answer's x-amz-crc32).

Run by tests/boto3/run.sh, which installs boto3 into a venv under target/
and passes the server binary in NIMBUS_BIN.
"""

import os
import re
import subprocess
import unittest
from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Attr, Key
from botocore.config import Config
from botocore.exceptions import ClientError

BINARY = os.environ["NIMBUS_BIN"]


class Server:
    """A `nimbus serve --memory --port 0` child process (`--data DIR` with
    `data`)."""

    def __init__(self, *extra, data=None):
        storage = ["--data", data] if data else ["--memory"]
        self.process = subprocess.Popen(
            [BINARY, "serve", *storage, "--port", "0", "--quiet", *extra],
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stderr.readline()
        match = re.search(r"http://([0-9.]+:[0-9]+)", line)
        if not match:
            self.process.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        self.url = f"http://{match.group(1)}"

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stderr.close()


def client(url, key="fake", secret="fake"):
    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


class Endpoint(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.ddb = client(cls.server.url)
        cls.resource = boto3.resource(
            "dynamodb",
            endpoint_url=cls.server.url,
            region_name="us-east-1",
            aws_access_key_id="fake",
            aws_secret_access_key="fake",
        )
        cls.ddb.create_table(
            TableName="Music",
            KeySchema=[
                {"AttributeName": "Artist", "KeyType": "HASH"},
                {"AttributeName": "Song", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "Artist", "AttributeType": "S"},
                {"AttributeName": "Song", "AttributeType": "S"},
                {"AttributeName": "Year", "AttributeType": "N"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "ByYear",
                    "KeySchema": [{"AttributeName": "Year", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": "team", "Value": "audio"}],
        )
        cls.ddb.get_waiter("table_exists").wait(TableName="Music")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_table_is_described_and_tagged(self):
        table = self.ddb.describe_table(TableName="Music")["Table"]
        self.assertEqual(table["TableStatus"], "ACTIVE")
        self.assertEqual(table["GlobalSecondaryIndexes"][0]["IndexStatus"], "ACTIVE")
        tags = self.ddb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
        self.assertEqual(tags, [{"Key": "team", "Value": "audio"}])
        self.assertIn("Music", self.ddb.list_tables()["TableNames"])
        self.assertEqual(self.ddb.describe_limits()["TableMaxReadCapacityUnits"], 40000)

    def test_resource_api_round_trip(self):
        table = self.resource.Table("Music")
        table.put_item(Item={"Artist": "Acme", "Song": "Hi", "Year": 2020, "Plays": 1, "Tags": {"a", "b"}})
        item = table.get_item(Key={"Artist": "Acme", "Song": "Hi"})["Item"]
        self.assertEqual(item["Plays"], Decimal(1))
        self.assertEqual(item["Tags"], {"a", "b"})
        updated = table.update_item(
            Key={"Artist": "Acme", "Song": "Hi"},
            UpdateExpression="SET Plays = Plays + :one",
            ExpressionAttributeValues={":one": 1},
            ReturnValues="UPDATED_NEW",
        )
        self.assertEqual(updated["Attributes"], {"Plays": Decimal(2)})
        by_year = table.query(IndexName="ByYear", KeyConditionExpression=Key("Year").eq(2020))
        self.assertEqual(by_year["Count"], 1)

    def test_conditional_failure_is_the_modeled_exception(self):
        table = self.resource.Table("Music")
        table.put_item(Item={"Artist": "Cond", "Song": "One"})
        with self.assertRaises(self.ddb.exceptions.ConditionalCheckFailedException) as caught:
            table.put_item(
                Item={"Artist": "Cond", "Song": "One"},
                ConditionExpression=Attr("Artist").not_exists(),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        self.assertEqual(caught.exception.response["Item"]["Artist"], {"S": "Cond"})
        self.assertEqual(len(caught.exception.response["ResponseMetadata"]["RequestId"]), 52)

    def test_query_pages_with_the_paginator(self):
        table = self.resource.Table("Music")
        with table.batch_writer() as batch:
            for i in range(30):
                batch.put_item(Item={"Artist": "Many", "Song": f"s{i:02}", "N": i})
        paginator = self.ddb.get_paginator("query")
        pages = list(
            paginator.paginate(
                TableName="Music",
                KeyConditionExpression="Artist = :a",
                ExpressionAttributeValues={":a": {"S": "Many"}},
                PaginationConfig={"PageSize": 7},
            )
        )
        self.assertEqual(sum(page["Count"] for page in pages), 30)
        self.assertEqual(len(pages), 5)
        filtered = table.scan(FilterExpression=Attr("N").gte(25))
        self.assertEqual(filtered["Count"], 5)

    def test_legacy_key_conditions(self):
        self.resource.Table("Music").put_item(Item={"Artist": "Old", "Song": "x"})
        page = self.ddb.query(
            TableName="Music",
            KeyConditions={"Artist": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "Old"}]}},
            AttributesToGet=["Song"],
        )
        self.assertEqual(page["Items"], [{"Song": {"S": "x"}}])

    def test_transaction_cancellation_reasons(self):
        self.ddb.put_item(TableName="Music", Item={"Artist": {"S": "Tx"}, "Song": {"S": "a"}})
        with self.assertRaises(self.ddb.exceptions.TransactionCanceledException) as caught:
            self.ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "Music", "Item": {"Artist": {"S": "Tx"}, "Song": {"S": "b"}}}},
                    {
                        "ConditionCheck": {
                            "TableName": "Music",
                            "Key": {"Artist": {"S": "Tx"}, "Song": {"S": "a"}},
                            "ConditionExpression": "attribute_not_exists(Artist)",
                        }
                    },
                ]
            )
        reasons = caught.exception.response["CancellationReasons"]
        self.assertEqual([r["Code"] for r in reasons], ["None", "ConditionalCheckFailed"])
        got = self.ddb.transact_get_items(
            TransactItems=[{"Get": {"TableName": "Music", "Key": {"Artist": {"S": "Tx"}, "Song": {"S": "b"}}}}]
        )
        self.assertEqual(got["Responses"], [{}])

    def test_validation_and_missing_table_errors(self):
        with self.assertRaises(self.ddb.exceptions.ResourceNotFoundException):
            self.ddb.get_item(TableName="Nope", Key={"k": {"S": "v"}})
        with self.assertRaises(ClientError) as caught:
            self.ddb.put_item(TableName="Music", Item={"Artist": {"S": "only"}})
        error = caught.exception.response["Error"]
        self.assertEqual(error["Code"], "ValidationException")
        self.assertEqual(error["Message"], "One or more parameter values were invalid: Missing the key Song in the item")
        self.assertEqual(caught.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)


class Signatures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("--credentials", "AKIDNIMBUS:s3cret")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_configured_key_is_verified(self):
        self.assertEqual(client(self.server.url, "AKIDNIMBUS", "s3cret").list_tables()["TableNames"], [])
        for key, secret, code in [
            ("AKIDNIMBUS", "wrong", "InvalidSignatureException"),
            ("UNKNOWN", "s3cret", "UnrecognizedClientException"),
        ]:
            with self.assertRaises(ClientError) as caught:
                client(self.server.url, key, secret).list_tables()
            self.assertEqual(caught.exception.response["Error"]["Code"], code)


if __name__ == "__main__":
    unittest.main(verbosity=2)
