//! What a caller may read, as an outside client tried it (issue 21): a
//! photo's upload state, a photo named through one's own sheet, and the
//! secretary's progress view.

mod common;

use common::*;
use ocop_shared::wire::{Outcome, RejectCode, paths};
use rstest::rstest;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Member 0's draft sheet on product 0 naming a photo member 0 uploaded.
async fn owners_photo(w: &World) -> String {
    let owner = w.member(0);
    let rubric = rubric_of(w, 0);
    let photo = b"anh nhan mac cua thanh vien 0".to_vec();
    let sha = hex::encode(Sha256::digest(&photo));
    let mut edit = one_answer(&rubric, 0, 0, 0);
    edit.answer.attachments = vec![sha.clone()];
    let r = owner
        .push(vec![owner.mutation(set_answers(
            w,
            0,
            Uuid::now_v7(),
            vec![edit],
        ))])
        .await;
    assert!(
        matches!(r.results[0].outcome, Outcome::Applied { .. }),
        "{r:?}"
    );
    let up = owner
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{sha}", paths::ATTACHMENTS),
        )
        .await
        .body(photo)
        .send()
        .await
        .unwrap();
    assert_eq!(up.status().as_u16(), 200);
    sha
}

#[derive(Debug, Clone, Copy)]
enum Asker {
    Owner,
    Chair,
    Admin,
    OtherMember,
    Secretary,
}

fn asker(w: &World, a: Asker) -> &Device {
    match a {
        Asker::Owner => w.member(0),
        Asker::Chair => w.chair(),
        Asker::Admin => &w.admin,
        Asker::OtherMember => w.member(1),
        Asker::Secretary => w.secretary(),
    }
}

#[rstest]
#[case::owner(Asker::Owner, 200)]
#[case::chair(Asker::Chair, 200)]
#[case::admin(Asker::Admin, 200)]
#[case::other_member_before_release(Asker::OtherMember, 404)]
#[case::secretary(Asker::Secretary, 404)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_of_a_photo_answers_as_get_does_and_hidden_is_404(
    #[case] who: Asker,
    #[case] status: u16,
) {
    let w = world().await;
    let sha = owners_photo(&w).await;
    let d = asker(&w, who);
    let url = format!("{}/{sha}", paths::ATTACHMENTS);
    let get = d
        .raw(reqwest::Method::GET, &url)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), status, "GET");
    let head = d
        .raw(reqwest::Method::HEAD, &url)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), status, "HEAD as GET");
    if status == 404 {
        for h in [
            "upload-offset",
            "x-ocop-received",
            "x-ocop-size",
            "x-ocop-complete",
        ] {
            assert!(
                head.headers().get(h).is_none(),
                "{h} tells a hidden photo's upload"
            );
        }
    } else {
        assert_eq!(head.headers()["x-ocop-complete"], "true");
    }
    // A photo nobody uploaded answers the same 404.
    let unknown = hex::encode(Sha256::digest(b"nobody uploaded this"));
    let head = d
        .raw(
            reqwest::Method::HEAD,
            &format!("{}/{unknown}", paths::ATTACHMENTS),
        )
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 404);
}

/// When the photo's hash is named on the other sheet, relative to its upload.
#[derive(Debug, Clone, Copy)]
enum Named {
    /// After the owner uploaded it.
    AfterUpload,
    /// Before anybody uploaded it; the owner uploads it afterwards.
    BeforeUpload,
}

#[rstest]
#[case::another_member_after_upload(Asker::OtherMember, Named::AfterUpload, false)]
#[case::another_member_before_upload(Asker::OtherMember, Named::BeforeUpload, false)]
#[case::the_chair_who_may_read_it(Asker::Chair, Named::AfterUpload, true)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naming_a_photo_requires_having_uploaded_it_or_being_allowed_to_read_it(
    #[case] who: Asker,
    #[case] when: Named,
    #[case] may_read: bool,
) {
    let w = world().await;
    let d = asker(&w, who);
    let rubric = rubric_of(&w, 1);
    let photo = b"anh nhan mac cua thanh vien 0".to_vec();
    let sha = hex::encode(Sha256::digest(&photo));
    let name_it = || async {
        let mut edit = one_answer(&rubric, 0, 0, 0);
        edit.answer.attachments = vec![sha.clone()];
        d.push(vec![d.mutation(set_answers(
            &w,
            1,
            Uuid::now_v7(),
            vec![edit],
        ))])
        .await
    };
    let named = match when {
        Named::AfterUpload => {
            assert_eq!(owners_photo(&w).await, sha);
            Some(name_it().await)
        }
        Named::BeforeUpload => {
            let r = name_it().await;
            assert!(
                matches!(r.results[0].outcome, Outcome::Applied { .. }),
                "a photo nobody uploaded yet may be named: {r:?}"
            );
            assert_eq!(r.missing_attachments, vec![sha.clone()]);
            assert_eq!(owners_photo(&w).await, sha);
            None
        }
    };
    if let Some(r) = named {
        match (&r.results[0].outcome, may_read) {
            (Outcome::Applied { .. }, true) => {}
            (Outcome::Rejected { code, reason }, false) => {
                assert_eq!(*code, RejectCode::NotFound, "{reason}");
                assert!(
                    reason.contains(&sha) && reason.contains("not available to you"),
                    "{reason}"
                );
            }
            (o, _) => panic!("may_read {may_read}: {o:?}"),
        }
    }
    let get = d
        .raw(
            reqwest::Method::GET,
            &format!("{}/{sha}", paths::ATTACHMENTS),
        )
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(
        get.status().as_u16(),
        if may_read { 200 } else { 404 },
        "the hash is not the permission"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secretarys_progress_view_carries_status_revision_and_rubric_but_no_note_rev() {
    let w = world().await;
    let owner = w.member(0);
    let rubric = rubric_of(&w, 0);
    let sid = Uuid::now_v7();
    let r = owner
        .push(vec![
            owner.mutation(set_answers(&w, 0, sid, vec![one_answer(&rubric, 0, 0, 0)])),
            owner.mutation(ocop_shared::wire::Op::SetNote {
                sheet: key(&w, 0, sid),
                note: "ghi chú riêng".into(),
                base_rev: 0,
            }),
        ])
        .await;
    assert!(
        r.results
            .iter()
            .all(|x| matches!(x.outcome, Outcome::Applied { .. })),
        "{r:?}"
    );
    let sheet_json = |page: &serde_json::Value| {
        page["changes"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find_map(|c| {
                c["entity"]["sheet"]
                    .as_object()
                    .filter(|s| s["id"] == sid.to_string())
            })
            .cloned()
            .unwrap()
    };
    let pull = format!("{}?cursor=0&limit=1000", paths::PULL);
    let (st, page, _) = owner.get::<serde_json::Value>(&pull).await;
    assert_eq!(st, 200);
    assert!(
        sheet_json(&page)["note_rev"].as_u64().unwrap() > 0,
        "the owner reads it"
    );

    let (st, page, _) = w.secretary().get::<serde_json::Value>(&pull).await;
    assert_eq!(st, 200);
    let progress = sheet_json(&page);
    assert!(!progress.contains_key("note_rev"), "pull: {progress:?}");
    assert_eq!(progress["status"], "draft");
    assert_eq!(progress["revision"], r.server_seq);
    assert_eq!(progress["rubric"]["id"], rubric.id);

    let revs = ocop_sync_server::http::SHEET_REVISIONS.replace("{id}", &sid.to_string());
    let (st, body, _) = w.secretary().get::<serde_json::Value>(&revs).await;
    assert_eq!(st, 200, "{body}");
    for rev in body.as_array().unwrap() {
        assert!(rev.get("note_rev").is_none(), "revisions: {rev}");
    }
}
