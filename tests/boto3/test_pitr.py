"""boto3 against `nimbus serve --data DIR`: point-in-time recovery
(update/describe continuous backups, restore to a time and to the latest
restorable time) through the real AWS SDK for Python.

Run by tests/boto3/run.sh (NIMBUS_BIN names the server binary).
"""

import tempfile
import unittest

from botocore.exceptions import ClientError

from test_endpoint import Server, client


class PointInTimeRecovery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.server = Server(data=cls.dir.name)
        cls.ddb = client(cls.server.url)
        cls.ddb.create_table(
            TableName="Events",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.dir.cleanup()

    def test_enable_write_restore(self):
        ddb = self.ddb
        before = ddb.describe_continuous_backups(TableName="Events")
        description = before["ContinuousBackupsDescription"]
        self.assertEqual(description["ContinuousBackupsStatus"], "ENABLED")
        self.assertEqual(
            description["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"],
            "DISABLED",
        )
        with self.assertRaises(ClientError) as raised:
            ddb.restore_table_to_point_in_time(
                SourceTableName="Events",
                TargetTableName="Nope",
                UseLatestRestorableTime=True,
            )
        self.assertEqual(
            raised.exception.response["Error"]["Code"],
            "PointInTimeRecoveryUnavailableException",
        )
        updated = ddb.update_continuous_backups(
            TableName="Events",
            PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": True,
                "RecoveryPeriodInDays": 3,
            },
        )
        recovery = updated["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
        self.assertEqual(recovery["PointInTimeRecoveryStatus"], "ENABLED")
        self.assertEqual(recovery["RecoveryPeriodInDays"], 3)
        earliest = recovery["EarliestRestorableDateTime"]

        ddb.put_item(TableName="Events", Item={"id": {"S": "a"}, "v": {"N": "1"}})
        # The latest restorable time nimbus reports is a cut: a restore to
        # it holds exactly the writes acknowledged before the call.
        middle = ddb.describe_continuous_backups(TableName="Events")[
            "ContinuousBackupsDescription"
        ]["PointInTimeRecoveryDescription"]["LatestRestorableDateTime"]
        ddb.put_item(TableName="Events", Item={"id": {"S": "a"}, "v": {"N": "2"}})
        ddb.put_item(TableName="Events", Item={"id": {"S": "b"}})

        restored = ddb.restore_table_to_point_in_time(
            SourceTableName="Events", TargetTableName="Middle", RestoreDateTime=middle
        )["TableDescription"]
        self.assertEqual(restored["TableStatus"], "ACTIVE")
        item = ddb.get_item(TableName="Middle", Key={"id": {"S": "a"}})["Item"]
        self.assertEqual(item["v"], {"N": "1"})
        self.assertNotIn("Item", ddb.get_item(TableName="Middle", Key={"id": {"S": "b"}}))

        ddb.restore_table_to_point_in_time(
            SourceTableName="Events", TargetTableName="Latest", UseLatestRestorableTime=True
        )
        self.assertEqual(ddb.scan(TableName="Latest")["Count"], 2)

        with self.assertRaises(ClientError) as raised:
            ddb.restore_table_to_point_in_time(
                SourceTableName="Events",
                TargetTableName="TooEarly",
                RestoreDateTime=earliest.timestamp() - 60,
            )
        self.assertEqual(
            raised.exception.response["Error"]["Code"], "InvalidRestoreTimeException"
        )


if __name__ == "__main__":
    unittest.main()
