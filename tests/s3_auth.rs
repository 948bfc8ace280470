//! Who may do what on the S3 endpoint: SigV4 signatures (header and
//! presigned URL) against configured keys, bucket ownership between two
//! users, canned ACLs (private, public-read) and anonymous access.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod s3_client;

use s3_client::{ALICE, BOB, Call, Key, S3Test};

#[test]
fn unsigned_and_badly_signed_requests_are_refused() {
    let s3 = S3Test::start();
    s3.bucket("locked");
    let anonymous = s3.send(None, Call::new("GET", "/locked"));
    assert_eq!(anonymous.status, 403);
    assert_eq!(anonymous.code(), "AccessDenied");
    let forged = Key {
        access: ALICE.access,
        secret: "not-alice-secret",
    };
    let bad = s3.send(Some(forged), Call::new("GET", "/locked"));
    assert_eq!(bad.status, 403);
    assert_eq!(bad.code(), "SignatureDoesNotMatch");
    let unknown = Key {
        access: "AKIDNOBODY",
        secret: "x",
    };
    let nobody = s3.send(Some(unknown), Call::new("GET", "/locked"));
    assert_eq!(nobody.status, 403, "{}", nobody.text());
    assert_eq!(nobody.code(), "InvalidAccessKeyId");
    let anonymous_create = s3.send(None, Call::new("PUT", "/mine"));
    assert_eq!(anonymous_create.status, 403);
}

#[test]
fn another_users_bucket_is_access_denied() {
    let s3 = S3Test::start();
    s3.bucket("alices");
    s3.put("alices", "secret.txt", b"for alice");
    let read = s3.send(Some(BOB), Call::new("GET", "/alices/secret.txt"));
    assert_eq!(read.status, 403);
    assert_eq!(read.code(), "AccessDenied");
    let write = s3.send(Some(BOB), Call::new("PUT", "/alices/bob.txt").body("x"));
    assert_eq!(write.status, 403);
    let taken = s3.send(Some(BOB), Call::new("PUT", "/alices"));
    assert_eq!(taken.status, 409);
    assert_eq!(taken.code(), "BucketAlreadyExists");
    let copy = s3.send(Some(BOB), Call::new("PUT", "/bobs"));
    assert_eq!(copy.status, 200);
    let steal = s3.send(
        Some(BOB),
        Call::new("PUT", "/bobs/stolen").header("x-amz-copy-source", "/alices/secret.txt"),
    );
    assert_eq!(steal.status, 403, "{}", steal.text());
    let bobs = s3.send(Some(BOB), Call::new("GET", "/"));
    assert_eq!(bobs.xml_all("Name"), vec!["bobs"]);
    assert_eq!(bobs.xml("DisplayName").as_deref(), Some("bob"));
    let alices = s3.alice(Call::new("GET", "/"));
    assert_eq!(alices.xml_all("Name"), vec!["alices"]);
}

#[test]
fn public_read_buckets_serve_anonymous_reads_only() {
    let s3 = S3Test::start();
    let create = s3.alice(Call::new("PUT", "/public").header("x-amz-acl", "public-read"));
    assert_eq!(create.status, 200);
    s3.put("public", "page.html", b"<html/>");
    let read = s3.send(None, Call::new("GET", "/public/page.html"));
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.body, b"<html/>");
    let list = s3.send(
        Some(BOB),
        Call::new("GET", "/public").query("list-type", "2"),
    );
    assert_eq!(list.xml_all("Key"), vec!["page.html"]);
    let write = s3.send(None, Call::new("PUT", "/public/x").body("x"));
    assert_eq!(write.status, 403);
    let delete = s3.send(Some(BOB), Call::new("DELETE", "/public/page.html"));
    assert_eq!(delete.status, 403);
    let acl = s3.alice(Call::new("GET", "/public").query("acl", ""));
    assert!(acl.text().contains("AllUsers"), "{}", acl.text());
    let private = s3.alice(
        Call::new("PUT", "/public")
            .query("acl", "")
            .header("x-amz-acl", "private"),
    );
    assert_eq!(private.status, 200, "{}", private.text());
    assert_eq!(
        s3.send(None, Call::new("GET", "/public/page.html")).status,
        403
    );
}

#[test]
fn presigned_urls_work_until_tampered_with() {
    let s3 = S3Test::start();
    s3.bucket("shared");
    s3.put("shared", "doc.txt", b"presigned body");
    let target = s3.presign(ALICE, "GET", "/shared/doc.txt", 300);
    let got = s3.get_target("GET", &target);
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, b"presigned body");
    let tampered = target.replace("doc.txt", "doc.txx");
    let refused = s3.get_target("GET", &tampered);
    assert_eq!(refused.status, 403);
    assert_eq!(refused.code(), "SignatureDoesNotMatch");
    let by_bob = s3.presign(BOB, "GET", "/shared/doc.txt", 300);
    assert_eq!(s3.get_target("GET", &by_bob).status, 403);
}

#[test]
fn a_bucket_is_created_with_its_owner_and_acl_in_one_batch() {
    let s3 = S3Test::start();
    let before = s3.db.engine().stats().write_batches;
    let create = s3.alice(Call::new("PUT", "/shared").header("x-amz-acl", "public-read"));
    assert_eq!(create.status, 200, "{}", create.text());
    let batches = s3.db.engine().stats().write_batches - before;
    assert_eq!(
        batches, 1,
        "the bucket, its owner and its ACL commit together"
    );
    let objects = s3.db.objects();
    let owner = objects.get_bucket_attribute("shared", "owner").unwrap();
    assert!(owner.is_some_and(|owner| !owner.is_empty()));
    assert_eq!(
        objects.get_bucket_attribute("shared", "acl").unwrap(),
        Some(b"public-read".to_vec())
    );
    let taken = s3.send(Some(BOB), Call::new("PUT", "/shared"));
    assert_eq!(taken.code(), "BucketAlreadyExists");
}
