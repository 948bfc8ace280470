//! Versioning through the S3 endpoint: states, version ids, delete
//! markers (404 with `x-amz-delete-marker`, 405 on the marker's version),
//! undelete, and ListObjectVersions with `null` for unversioned objects.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod s3_client;

use s3_client::{Call, S3Test};

fn versioning(s3: &S3Test, bucket: &str, status: &str) -> u16 {
    s3.alice(
        Call::new("PUT", &format!("/{bucket}"))
            .query("versioning", "")
            .body(format!(
                "<VersioningConfiguration><Status>{status}</Status></VersioningConfiguration>"
            )),
    )
    .status
}

#[test]
fn unversioned_objects_list_with_the_null_version_id() {
    let s3 = S3Test::start();
    s3.bucket("plain");
    s3.put("plain", "k", b"v1");
    let state = s3.alice(Call::new("GET", "/plain").query("versioning", ""));
    assert_eq!(state.status, 200);
    assert_eq!(state.xml("Status"), None);
    let versions = s3.alice(Call::new("GET", "/plain").query("versions", ""));
    assert_eq!(versions.status, 200, "{}", versions.text());
    assert_eq!(versions.xml_all("VersionId"), vec!["null"]);
    assert_eq!(versions.xml("IsLatest").as_deref(), Some("true"));
}

#[test]
fn delete_markers_hide_then_undelete() {
    let s3 = S3Test::start();
    s3.bucket("ver");
    assert_eq!(versioning(&s3, "ver", "Enabled"), 200);
    let state = s3.alice(Call::new("GET", "/ver").query("versioning", ""));
    assert_eq!(state.xml("Status").as_deref(), Some("Enabled"));
    let first = s3.put("ver", "k", b"one");
    let second = s3.put("ver", "k", b"two");
    let v1 = first.header("x-amz-version-id").unwrap().to_owned();
    let v2 = second.header("x-amz-version-id").unwrap().to_owned();
    assert_ne!(v1, v2);
    let old = s3.alice(Call::new("GET", "/ver/k").query("versionId", &v1));
    assert_eq!(old.body, b"one");

    let delete = s3.alice(Call::new("DELETE", "/ver/k"));
    assert_eq!(delete.status, 204);
    assert_eq!(delete.header("x-amz-delete-marker"), Some("true"));
    let marker = delete.header("x-amz-version-id").unwrap().to_owned();

    let hidden = s3.get("ver", "k");
    assert_eq!(hidden.status, 404);
    assert_eq!(hidden.code(), "NoSuchKey");
    assert_eq!(hidden.header("x-amz-delete-marker"), Some("true"));
    let on_marker = s3.alice(Call::new("GET", "/ver/k").query("versionId", &marker));
    assert_eq!(on_marker.status, 405, "{}", on_marker.text());
    assert_eq!(on_marker.code(), "MethodNotAllowed");
    assert!(on_marker.header("last-modified").is_some());

    let versions = s3.alice(Call::new("GET", "/ver").query("versions", ""));
    assert_eq!(versions.xml_all("DeleteMarker").len(), 1);
    let ids = versions.xml_all("VersionId");
    assert!(
        ids.contains(&v1) && ids.contains(&v2) && ids.contains(&marker),
        "{ids:?}"
    );

    let undelete = s3.alice(Call::new("DELETE", "/ver/k").query("versionId", &marker));
    assert_eq!(undelete.status, 204);
    assert_eq!(undelete.header("x-amz-delete-marker"), Some("true"));
    assert_eq!(s3.get("ver", "k").body, b"two");

    let gone = s3.alice(Call::new("DELETE", "/ver/k").query("versionId", &v2));
    assert_eq!(gone.status, 204);
    assert_eq!(s3.get("ver", "k").body, b"one");
    let missing = s3.alice(Call::new("GET", "/ver/k").query("versionId", &v2));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "NoSuchVersion");
}

#[test]
fn suspended_buckets_write_the_null_version() {
    let s3 = S3Test::start();
    s3.bucket("susp");
    assert_eq!(versioning(&s3, "susp", "Enabled"), 200);
    let kept = s3.put("susp", "k", b"kept");
    assert_eq!(versioning(&s3, "susp", "Suspended"), 200);
    let null = s3.put("susp", "k", b"null one");
    assert_eq!(null.header("x-amz-version-id"), Some("null"));
    s3.put("susp", "k", b"null two");
    let versions = s3.alice(Call::new("GET", "/susp").query("versions", ""));
    let ids = versions.xml_all("VersionId");
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0], "null");
    assert_eq!(ids[1], kept.header("x-amz-version-id").unwrap());
    let bad = versioning(&s3, "susp", "Off");
    assert_eq!(bad, 400);
}

#[test]
fn version_listing_pages_with_markers() {
    let s3 = S3Test::start();
    s3.bucket("pages");
    versioning(&s3, "pages", "Enabled");
    for i in 0..3 {
        s3.put("pages", "a", format!("a{i}").as_bytes());
    }
    s3.put("pages", "b", b"b");
    let first = s3.alice(
        Call::new("GET", "/pages")
            .query("versions", "")
            .query("max-keys", "2"),
    );
    assert_eq!(first.xml("IsTruncated").as_deref(), Some("true"));
    let key_marker = first.xml("NextKeyMarker").unwrap();
    let version_marker = first.xml("NextVersionIdMarker").unwrap();
    let second = s3.alice(
        Call::new("GET", "/pages")
            .query("versions", "")
            .query("key-marker", &key_marker)
            .query("version-id-marker", &version_marker),
    );
    let keys: Vec<String> = second
        .xml_all("Key")
        .into_iter()
        .filter(|k| k == "a" || k == "b")
        .collect();
    assert_eq!(keys, vec!["a", "b"]);
}

#[test]
fn delete_objects_with_versions_creates_and_removes_markers() {
    let s3 = S3Test::start();
    s3.bucket("bulk");
    versioning(&s3, "bulk", "Enabled");
    let put = s3.put("bulk", "x", b"x");
    let v = put.header("x-amz-version-id").unwrap().to_owned();
    let xml = format!(
        "<Delete><Object><Key>x</Key></Object><Object><Key>x</Key><VersionId>{v}</VersionId></Object></Delete>"
    );
    let answer = s3.alice(
        Call::new("POST", "/bulk")
            .query("delete", "")
            .header(
                "x-amz-checksum-crc32",
                &s3_client::crc32_b64(xml.as_bytes()),
            )
            .body(xml),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.xml_all("DeleteMarker"), vec!["true"]);
    assert!(answer.xml("DeleteMarkerVersionId").is_some());
    let versions = s3.alice(Call::new("GET", "/bulk").query("versions", ""));
    assert_eq!(versions.xml_all("DeleteMarker").len(), 1);
    assert!(!versions.xml_all("VersionId").contains(&v));
}
