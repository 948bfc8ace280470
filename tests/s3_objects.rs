//! The S3 endpoint's object operations over raw HTTP: PUT/GET/HEAD with
//! metadata, MD5 ETags, ranges, conditionals, copy, DeleteObjects,
//! listings, virtual-host addressing, and S3's error bodies.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod s3_client;

use s3_client::{Call, S3Test, bytes, md5_hex};

#[test]
fn put_then_get_returns_the_body_metadata_and_an_md5_etag() {
    let s3 = S3Test::start();
    s3.bucket("photos");
    let body = bytes(100_000, 7);
    let put = s3.alice(
        Call::new("PUT", "/photos/cats/tom.jpg")
            .header("content-type", "image/jpeg")
            .header("x-amz-meta-owner", "Jerry")
            .body(body.clone()),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.e_tag(), md5_hex(&body));
    let get = s3.get("photos", "cats/tom.jpg");
    assert_eq!(get.status, 200);
    assert_eq!(get.body, body);
    assert_eq!(get.header("content-type"), Some("image/jpeg"));
    assert_eq!(get.header("x-amz-meta-owner"), Some("Jerry"));
    assert_eq!(get.e_tag(), md5_hex(&body));
    let head = s3.alice(Call::new("HEAD", "/photos/cats/tom.jpg"));
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("100000"));
    assert!(head.body.is_empty());
}

#[test]
fn large_bodies_stream_both_ways() {
    let s3 = S3Test::start();
    s3.bucket("big");
    let body = bytes(5 << 20, 3);
    assert_eq!(s3.put("big", "blob", &body).e_tag(), md5_hex(&body));
    let get = s3.get("big", "blob");
    assert_eq!(get.status, 200);
    assert_eq!(get.body.len(), body.len());
    assert!(get.body == body);
}

#[test]
fn ranges_answer_206_and_past_the_end_416() {
    let s3 = S3Test::start();
    s3.bucket("ranges");
    s3.put("ranges", "k", b"0123456789");
    let part = s3.alice(Call::new("GET", "/ranges/k").header("range", "bytes=2-4"));
    assert_eq!(part.status, 206);
    assert_eq!(part.body, b"234");
    assert_eq!(part.header("content-range"), Some("bytes 2-4/10"));
    let suffix = s3.alice(Call::new("GET", "/ranges/k").header("range", "bytes=-3"));
    assert_eq!(suffix.body, b"789");
    let past = s3.alice(Call::new("GET", "/ranges/k").header("range", "bytes=20-"));
    assert_eq!(past.status, 416);
    assert_eq!(past.code(), "InvalidRange");
}

#[test]
fn missing_things_have_s3_error_bodies() {
    let s3 = S3Test::start();
    let answer = s3.get("nobucket", "k");
    assert_eq!(answer.status, 404);
    assert_eq!(answer.code(), "NoSuchBucket");
    assert!(answer.text().starts_with("<?xml"));
    s3.bucket("here");
    let answer = s3.get("here", "nokey");
    assert_eq!(answer.status, 404);
    assert_eq!(answer.code(), "NoSuchKey");
    assert_eq!(answer.header("x-amz-delete-marker"), None);
    let answer = s3.alice(Call::new("PUT", "/Bad_Name"));
    assert_eq!(answer.status, 400);
    assert_eq!(answer.code(), "InvalidBucketName");
}

#[test]
fn conditional_writes_and_reads() {
    let s3 = S3Test::start();
    s3.bucket("cond");
    let create = |body: &[u8]| {
        s3.alice(
            Call::new("PUT", "/cond/k")
                .header("if-none-match", "*")
                .body(body),
        )
    };
    let first = create(b"one");
    assert_eq!(first.status, 200);
    let again = create(b"two");
    assert_eq!(again.status, 412, "{}", again.text());
    assert_eq!(again.code(), "PreconditionFailed");
    assert_eq!(s3.get("cond", "k").body, b"one");
    let swap = s3.alice(
        Call::new("PUT", "/cond/k")
            .header("if-match", &format!("\"{}\"", first.e_tag()))
            .body("three"),
    );
    assert_eq!(swap.status, 200);
    let stale = s3.alice(
        Call::new("PUT", "/cond/k")
            .header("if-match", &format!("\"{}\"", first.e_tag()))
            .body("four"),
    );
    assert_eq!(stale.status, 412);
    let unchanged = s3.alice(
        Call::new("GET", "/cond/k").header("if-none-match", &format!("\"{}\"", swap.e_tag())),
    );
    assert_eq!(unchanged.status, 304);
    let mismatch = s3.alice(Call::new("GET", "/cond/k").header("if-match", "\"abc\""));
    assert_eq!(mismatch.status, 412);
}

#[test]
fn racing_create_only_puts_have_exactly_one_winner() {
    let s3 = S3Test::start();
    s3.bucket("race");
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let s3 = &s3;
                scope.spawn(move || {
                    s3.alice(
                        Call::new("PUT", "/race/k")
                            .header("if-none-match", "*")
                            .body(format!("writer {i}")),
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 409, 412].contains(s)),
        "{statuses:?}"
    );
}

#[test]
fn copy_object_keeps_or_replaces_metadata() {
    let s3 = S3Test::start();
    s3.bucket("src");
    s3.bucket("dst");
    s3.alice(
        Call::new("PUT", "/src/a")
            .header("x-amz-meta-color", "red")
            .body("payload"),
    );
    let copy = s3.alice(Call::new("PUT", "/dst/b").header("x-amz-copy-source", "/src/a"));
    assert_eq!(copy.status, 200, "{}", copy.text());
    assert_eq!(
        copy.xml("ETag")
            .unwrap()
            .trim_matches('"')
            .replace("&quot;", ""),
        md5_hex(b"payload")
    );
    let got = s3.get("dst", "b");
    assert_eq!(got.body, b"payload");
    assert_eq!(got.header("x-amz-meta-color"), Some("red"));
    let replaced = s3.alice(
        Call::new("PUT", "/dst/c")
            .header("x-amz-copy-source", "/src/a")
            .header("x-amz-metadata-directive", "REPLACE")
            .header("x-amz-meta-shape", "round"),
    );
    assert_eq!(replaced.status, 200);
    let got = s3.get("dst", "c");
    assert_eq!(got.header("x-amz-meta-color"), None);
    assert_eq!(got.header("x-amz-meta-shape"), Some("round"));
    let missing = s3.alice(Call::new("PUT", "/dst/d").header("x-amz-copy-source", "/src/nope"));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "NoSuchKey");
}

#[test]
fn delete_objects_reports_each_key() {
    let s3 = S3Test::start();
    s3.bucket("many");
    for key in ["a", "b", "c"] {
        s3.put("many", key, key.as_bytes());
    }
    let xml = "<Delete><Object><Key>a</Key></Object><Object><Key>b</Key></Object>\
               <Object><Key>zz</Key></Object></Delete>";
    let md5 = {
        use md5::Digest as _;
        s3_client::b64(&md5::Md5::digest(xml.as_bytes()))
    };
    let answer = s3.alice(
        Call::new("POST", "/many")
            .query("delete", "")
            .header("content-md5", &md5)
            .body(xml),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let deleted = answer.xml_all("Key");
    assert_eq!(deleted, vec!["a", "b", "zz"]);
    let list = s3.alice(Call::new("GET", "/many").query("list-type", "2"));
    assert_eq!(list.xml_all("Key"), vec!["c"]);
}

#[test]
fn list_objects_v2_and_v1_page_with_delimiters() {
    let s3 = S3Test::start();
    s3.bucket("tree");
    for key in ["a/1", "a/2", "b/1", "c", "d"] {
        s3.put("tree", key, b"x");
    }
    let top = s3.alice(
        Call::new("GET", "/tree")
            .query("list-type", "2")
            .query("delimiter", "/"),
    );
    assert_eq!(top.status, 200);
    assert_eq!(top.xml_all("Prefix")[1..], ["a/", "b/"]);
    assert_eq!(top.xml_all("Key"), vec!["c", "d"]);
    assert_eq!(top.xml("KeyCount").as_deref(), Some("4"));
    let first = s3.alice(
        Call::new("GET", "/tree")
            .query("list-type", "2")
            .query("max-keys", "2"),
    );
    assert_eq!(first.xml_all("Key"), vec!["a/1", "a/2"]);
    assert_eq!(first.xml("IsTruncated").as_deref(), Some("true"));
    let token = first.xml("NextContinuationToken").unwrap();
    let second = s3.alice(
        Call::new("GET", "/tree")
            .query("list-type", "2")
            .query("max-keys", "2")
            .query("continuation-token", &token),
    );
    assert_eq!(second.xml_all("Key"), vec!["b/1", "c"]);
    let v1 = s3.alice(Call::new("GET", "/tree").query("marker", "b/1"));
    assert_eq!(v1.xml_all("Key"), vec!["c", "d"]);
    let encoded = s3.alice(
        Call::new("GET", "/tree")
            .query("list-type", "2")
            .query("prefix", "a/")
            .query("encoding-type", "url"),
    );
    assert_eq!(encoded.xml_all("Key"), vec!["a/1", "a/2"]);
}

#[test]
fn virtual_host_addressing_names_the_bucket() {
    let s3 = S3Test::start();
    s3.bucket("vhost");
    let port = s3.address.port();
    let host = format!("vhost.localhost:{port}");
    let put = s3.alice(Call::new("PUT", "/key.txt").host(&host).body("hello"));
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(s3.get("vhost", "key.txt").body, b"hello");
    let get = s3.alice(Call::new("GET", "/key.txt").host(&host));
    assert_eq!(get.body, b"hello");
}

#[test]
fn buckets_list_head_locate_and_refuse_to_delete_when_full() {
    let s3 = S3Test::start();
    s3.bucket("one");
    s3.bucket("two");
    let again = s3.alice(Call::new("PUT", "/one"));
    assert_eq!(again.status, 409);
    assert_eq!(again.code(), "BucketAlreadyOwnedByYou");
    let list = s3.alice(Call::new("GET", "/"));
    assert_eq!(list.xml_all("Name"), vec!["one", "two"]);
    assert_eq!(s3.alice(Call::new("HEAD", "/one")).status, 200);
    assert_eq!(s3.alice(Call::new("HEAD", "/three")).status, 404);
    let location = s3.alice(Call::new("GET", "/one").query("location", ""));
    assert_eq!(location.status, 200);
    s3.put("one", "k", b"x");
    let full = s3.alice(Call::new("DELETE", "/one"));
    assert_eq!(full.status, 409);
    assert_eq!(full.code(), "BucketNotEmpty");
    assert_eq!(s3.alice(Call::new("DELETE", "/one/k")).status, 204);
    assert_eq!(s3.alice(Call::new("DELETE", "/one")).status, 204);
    assert_eq!(s3.alice(Call::new("HEAD", "/one")).status, 404);
}
