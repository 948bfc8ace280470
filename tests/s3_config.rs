//! Configuration through the S3 endpoint: object lock (bucket default,
//! retention, legal hold, governance bypass in DeleteObjects), lifecycle
//! rules, notification configuration delivered as subscriptions, and
//! object and bucket tagging.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod s3_client;

use s3_client::{Call, S3Test, crc32_b64};

fn lock_bucket(s3: &S3Test, name: &str) {
    let created = s3.alice(
        Call::new("PUT", &format!("/{name}")).header("x-amz-bucket-object-lock-enabled", "true"),
    );
    assert_eq!(created.status, 200, "{}", created.text());
}

fn future_date() -> String {
    "2099-01-01T00:00:00.000Z".to_owned()
}

#[test]
fn governance_retention_blocks_deletes_unless_bypassed() {
    let s3 = S3Test::start();
    lock_bucket(&s3, "vault");
    let put = s3.alice(
        Call::new("PUT", "/vault/doc")
            .header("x-amz-object-lock-mode", "GOVERNANCE")
            .header("x-amz-object-lock-retain-until-date", &future_date())
            .body("keep me"),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let version = put.header("x-amz-version-id").unwrap().to_owned();
    let retention = s3.alice(
        Call::new("GET", "/vault/doc")
            .query("retention", "")
            .query("versionId", &version),
    );
    assert_eq!(retention.xml("Mode").as_deref(), Some("GOVERNANCE"));
    let refused = s3.alice(Call::new("DELETE", "/vault/doc").query("versionId", &version));
    assert_eq!(refused.status, 403);
    assert_eq!(refused.code(), "AccessDenied");
    // A delete without a version id still lays a marker on a locked object.
    let marker = s3.alice(Call::new("DELETE", "/vault/doc"));
    assert_eq!(marker.status, 204);
    assert_eq!(marker.header("x-amz-delete-marker"), Some("true"));
    let xml =
        format!("<Delete><Object><Key>doc</Key><VersionId>{version}</VersionId></Object></Delete>");
    let multi = |bypass: bool| {
        let mut call = Call::new("POST", "/vault")
            .query("delete", "")
            .header("x-amz-checksum-crc32", &crc32_b64(xml.as_bytes()))
            .body(xml.clone());
        if bypass {
            call = call.header("x-amz-bypass-governance-retention", "true");
        }
        s3.alice(call)
    };
    let without = multi(false);
    assert_eq!(without.status, 200);
    assert_eq!(without.xml("Code").as_deref(), Some("AccessDenied"));
    let with = multi(true);
    assert_eq!(with.status, 200, "{}", with.text());
    assert_eq!(with.xml("VersionId").as_deref(), Some(version.as_str()));
    assert_eq!(with.xml("Code"), None);
}

#[test]
fn legal_hold_and_default_retention() {
    let s3 = S3Test::start();
    lock_bucket(&s3, "held");
    let config = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled>\
                  <Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>2</Days></DefaultRetention></Rule>\
                  </ObjectLockConfiguration>";
    let set = s3.alice(
        Call::new("PUT", "/held")
            .query("object-lock", "")
            .body(config),
    );
    assert_eq!(set.status, 200, "{}", set.text());
    let got = s3.alice(Call::new("GET", "/held").query("object-lock", ""));
    assert_eq!(got.xml("Days").as_deref(), Some("2"));
    let put = s3.put("held", "k", b"x");
    let version = put.header("x-amz-version-id").unwrap().to_owned();
    let hold = s3.alice(
        Call::new("PUT", "/held/k")
            .query("legal-hold", "")
            .query("versionId", &version)
            .body("<LegalHold><Status>ON</Status></LegalHold>"),
    );
    assert_eq!(hold.status, 200, "{}", hold.text());
    let status = s3.alice(Call::new("GET", "/held/k").query("legal-hold", ""));
    assert_eq!(status.xml("Status").as_deref(), Some("ON"));
    let retention = s3.alice(Call::new("GET", "/held/k").query("retention", ""));
    assert_eq!(retention.xml("Mode").as_deref(), Some("COMPLIANCE"));
    let bypass = s3.alice(
        Call::new("DELETE", "/held/k")
            .query("versionId", &version)
            .header("x-amz-bypass-governance-retention", "true"),
    );
    assert_eq!(bypass.status, 403);
    s3.bucket("plain");
    let none = s3.alice(Call::new("GET", "/plain").query("object-lock", ""));
    assert_eq!(none.status, 404);
    assert_eq!(none.code(), "ObjectLockConfigurationNotFoundError");
}

#[test]
fn lifecycle_configuration_round_trips_and_validates() {
    let s3 = S3Test::start();
    s3.bucket("life");
    let missing = s3.alice(Call::new("GET", "/life").query("lifecycle", ""));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "NoSuchLifecycleConfiguration");
    let rules = "<LifecycleConfiguration><Rule><ID>logs</ID><Status>Enabled</Status>\
                 <Filter><Prefix>logs/</Prefix></Filter><Expiration><Days>30</Days></Expiration>\
                 <Transition><Days>40</Days><StorageClass>STANDARD_IA</StorageClass></Transition>\
                 </Rule></LifecycleConfiguration>";
    let put = s3.alice(
        Call::new("PUT", "/life")
            .query("lifecycle", "")
            .header("x-amz-checksum-crc32", &crc32_b64(rules.as_bytes()))
            .body(rules),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let got = s3.alice(Call::new("GET", "/life").query("lifecycle", ""));
    assert_eq!(got.xml("ID").as_deref(), Some("logs"));
    assert_eq!(got.xml("Prefix").as_deref(), Some("logs/"));
    assert_eq!(got.xml("StorageClass").as_deref(), Some("STANDARD_IA"));
    // S3's 30-day minimum for STANDARD_IA transitions.
    let too_soon = rules.replace("<Days>40</Days>", "<Days>10</Days>");
    let bad = s3.alice(
        Call::new("PUT", "/life")
            .query("lifecycle", "")
            .header("x-amz-checksum-crc32", &crc32_b64(too_soon.as_bytes()))
            .body(too_soon),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    let kept = s3.alice(Call::new("GET", "/life").query("lifecycle", ""));
    assert_eq!(kept.xml_all("Days"), vec!["30", "40"]);
    let delete = s3.alice(Call::new("DELETE", "/life").query("lifecycle", ""));
    assert_eq!(delete.status, 204);
    assert_eq!(
        s3.alice(Call::new("GET", "/life").query("lifecycle", ""))
            .status,
        404
    );
}

#[test]
fn queue_notifications_become_subscriptions() {
    let s3 = S3Test::start();
    s3.bucket("events");
    let config = "<NotificationConfiguration><QueueConfiguration><Id>new</Id>\
                  <Queue>arn:aws:sqs:us-east-1:000000000000:incoming</Queue>\
                  <Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>prefix</Name>\
                  <Value>in/</Value></FilterRule></S3Key></Filter></QueueConfiguration>\
                  </NotificationConfiguration>";
    let put = s3.alice(
        Call::new("PUT", "/events")
            .query("notification", "")
            .body(config),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let got = s3.alice(Call::new("GET", "/events").query("notification", ""));
    assert_eq!(
        got.xml("Queue").as_deref(),
        Some("arn:aws:sqs:us-east-1:000000000000:incoming")
    );
    s3.put("events", "in/a", b"1");
    s3.put("events", "out/b", b"2");
    s3.db.objects().deliver_events().unwrap();
    let events = s3.db.objects().receive_events("incoming", 10).unwrap();
    let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, vec!["in/a"]);
    let topic = "<NotificationConfiguration><TopicConfiguration><Topic>arn:aws:sns:x:y:z</Topic>\
                 <Event>s3:ObjectCreated:*</Event></TopicConfiguration></NotificationConfiguration>";
    let refused = s3.alice(
        Call::new("PUT", "/events")
            .query("notification", "")
            .body(topic),
    );
    assert_eq!(refused.status, 400);
    let cleared = s3.alice(
        Call::new("PUT", "/events")
            .query("notification", "")
            .body("<NotificationConfiguration/>"),
    );
    assert_eq!(cleared.status, 200);
    assert!(s3.db.objects().receive_events("incoming", 10).is_err());
}

#[test]
fn object_and_bucket_tagging() {
    let s3 = S3Test::start();
    s3.bucket("tags");
    let put = s3.alice(
        Call::new("PUT", "/tags/k")
            .header("x-amz-tagging", "team=blue&cost%20center=7")
            .body("x"),
    );
    assert_eq!(put.status, 200);
    let tags = s3.alice(Call::new("GET", "/tags/k").query("tagging", ""));
    assert_eq!(tags.xml_all("Key"), vec!["team", "cost center"]);
    let set = s3.alice(
        Call::new("PUT", "/tags/k")
            .query("tagging", "")
            .body("<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag></TagSet></Tagging>"),
    );
    assert_eq!(set.status, 200, "{}", set.text());
    assert_eq!(
        s3.alice(Call::new("GET", "/tags/k").query("tagging", ""))
            .xml_all("Value"),
        vec!["1"]
    );
    assert_eq!(
        s3.alice(Call::new("DELETE", "/tags/k").query("tagging", ""))
            .status,
        204
    );
    assert!(
        s3.alice(Call::new("GET", "/tags/k").query("tagging", ""))
            .xml_all("Key")
            .is_empty()
    );
    let none = s3.alice(Call::new("GET", "/tags").query("tagging", ""));
    assert_eq!(none.status, 404);
    assert_eq!(none.code(), "NoSuchTagSet");
    let bucket_tags =
        s3.alice(Call::new("PUT", "/tags").query("tagging", "").body(
            "<Tagging><TagSet><Tag><Key>env</Key><Value>prod</Value></Tag></TagSet></Tagging>",
        ));
    assert_eq!(bucket_tags.status, 200, "{}", bucket_tags.text());
    assert_eq!(
        s3.alice(Call::new("GET", "/tags").query("tagging", ""))
            .xml_all("Value"),
        vec!["prod"]
    );
}
