//! Blind scoring enforced on push, pull and attachments: a table of
//! role × endpoint × own/other's data, every route of `route_table()` and
//! every council op for each role. Plus resumable, verified attachments.

mod common;

use common::*;
use ocop_shared::wire::{AttachmentMeta, Entity, Op, Outcome, RejectCode, paths};
use sha2::{Digest, Sha256};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Chair,
    Owner,
    OtherMember,
    Secretary,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sees {
    Full,
    StatusOnly,
    Nothing,
}

/// Who sees the owner's sheet before release, may write it, may fetch its photo, may use admin endpoints.
const MATRIX: &[(Who, Sees, Option<RejectCode>, bool, bool)] = &[
    //  who              pull sheet         push to that sheet              photo  admin
    (
        Who::Chair,
        Sees::Full,
        Some(RejectCode::Forbidden),
        true,
        false,
    ),
    (Who::Owner, Sees::Full, None, true, false),
    (
        Who::OtherMember,
        Sees::Nothing,
        Some(RejectCode::Forbidden),
        false,
        false,
    ),
    (
        Who::Secretary,
        Sees::StatusOnly,
        Some(RejectCode::Forbidden),
        false,
        false,
    ),
    (
        Who::Admin,
        Sees::Full,
        Some(RejectCode::Forbidden),
        true,
        true,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_matrix_role_by_endpoint_by_own_or_others_data() {
    let w = world().await;
    let rubric = rubric_of(&w, 0);
    let owner = w.member(0);
    let photo = b"anh chup bao bi san pham".to_vec();
    let sha = hex::encode(Sha256::digest(&photo));
    let sid = Uuid::now_v7();
    let mut edit = one_answer(&rubric, 0, 0, 0);
    edit.answer.attachments = vec![sha.clone()];
    edit.answer.note = "bao bì đạt".into();
    let r = owner
        .push(vec![owner.mutation(set_answers(&w, 0, sid, vec![edit]))])
        .await;
    assert_eq!(r.missing_attachments, vec![sha.clone()]);
    let up = owner
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{sha}", paths::ATTACHMENTS),
        )
        .await
        .header("content-type", "image/jpeg")
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(up.status().as_u16(), 200);
    let r = owner.push(vec![]).await;
    assert!(
        r.missing_attachments.is_empty(),
        "uploaded: no longer missing"
    );

    for &(who, sees, push_reject, photo_ok, admin_ok) in MATRIX {
        let d = match who {
            Who::Chair => w.chair(),
            Who::Owner => owner,
            Who::OtherMember => w.member(1),
            Who::Secretary => w.secretary(),
            Who::Admin => &w.admin,
        };
        // pull
        let sheet = d.pull_all().await.into_iter().find_map(|c| match c.entity {
            Entity::Sheet(s) if s.id == sid => Some(s),
            _ => None,
        });
        let got = match &sheet {
            None => Sees::Nothing,
            Some(s) if s.answers.is_empty() => Sees::StatusOnly,
            Some(_) => Sees::Full,
        };
        assert_eq!(got, sees, "{who:?} pull");
        // push
        let r = d
            .push(vec![d.mutation(set_answers(
                &w,
                0,
                sid,
                vec![one_answer(&rubric, 1, 0, 0)],
            ))])
            .await;
        match push_reject {
            None => assert!(
                matches!(r.results[0].outcome, Outcome::Applied { .. }),
                "{who:?} push {r:?}"
            ),
            Some(code) => assert!(
                matches!(&r.results[0].outcome, Outcome::Rejected { code: c, .. } if *c == code),
                "{who:?} push {r:?}"
            ),
        }
        // attachment
        let resp = d
            .raw(
                reqwest::Method::GET,
                &format!("{}/{sha}", paths::ATTACHMENTS),
            )
            .await
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert_eq!(status == 200, photo_ok, "{who:?} photo got {status}");
        if photo_ok {
            assert_eq!(resp.bytes().await.unwrap().to_vec(), photo);
        } else {
            assert_eq!(status, 404, "{who:?}: hidden as not found");
        }
        // revisions endpoint follows the same rule
        let (st, _, _) = d
            .get::<serde_json::Value>(&format!("/api/v1/sheets/{sid}/revisions"))
            .await;
        assert_eq!(st == 200, sees != Sees::Nothing, "{who:?} revisions {st}");
        // admin endpoints
        for p in [
            paths::ADMIN_USERS,
            paths::ADMIN_QUARANTINE,
            paths::ADMIN_AUDIT,
            paths::ADMIN_ROUNDS,
        ] {
            let (st, _, _) = d.get::<serde_json::Value>(p).await;
            assert_eq!(st, if admin_ok { 200 } else { 403 }, "{who:?} GET {p}");
        }
    }
    // No token at all: 401 everywhere that needs one.
    let http = reqwest::Client::new();
    for p in [paths::PULL, paths::ME, paths::ADMIN_USERS] {
        let r = http.get(format!("{}{p}", w.url())).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{p}");
    }
    // Members do not see a round they are not on: a second round's data stays hidden.
    let (st, body, round2) = w
        .admin
        .post::<_, ocop_shared::wire::RoundInfo>(
            paths::ADMIN_ROUNDS,
            &serde_json::json!({"name": "đợt 3", "level": "province", "province": "Hà Tĩnh",
                "starts_on": "2026-12-01", "ends_on": "2026-12-05"}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let round2 = round2.unwrap().id;
    let on_round2 = w.member(1);
    let r = w
        .admin
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{round2}/roster", paths::ADMIN_ROUNDS),
        )
        .await
        .json(&serde_json::json!({"members": [{"user_id": on_round2.user_id, "role": "chair"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut product = serde_json::to_value(&w.demo.products[0]).unwrap();
    product["round_id"] = serde_json::json!(round2);
    product["code"] = serde_json::json!("SP-99");
    let (st, body, _) = w
        .admin
        .post::<_, serde_json::Value>(paths::ADMIN_PRODUCTS, &product)
        .await;
    assert_eq!(st, 201, "{body}");
    let of_round2 = |changes: Vec<ocop_shared::wire::Change>| {
        changes
            .into_iter()
            .filter(|c| match &c.entity {
                Entity::Round(r) => r.id == round2,
                Entity::Roster(r) => r.round_id == round2,
                Entity::Product(p) => p.round_id == round2,
                _ => false,
            })
            .count()
    };
    assert_eq!(
        of_round2(on_round2.pull_all().await),
        3,
        "its council sees round, roster line and product"
    );
    for d in [owner, w.chair(), w.secretary()] {
        assert_eq!(of_round2(d.pull_all().await), 0, "not on round 2");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_resume_verify_and_refuse_oversize() {
    let w = world().await;
    let d = w.member(0);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let sha = hex::encode(Sha256::digest(&data));
    let url = format!("{}/{sha}", paths::ATTACHMENTS);
    let total = data.len();
    // First chunk.
    let r = d
        .raw(
            reqwest::Method::PUT,
            &format!("{url}?offset=0&total={total}"),
        )
        .await
        .body(data[..70_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let m: AttachmentMeta = r.json().await.unwrap();
    assert_eq!((m.received, m.size), (70_000, total as u64));
    // HEAD says how much arrived.
    let h = d
        .raw(reqwest::Method::HEAD, &url)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(h.headers()["upload-offset"], "70000");
    assert_eq!(h.headers()["x-ocop-complete"], "false");
    // A wrong offset is refused with the offset to resume from.
    let r = d
        .raw(
            reqwest::Method::PUT,
            &format!("{url}?offset=100&total={total}"),
        )
        .await
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["details"]["received"], 70_000);
    // Rest via Content-Range.
    let r = d
        .raw(reqwest::Method::PUT, &url)
        .await
        .header(
            "content-range",
            format!("bytes 70000-{}/{total}", total - 1),
        )
        .body(data[70_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let m: AttachmentMeta = r.json().await.unwrap();
    assert_eq!(m.received, total as u64);
    let h = d
        .raw(reqwest::Method::HEAD, &url)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(h.headers()["x-ocop-complete"], "true");
    let got = d
        .raw(reqwest::Method::GET, &url)
        .await
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.to_vec(), data);
    assert!(
        w.server
            .state
            .data_dir
            .join("attachments")
            .join(&sha)
            .exists(),
        "content-addressed file"
    );

    // Bytes that do not match the hash: 422 and discarded.
    let liar = hex::encode(Sha256::digest(b"something else"));
    let r = d
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{liar}", paths::ATTACHMENTS),
        )
        .await
        .body(b"not that".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let h = d
        .raw(
            reqwest::Method::HEAD,
            &format!("{}/{liar}", paths::ATTACHMENTS),
        )
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(h.status().as_u16(), 404, "discarded: start again at 0");

    // Over the limit: a clear terminal 413 that states it.
    let too_big = ocop_shared::wire::MAX_ATTACHMENT_BYTES + 1;
    let r = d
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{liar}?offset=0&total={too_big}", paths::ATTACHMENTS),
        )
        .await
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&ocop_shared::wire::MAX_ATTACHMENT_BYTES.to_string())
    );
    // An offset whose end overflows u64: 400 in the one error shape, no panic.
    let r = d
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{liar}?offset={}", paths::ATTACHMENTS, u64::MAX),
        )
        .await
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: ocop_shared::wire::ErrorBody = r.json().await.unwrap();
    assert_eq!(body.code, ocop_shared::wire::ErrorCode::BadRequest);
    assert!(body.message.contains("offset"), "{}", body.message);
    // Not a sha-256: 400.
    let r = d
        .raw(
            reqwest::Method::PUT,
            &format!("{}/nothex", paths::ATTACHMENTS),
        )
        .await
        .body(vec![1u8])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

// ------------------------------------------------------------------ every route × every role

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Admin,
    Chair,
    ViceChair,
    Owner,
    OtherMember,
    Secretary,
    NoToken,
}

const ROLES: [Role; 7] = [
    Role::Admin,
    Role::Chair,
    Role::ViceChair,
    Role::Owner,
    Role::OtherMember,
    Role::Secretary,
    Role::NoToken,
];

/// The demo world with member 6 made vice-chair (the demo council has none).
async fn world_with_vice_chair() -> World {
    let w = world().await;
    let members: Vec<_> = w
        .demo
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let role = if i == 7 {
                ocop_shared::wire::CouncilRole::ViceChair
            } else {
                u.role
            };
            serde_json::json!({"user_id": u.id, "role": role})
        })
        .collect();
    let r = w
        .admin
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{}/roster", paths::ADMIN_ROUNDS, w.demo.round_id),
        )
        .await
        .json(&serde_json::json!({ "members": members }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    w
}

fn device_of(w: &World, role: Role) -> Option<&Device> {
    match role {
        Role::Admin => Some(&w.admin),
        Role::Chair => Some(w.chair()),
        Role::ViceChair => Some(w.member(6)),
        Role::Owner => Some(w.member(0)),
        Role::OtherMember => Some(w.member(1)),
        Role::Secretary => Some(w.secretary()),
        Role::NoToken => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_as_the_table_says() {
    let w = world_with_vice_chair().await;
    let rubric = rubric_of(&w, 0);
    let owner = w.member(0);
    // The owner's draft sheet with a photo (before any release).
    let photo = b"anh nhan mac san pham".to_vec();
    let sha = hex::encode(Sha256::digest(&photo));
    let sid = Uuid::now_v7();
    let mut edit = one_answer(&rubric, 0, 0, 0);
    edit.answer.attachments = vec![sha.clone()];
    owner
        .push(vec![owner.mutation(set_answers(&w, 0, sid, vec![edit]))])
        .await;
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
    // A throwaway device to revoke, and a second round to administer.
    let lan = w.demo.user("lan.tt").unwrap();
    let (_, _, t) = login(w.url(), &lan.username, &lan.password).await;
    let spare_device = t.unwrap().device_id;
    let (st, body, round2) = w
        .admin
        .post::<_, ocop_shared::wire::RoundInfo>(
            paths::ADMIN_ROUNDS,
            &serde_json::json!({"name": "đợt 3", "level": "province", "province": "Hà Tĩnh",
                "starts_on": "2026-12-01", "ends_on": "2026-12-05"}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let round2 = round2.unwrap().id;
    let cereal = &w.demo.products[0].rubric;
    let http = reqwest::Client::new();

    let mut covered = 0;
    for (method, template) in ocop_sync_server::http::route_table() {
        for (n, role) in ROLES.into_iter().enumerate() {
            let token_ok = role != Role::NoToken;
            let admin_only = |ok: u16| match role {
                Role::Admin => ok,
                Role::NoToken => 401,
                _ => 403,
            };
            let tag = format!("{n}-{}", Uuid::now_v7().simple());
            let mut body: Option<serde_json::Value> = None;
            let mut raw_body: Option<Vec<u8>> = None;
            let att = format!("{}/{{sha256}}", paths::ATTACHMENTS);
            let (path, expected): (String, u16) = match (method, template.as_str()) {
                ("GET", p) if p == paths::HEALTH || p == paths::OPENAPI => (p.into(), 200),
                ("POST", p) if p == paths::LOGIN => {
                    // Public: the token, if any, is ignored.
                    body = Some(serde_json::json!({"username": lan.username,
                        "password": lan.password, "device_name": tag}));
                    (p.into(), 200)
                }
                ("POST", p) if p == paths::ENROL => {
                    let (_, _, code) = w
                        .admin
                        .post::<_, ocop_shared::wire::EnrolmentCodeResponse>(
                            paths::ADMIN_ENROLMENT_CODES,
                            &serde_json::json!({"user_id": lan.id}),
                        )
                        .await;
                    body =
                        Some(serde_json::json!({"code": code.unwrap().code, "device_name": tag}));
                    (p.into(), 200)
                }
                ("GET", p) if p == paths::ME => (p.into(), if token_ok { 200 } else { 401 }),
                ("POST", p) if p == paths::PUSH => {
                    body = Some(serde_json::json!({"protocol": 1, "mutations": []}));
                    (p.into(), if token_ok { 200 } else { 401 })
                }
                ("GET", p) if p == paths::PULL => {
                    (format!("{p}?cursor=0"), if token_ok { 200 } else { 401 })
                }
                ("PUT", p) if p == att => {
                    let bytes = format!("ảnh của {tag}").into_bytes();
                    let h = hex::encode(Sha256::digest(&bytes));
                    raw_body = Some(bytes);
                    (
                        format!("{}/{h}", paths::ATTACHMENTS),
                        if token_ok { 200 } else { 401 },
                    )
                }
                // The same visibility as GET: hidden is 404 (issue 21).
                ("HEAD", p) if p == att => (
                    format!("{}/{sha}", paths::ATTACHMENTS),
                    match role {
                        Role::Admin | Role::Chair | Role::Owner => 200,
                        Role::NoToken => 401,
                        Role::ViceChair | Role::OtherMember | Role::Secretary => 404,
                    },
                ),
                ("GET", p) if p == att => (
                    format!("{}/{sha}", paths::ATTACHMENTS),
                    match role {
                        Role::Admin | Role::Chair | Role::Owner => 200,
                        Role::NoToken => 401,
                        // Blind scoring: hidden as not found, not forbidden.
                        Role::ViceChair | Role::OtherMember | Role::Secretary => 404,
                    },
                ),
                ("GET", p) if p == ocop_sync_server::http::SHEET_REVISIONS => (
                    p.replace("{id}", &sid.to_string()),
                    match role {
                        Role::Admin | Role::Chair | Role::Owner | Role::Secretary => 200,
                        Role::NoToken => 401,
                        Role::ViceChair | Role::OtherMember => 404,
                    },
                ),
                ("GET", p)
                    if [
                        paths::ADMIN_USERS,
                        paths::ADMIN_DEVICES,
                        paths::ADMIN_RUBRICS,
                        paths::ADMIN_ROUNDS,
                        paths::ADMIN_QUARANTINE,
                        paths::ADMIN_AUDIT,
                    ]
                    .contains(&p) =>
                {
                    (p.into(), admin_only(200))
                }
                ("GET", p) if p == paths::ADMIN_EXPORT => {
                    (format!("{p}?round_id={}", w.demo.round_id), admin_only(200))
                }
                ("POST", p) if p == paths::ADMIN_USERS => {
                    body = Some(
                        serde_json::json!({"username": format!("u{}", n + 100 * covered),
                        "full_name": "Người thử", "role": "assessor"}),
                    );
                    (p.into(), admin_only(201))
                }
                ("POST", p) if p == paths::ADMIN_ENROLMENT_CODES => {
                    body = Some(serde_json::json!({"user_id": lan.id}));
                    (p.into(), admin_only(201))
                }
                ("POST", p) if p == format!("{}/{{id}}/revoke", paths::ADMIN_DEVICES) => {
                    body = Some(serde_json::json!({}));
                    (
                        p.replace("{id}", &spare_device.to_string()),
                        admin_only(204),
                    )
                }
                ("POST", p) if p == paths::ADMIN_RUBRICS => {
                    raw_body = Some(
                        ocop_shared::bundled::FOOD_PROCESSED_CEREAL_1048
                            .as_bytes()
                            .to_vec(),
                    );
                    (p.into(), admin_only(200))
                }
                ("POST", p)
                    if p == format!("{}/{{id}}/{{version}}/publish", paths::ADMIN_RUBRICS) =>
                {
                    (
                        p.replace("{id}", &cereal.id)
                            .replace("{version}", &cereal.version.to_string()),
                        admin_only(200),
                    )
                }
                ("POST", p) if p == paths::ADMIN_ROUNDS => {
                    body = Some(serde_json::json!({"name": tag, "level": "commune",
                        "province": "Hà Tĩnh", "starts_on": "2026-12-01", "ends_on": "2026-12-02"}));
                    (p.into(), admin_only(201))
                }
                ("PUT", p) if p == format!("{}/{{id}}/roster", paths::ADMIN_ROUNDS) => {
                    body = Some(serde_json::json!({"members": [
                        {"user_id": w.member(1).user_id, "role": "chair"}]}));
                    (p.replace("{id}", &round2.to_string()), admin_only(200))
                }
                ("PUT", p) if p == format!("{}/{{id}}/status", paths::ADMIN_ROUNDS) => {
                    body = Some(serde_json::json!({"status": "open"}));
                    (p.replace("{id}", &round2.to_string()), admin_only(200))
                }
                ("POST", p) if p == paths::ADMIN_PRODUCTS => {
                    let mut b = serde_json::to_value(&w.demo.products[0]).unwrap();
                    b["round_id"] = serde_json::json!(round2);
                    b["code"] = serde_json::json!(format!("SP-{tag}"));
                    body = Some(b);
                    (p.into(), admin_only(201))
                }
                (m, p) => panic!("route {m} {p} has no row in the authz table: add one"),
            };
            let mut req = http.request(method.parse().unwrap(), format!("{}{path}", w.url()));
            if let Some(d) = device_of(&w, role) {
                req = req.bearer_auth(&d.token);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            if let Some(b) = raw_body.take() {
                req = req.body(b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            assert_eq!(status, expected, "{role:?} {method} {template}: {text}");
            if status >= 400 && method != "HEAD" {
                let e: ocop_shared::wire::ErrorBody =
                    serde_json::from_str(&text).unwrap_or_else(|e| {
                        panic!("{role:?} {method} {template}: not the error shape ({e}): {text}")
                    });
                assert_eq!(e.code.http_status(), status);
            }
        }
        covered += 1;
    }
    assert_eq!(covered, ocop_sync_server::http::route_table().len());
}

// ------------------------------------------------------------------ every chair op × every role

fn outcome_of(r: &ocop_shared::wire::PushResponse) -> Result<(), RejectCode> {
    match &r.results[0].outcome {
        Outcome::Applied { .. } | Outcome::Conflict { .. } => Ok(()),
        Outcome::Rejected { code, .. } => Err(*code),
        o => panic!("unexpected {o:?}"),
    }
}

/// Product 0 as each role pulls it: (sheets seen in full, sheets seen as progress, decision seen).
async fn view_of(d: &Device, product: Uuid) -> (usize, usize, bool) {
    let changes = d.pull_all().await;
    let mut sheets = std::collections::BTreeMap::new();
    let mut decision = false;
    for c in changes {
        match c.entity {
            Entity::Sheet(s) if s.product_id == product => {
                sheets.insert(s.id, s.answers.is_empty());
            }
            Entity::Decision(x) if x.product_id == product => decision = true,
            _ => {}
        }
    }
    let progress = sheets.values().filter(|p| **p).count();
    (sheets.len() - progress, progress, decision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_council_op_answers_every_role_as_the_table_says() {
    use ocop_shared::council::Participation;
    let w = world_with_vice_chair().await;
    let round = w.demo.round_id;
    let product = w.demo.products[0].id;
    let rubric = rubric_of(&w, 0);
    let owner = w.member(0);
    let lan = w.demo.user("lan.tt").unwrap();
    let (_, _, t) = login(w.url(), &lan.username, &lan.password).await;
    let owner_b = Device::new(w.url(), t.unwrap());
    // Everyone but the secretary fills product 0; the owner's second device
    // makes two conflicts on the owner's sheet.
    let mut sheet_of = std::collections::HashMap::new();
    for (i, d) in w.devices[..8].iter().enumerate() {
        let sid = Uuid::now_v7();
        sheet_of.insert(d.user_id, sid);
        let r = d
            .push(vec![d.mutation(set_answers(
                &w,
                0,
                sid,
                full_answers(&rubric, i % 3),
            ))])
            .await;
        assert!(
            matches!(r.results[0].outcome, Outcome::Applied { .. }),
            "{r:?}"
        );
    }
    let own_sheet = sheet_of[&owner.user_id];
    let r = owner_b
        .push(vec![owner_b.mutation(set_answers(
            &w,
            0,
            own_sheet,
            vec![one_answer(&rubric, 0, 2, 1), one_answer(&rubric, 1, 2, 1)],
        ))])
        .await;
    let Outcome::Conflict { conflicts, .. } = &r.results[0].outcome else {
        panic!("{r:?}")
    };
    let conflicts = conflicts.clone();
    assert_eq!(conflicts.len(), 2);
    let revs: Vec<u64> = {
        let s = view_sheet(owner, own_sheet).await;
        rubric
            .criteria()
            .take(2)
            .map(|(_, _, c)| s.answers[&c.code].rev)
            .collect()
    };

    // Before release: who reads product 0 (8 sheets exist).
    let expect_before = [
        (Role::Admin, (8, 0, false)),
        (Role::Chair, (8, 0, false)),
        (Role::ViceChair, (1, 0, false)),
        (Role::Owner, (1, 0, false)),
        (Role::OtherMember, (1, 0, false)),
        (Role::Secretary, (0, 8, false)),
    ];
    for (role, want) in expect_before {
        let got = view_of(device_of(&w, role).unwrap(), product).await;
        assert_eq!(got, want, "{role:?} before finalize");
    }

    // Each op, tried by every role: refused roles first (they change nothing),
    // then the roles allowed to do it.
    type MakeOp<'a> = Box<dyn Fn(Role) -> Op + 'a>;
    let other_user = w.member(1).user_id;
    type Row<'a> = (&'a str, MakeOp<'a>, &'a [(Role, Result<(), RejectCode>)]);
    let ops: Vec<Row> = vec![
        (
            "set_participation recuse another member",
            Box::new(|_| Op::SetParticipation {
                round_id: round,
                product_id: w.demo.products[1].id,
                user_id: other_user,
                participation: Participation::Recused,
                reason: "người nhà".into(),
            }),
            &[
                (Role::Admin, Err(RejectCode::Forbidden)),
                (Role::ViceChair, Err(RejectCode::Forbidden)),
                (Role::Owner, Err(RejectCode::Forbidden)),
                (Role::OtherMember, Err(RejectCode::Forbidden)),
                (Role::Secretary, Err(RejectCode::Forbidden)),
                (Role::Chair, Ok(())),
            ],
        ),
        (
            "resolve_conflict on the owner's sheet",
            Box::new(|role| {
                // The owner resolves the first conflict, the chair the second.
                let i = usize::from(role == Role::Chair);
                Op::ResolveConflict {
                    sheet_id: own_sheet,
                    conflict_id: conflicts[i],
                    answer: Some(one_answer(&rubric, i, 2, 0).answer),
                    note: None,
                    base_rev: revs[i],
                }
            }),
            &[
                (Role::Admin, Err(RejectCode::Forbidden)),
                (Role::ViceChair, Err(RejectCode::Forbidden)),
                (Role::OtherMember, Err(RejectCode::Forbidden)),
                (Role::Secretary, Err(RejectCode::Forbidden)),
                (Role::Owner, Ok(())),
                (Role::Chair, Ok(())),
            ],
        ),
        (
            "submit the owner's sheet",
            Box::new(|_| Op::Submit {
                sheet_id: own_sheet,
            }),
            &[
                (Role::Admin, Err(RejectCode::Forbidden)),
                (Role::Chair, Err(RejectCode::Forbidden)),
                (Role::ViceChair, Err(RejectCode::Forbidden)),
                (Role::OtherMember, Err(RejectCode::Forbidden)),
                (Role::Secretary, Err(RejectCode::Forbidden)),
                (Role::Owner, Ok(())),
            ],
        ),
        (
            "reopen the owner's sheet",
            Box::new(|_| Op::Reopen {
                sheet_id: own_sheet,
                reason: "bổ sung minh chứng".into(),
            }),
            &[
                (Role::Admin, Err(RejectCode::Forbidden)),
                (Role::ViceChair, Err(RejectCode::Forbidden)),
                (Role::Owner, Err(RejectCode::Forbidden)),
                (Role::OtherMember, Err(RejectCode::Forbidden)),
                (Role::Secretary, Err(RejectCode::Forbidden)),
                (Role::Chair, Ok(())),
            ],
        ),
    ];
    for (name, make, table) in &ops {
        for (role, want) in table.iter() {
            let d = device_of(&w, *role).unwrap();
            let r = d.push(vec![d.mutation(make(*role))]).await;
            assert_eq!(outcome_of(&r), *want, "{role:?} {name}: {r:?}");
        }
    }
    // Everyone submits (the owner again after the reopen), then finalize and release.
    for d in &w.devices[..8] {
        let r = d
            .push(vec![d.mutation(Op::Submit {
                sheet_id: sheet_of[&d.user_id],
            })])
            .await;
        assert_eq!(outcome_of(&r), Ok(()), "{r:?}");
    }
    let finalize = Op::Finalize {
        round_id: round,
        product_id: product,
        consensus_sheet: None,
        expected_mean: None,
        note: String::new(),
    };
    let release = Op::Release {
        round_id: round,
        product_id: product,
    };
    for op in [finalize, release] {
        for role in [
            Role::Admin,
            Role::ViceChair,
            Role::Owner,
            Role::OtherMember,
            Role::Secretary,
        ] {
            let d = device_of(&w, role).unwrap();
            let r = d.push(vec![d.mutation(op.clone())]).await;
            assert_eq!(
                outcome_of(&r),
                Err(RejectCode::Forbidden),
                "{role:?} {op:?}"
            );
        }
        if matches!(op, Op::Release { .. }) {
            // Finalized, not released: the decision is the chair's and the secretary's.
            for (role, want) in [
                (Role::Chair, (8, 0, true)),
                (Role::ViceChair, (1, 0, false)),
                (Role::Owner, (1, 0, false)),
                (Role::Secretary, (0, 8, true)),
            ] {
                let got = view_of(device_of(&w, role).unwrap(), product).await;
                assert_eq!(got, want, "{role:?} after finalize, before release");
            }
        }
        let r = w.chair().push(vec![w.chair().mutation(op.clone())]).await;
        assert_eq!(outcome_of(&r), Ok(()), "chair {op:?}: {r:?}");
    }
    // After release every council member reads every sheet and the decision.
    for (role, want) in [
        (Role::Chair, (8, 0, true)),
        (Role::ViceChair, (8, 0, true)),
        (Role::Owner, (8, 0, true)),
        (Role::OtherMember, (8, 0, true)),
        (Role::Secretary, (0, 8, true)),
    ] {
        let got = view_of(device_of(&w, role).unwrap(), product).await;
        assert_eq!(got, want, "{role:?} after release");
    }
}

async fn view_sheet(d: &Device, sid: Uuid) -> ocop_shared::wire::SheetState {
    d.pull_all()
        .await
        .into_iter()
        .rev()
        .find_map(|c| match c.entity {
            Entity::Sheet(s) if s.id == sid => Some(*s),
            _ => None,
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recused_chair_reads_the_product_blind_and_the_presiding_vice_chair_reads_it() {
    use ocop_shared::council::Participation;
    let w = world_with_vice_chair().await;
    let round = w.demo.round_id;
    let product = w.demo.products[2].id;
    let rubric = rubric_of(&w, 2);
    let chair = w.chair();
    let r = chair
        .push(vec![chair.mutation(Op::SetParticipation {
            round_id: round,
            product_id: product,
            user_id: chair.user_id,
            participation: Participation::Recused,
            reason: "chủ thể là người thân".into(),
        })])
        .await;
    assert_eq!(outcome_of(&r), Ok(()), "{r:?}");
    // The seven members (vice-chair included) score and submit.
    for (i, d) in w.devices[1..8].iter().enumerate() {
        let sid = Uuid::now_v7();
        let r = d
            .push(vec![
                d.mutation(set_answers(&w, 2, sid, full_answers(&rubric, i % 3))),
                d.mutation(Op::Submit { sheet_id: sid }),
            ])
            .await;
        assert!(
            r.results
                .iter()
                .all(|x| matches!(x.outcome, Outcome::Applied { .. })),
            "{r:?}"
        );
    }
    let before = [
        (Role::Chair, (0, 0, false)),
        (Role::ViceChair, (7, 0, false)),
        (Role::Owner, (1, 0, false)),
        (Role::Secretary, (0, 7, false)),
        (Role::Admin, (7, 0, false)),
    ];
    for (role, want) in before {
        let got = view_of(device_of(&w, role).unwrap(), product).await;
        assert_eq!(got, want, "{role:?} before release");
    }
    // The vice-chair presides: finalizes (the recused chair cannot) and releases.
    let vice = w.member(6);
    let finalize = Op::Finalize {
        round_id: round,
        product_id: product,
        consensus_sheet: None,
        expected_mean: None,
        note: String::new(),
    };
    let r = chair.push(vec![chair.mutation(finalize.clone())]).await;
    assert_eq!(outcome_of(&r), Err(RejectCode::Forbidden), "{r:?}");
    let r = vice.push(vec![vice.mutation(finalize)]).await;
    assert_eq!(outcome_of(&r), Ok(()), "{r:?}");
    let got = view_of(chair, product).await;
    assert_eq!(
        got,
        (0, 0, false),
        "finalized but not released: the chair still reads nothing"
    );
    let r = vice
        .push(vec![vice.mutation(Op::Release {
            round_id: round,
            product_id: product,
        })])
        .await;
    assert_eq!(outcome_of(&r), Ok(()), "{r:?}");
    for role in [Role::Chair, Role::ViceChair, Role::Owner] {
        let got = view_of(device_of(&w, role).unwrap(), product).await;
        assert_eq!(got, (7, 0, true), "{role:?} after release");
    }
    // On a product the chair is not recused from, the chair still reads everything.
    let d = w.member(0);
    let r = d
        .push(vec![d.mutation(set_answers(
            &w,
            3,
            Uuid::now_v7(),
            vec![one_answer(&rubric_of(&w, 3), 0, 0, 0)],
        ))])
        .await;
    assert_eq!(outcome_of(&r), Ok(()));
    assert_eq!(view_of(chair, w.demo.products[3].id).await, (1, 0, false));
}
