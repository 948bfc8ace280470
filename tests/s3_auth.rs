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

/// s3s 0.14.1 computes `c - b'0'` before checking that `c` is a digit, so a
/// byte below `'0'` in a SigV4 date panicked in debug builds (found by the
/// `s3_request` fuzz target). The endpoint answers S3's errors instead, and
/// keeps serving. A debug `cargo test` panicked here before the fix.
#[test]
fn malformed_sigv4_dates_are_s3_errors_not_panics() {
    let s3 = S3Test::start();
    s3.bucket("dates");
    s3.put("dates", "doc.txt", b"still served");
    let target = s3.presign(ALICE, "GET", "/dates/doc.txt", 300);
    // The credential's date: `%2F20` -> the first two digits of the scope
    // date; `!` (0x21) and `%00` are below '0'.
    let date_at = target.find("%2F20").unwrap() + 3;
    for bad in ["!", "%00", "-", "+"] {
        let mut broken = target.clone();
        broken.replace_range(date_at..date_at + 1, bad);
        let answer = s3.get_target("GET", &broken);
        assert_eq!(answer.status, 400, "{bad}: {}", answer.text());
        assert_eq!(answer.code(), "AuthorizationQueryParametersError", "{bad}");
    }
    let amz_date = target.find("X-Amz-Date=").unwrap() + "X-Amz-Date=".len();
    let mut broken = target.clone();
    broken.replace_range(amz_date + 2..amz_date + 3, "/");
    let answer = s3.get_target("GET", &broken);
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.code(), "AuthorizationQueryParametersError");

    let host = s3.address.to_string();
    let header = |authorization: &str, date: &str| {
        let headers = [
            ("Authorization".to_owned(), authorization.to_owned()),
            ("x-amz-date".to_owned(), date.to_owned()),
            (
                "x-amz-content-sha256".to_owned(),
                "UNSIGNED-PAYLOAD".to_owned(),
            ),
        ];
        s3.raw("GET", "/dates/doc.txt", &host, &headers, &[])
    };
    let auth = |scope_date: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope_date}/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={}",
            ALICE.access,
            "0".repeat(64)
        )
    };
    let malformed = header(&auth("2026.101"), "20260101T000000Z");
    assert_eq!(malformed.status, 400, "{}", malformed.text());
    assert_eq!(malformed.code(), "AuthorizationHeaderMalformed");
    let bad_time = header(&auth("20260101"), "2026010/T000000Z");
    assert_eq!(bad_time.status, 403, "{}", bad_time.text());
    assert_eq!(bad_time.code(), "AccessDenied");

    // Nothing broke: the well-formed URL still works.
    let got = s3.get_target("GET", &target);
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, b"still served");
}

/// A browser POST form upload: `multipart/form-data`, its SigV4 fields in
/// the body. Its first bytes are read ahead (malformed dates are S3 errors,
/// not s3s's panic) and then replayed to s3s whole: a signed form stores
/// the object.
#[test]
fn post_form_uploads_are_checked_then_served() {
    let s3 = S3Test::start();
    s3.bucket("forms");
    let host = s3.address.to_string();
    let post = |credential: &str, date: &str, file: &[u8]| {
        let policy = format!(
            r#"{{"expiration":"2099-01-01T00:00:00.000Z","conditions":[{{"bucket":"forms"}},{{"key":"up.txt"}},{{"x-amz-algorithm":"AWS4-HMAC-SHA256"}},{{"x-amz-credential":"{credential}"}},{{"x-amz-date":"{date}"}}]}}"#
        );
        let policy = s3_client::b64(policy.as_bytes());
        let signature = if date.len() == 16 {
            s3_client::signature(ALICE, date, &policy)
        } else {
            "0".repeat(64)
        };
        let mut body = Vec::new();
        for (name, value) in [
            ("key", "up.txt"),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-credential", credential),
            ("x-amz-date", date),
            ("policy", policy.as_str()),
            ("x-amz-signature", signature.as_str()),
        ] {
            body.extend_from_slice(
                format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"up.txt\"\r\n\r\n",
        );
        body.extend_from_slice(file);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        let headers = [(
            "Content-Type".to_owned(),
            "multipart/form-data; boundary=XyZ".to_owned(),
        )];
        s3.raw("POST", "/forms", &host, &headers, &body)
    };
    let date = s3_client::amz_date(s3_client::now());
    let credential = format!("{}/{}/us-east-1/s3/aws4_request", ALICE.access, &date[..8]);

    let bad_scope = credential.replace(&date[..8], &format!("{}!{}", &date[..3], &date[4..8]));
    let refused = post(&bad_scope, &date, b"x");
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.code(), "InvalidArgument");
    let bad_date = format!("{}/{}", &date[..4], &date[5..]);
    let refused = post(&credential, &bad_date, b"x");
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.code(), "InvalidArgument");
    assert_eq!(s3.get("forms", "up.txt").status, 404, "nothing stored");

    // A file past the read-ahead (20 MiB): the replayed prefix and the
    // rest of the body join.
    let file = s3_client::bytes((20 << 20) + 300_000, 5);
    let stored = post(&credential, &date, &file);
    assert!(
        stored.status / 100 == 2,
        "{}: {}",
        stored.status,
        stored.text()
    );
    let got = s3.get("forms", "up.txt");
    assert_eq!(got.status, 200);
    assert!(got.body == file, "the form's file, byte for byte");
}
