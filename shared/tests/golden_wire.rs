//! The sync wire format, frozen. Every shape the app and server exchange is
//! serialized here and compared with `tests/golden/wire/<name>.json`; a diff
//! is a protocol change (bump `PROTOCOL_VERSION`, keep old clients working).
//! `UPDATE_GOLDEN=1 cargo test -p ocop-shared --test golden_wire` rewrites them.

use std::collections::BTreeMap;

use ocop_shared::Centi;
use ocop_shared::council::{CouncilConfig, Participation};
use ocop_shared::rubric::RubricRef;
use ocop_shared::wire::*;
use rstest::rstest;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

fn u(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

fn rubric() -> RubricRef {
    RubricRef {
        id: "1048-food-processed-cereal".into(),
        version: 1,
    }
}

fn key() -> SheetKey {
    SheetKey {
        sheet_id: u(10),
        round_id: u(1),
        product_id: u(2),
        rubric: rubric(),
    }
}

fn answer() -> Answer {
    Answer {
        option: Some("c".into()),
        knockout: false,
        note: "Có hợp đồng thu mua với 12 hộ trong xã".into(),
        attachments: vec![
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        ],
    }
}

fn push_request() -> PushRequest {
    let ops = vec![
        Op::SetAnswers {
            sheet: key(),
            answers: vec![AnswerEdit {
                criterion: "1.1".into(),
                answer: answer(),
                base_rev: 0,
            }],
        },
        Op::SetNote {
            sheet: key(),
            note: "Sản phẩm đóng gói đẹp".into(),
            base_rev: 41,
        },
        Op::Submit { sheet_id: u(10) },
        Op::Reopen {
            sheet_id: u(10),
            reason: "Chênh lệch điểm quá 10".into(),
        },
        Op::SetParticipation {
            round_id: u(1),
            product_id: u(2),
            user_id: u(5),
            participation: Participation::Recused,
            reason: "Người thân của chủ thể".into(),
        },
        Op::ResolveConflict {
            sheet_id: u(10),
            conflict_id: u(20),
            answer: Some(answer()),
            note: None,
            base_rev: 57,
        },
        Op::Finalize {
            round_id: u(1),
            product_id: u(2),
            consensus_sheet: None,
            expected_mean: Some(Centi::from_hundredths(7267)),
            note: String::new(),
        },
        Op::Release {
            round_id: u(1),
            product_id: u(2),
        },
    ];
    PushRequest {
        protocol: PROTOCOL_VERSION,
        mutations: ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| Mutation {
                id: i as u64 + 1,
                client_time: Some("2026-11-28T09:15:00+07:00".into()),
                op,
            })
            .collect(),
    }
}

fn push_response() -> PushResponse {
    PushResponse {
        results: vec![
            MutationResult {
                id: 1,
                outcome: Outcome::Applied {
                    seq: 42,
                    sheet_id: Some(u(10)),
                },
            },
            MutationResult {
                id: 2,
                outcome: Outcome::Duplicate {
                    original: Box::new(Outcome::Applied {
                        seq: 40,
                        sheet_id: Some(u(10)),
                    }),
                },
            },
            MutationResult {
                id: 3,
                outcome: Outcome::Conflict {
                    seq: 42,
                    sheet_id: u(10),
                    conflicts: vec![u(20)],
                    criteria: vec!["1.1".into()],
                    applied: vec!["1.2".into()],
                },
            },
            MutationResult {
                id: 4,
                outcome: Outcome::Rejected {
                    code: RejectCode::Locked,
                    reason: "product SP-03 is finalized; its sheets are locked".into(),
                },
            },
        ],
        missing_attachments: vec![
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        ],
        server_seq: 42,
    }
}

fn sheet_state() -> SheetState {
    let mut answers = BTreeMap::new();
    answers.insert(
        "1.1".to_string(),
        AnswerState {
            answer: answer(),
            rev: 42,
            device_id: u(7),
        },
    );
    SheetState {
        id: u(10),
        round_id: u(1),
        product_id: u(2),
        owner_id: u(5),
        rubric: rubric(),
        status: SheetStatus::Draft,
        answers,
        note: "Ghi chú chung".into(),
        note_rev: 41,
        reopen_reason: None,
        revision: 42,
        conflicts: vec![ConflictRecord {
            id: u(20),
            field: ConflictField::Answer {
                criterion: "1.1".into(),
                theirs: Answer {
                    option: Some("b".into()),
                    ..Default::default()
                },
            },
            device_id: u(8),
            mutation_id: 3,
            base_rev: 0,
            current_rev: 42,
            seq: 43,
            resolved: false,
        }],
    }
}

fn pull_response() -> PullResponse {
    PullResponse {
        changes: vec![
            Change {
                seq: 3,
                entity: Entity::User(UserInfo {
                    id: u(5),
                    username: "thanhvien1".into(),
                    full_name: "Trần Thị Bình".into(),
                    role: AccountRole::Assessor,
                }),
            },
            Change {
                seq: 4,
                entity: Entity::Round(RoundInfo {
                    id: u(1),
                    name: "Đợt đánh giá OCOP tỉnh Hà Tĩnh 2026 — đợt 2".into(),
                    level: Level::Province,
                    province: "Hà Tĩnh".into(),
                    starts_on: "2026-11-23".into(),
                    ends_on: "2026-11-27".into(),
                    status: RoundStatus::Open,
                    council: CouncilConfig::default(),
                }),
            },
            Change {
                seq: 5,
                entity: Entity::Roster(RosterEntry {
                    round_id: u(1),
                    user_id: u(5),
                    full_name: "Trần Thị Bình".into(),
                    role: CouncilRole::Member,
                    active: true,
                }),
            },
            Change {
                seq: 6,
                entity: Entity::Product(ProductInfo {
                    id: u(2),
                    round_id: u(1),
                    code: "SP-03".into(),
                    name: "Bánh đa vừng Thạch Hà".into(),
                    producer: "HTX Bánh đa Thạch Hà".into(),
                    commune: "Xã Thạch Long".into(),
                    district: "Huyện Thạch Hà".into(),
                    province: "Hà Tĩnh".into(),
                    group: "Thực phẩm chế biến".into(),
                    subgroup: "Chế biến từ gạo, ngũ cốc".into(),
                    rubric: rubric(),
                }),
            },
            Change {
                seq: 7,
                entity: Entity::Participation(ParticipationInfo {
                    round_id: u(1),
                    product_id: u(2),
                    user_id: u(6),
                    participation: Participation::Abstained,
                    reason: String::new(),
                }),
            },
            Change {
                seq: 42,
                entity: Entity::Sheet(Box::new(sheet_state())),
            },
            Change {
                seq: 42,
                entity: Entity::Decision(Box::new(DecisionInfo {
                    round_id: u(1),
                    product_id: u(2),
                    finalized: true,
                    released: false,
                    result: None,
                    note: "Hội đồng thống nhất".into(),
                    decided_by: u(4),
                })),
            },
            Change {
                seq: 43,
                entity: Entity::Attachment(AttachmentMeta {
                    sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                        .into(),
                    size: 182_113,
                    content_type: "image/jpeg".into(),
                    received: 65_536,
                }),
            },
        ],
        next_cursor: 43,
        has_more: false,
    }
}

fn golden<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(name: &str, value: &T) {
    let text = serde_json::to_string_pretty(value).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/wire")
        .join(format!("{name}.json"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{text}\n")).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
    assert_eq!(
        text,
        want.trim_end_matches('\n'),
        "wire shape {name} changed"
    );
    // The frozen text must also still be read back into the same value.
    let back: T = serde_json::from_str(&want).unwrap();
    assert_eq!(&back, value);
}

#[test]
fn push_request_is_frozen() {
    golden("push-request", &push_request());
}

#[test]
fn push_response_is_frozen() {
    golden("push-response", &push_response());
}

#[test]
fn pull_response_is_frozen() {
    golden("pull-response", &pull_response());
}

#[test]
fn auth_shapes_are_frozen() {
    golden(
        "login-request",
        &LoginRequest {
            username: "chutich".into(),
            password: "mật-khẩu".into(),
            device_name: "Laptop chủ tịch".into(),
            device_id: None,
        },
    );
    golden(
        "enrol-request",
        &EnrolRequest {
            code: "K7QP-M2XD".into(),
            device_name: "Điện thoại Bình".into(),
        },
    );
    golden(
        "token-response",
        &TokenResponse {
            token: "ocop_dt_3q2+7w".into(),
            device_id: u(7),
            user: UserInfo {
                id: u(5),
                username: "thanhvien1".into(),
                full_name: "Trần Thị Bình".into(),
                role: AccountRole::Assessor,
            },
        },
    );
    golden(
        "enrolment-code-response",
        &EnrolmentCodeResponse {
            code: "K7QP-M2XD".into(),
            expires_at: "2026-11-29T09:00:00Z".into(),
            qr_payload: "ocop-enrol:1?server=http%3A%2F%2F127.0.0.1%3A8787&code=K7QP-M2XD".into(),
        },
    );
}

#[rstest]
#[case(ErrorCode::BadRequest, 400)]
#[case(ErrorCode::Unauthorized, 401)]
#[case(ErrorCode::Forbidden, 403)]
#[case(ErrorCode::NotFound, 404)]
#[case(ErrorCode::Conflict, 409)]
#[case(ErrorCode::PayloadTooLarge, 413)]
#[case(ErrorCode::Unprocessable, 422)]
#[case(ErrorCode::RateLimited, 429)]
#[case(ErrorCode::Internal, 500)]
fn error_codes_map_to_documented_statuses(#[case] code: ErrorCode, #[case] status: u16) {
    assert_eq!(code.http_status(), status);
}

#[test]
fn error_body_is_frozen() {
    golden(
        "error-body",
        &ErrorBody {
            code: ErrorCode::PayloadTooLarge,
            message:
                "request body is larger than the 8388608-byte limit; send fewer mutations per batch"
                    .into(),
            details: Some(serde_json::json!({ "limit_bytes": MAX_BODY_BYTES })),
        },
    );
}

#[test]
fn unknown_op_is_a_decode_error_not_a_panic() {
    let text = r#"{"protocol":1,"mutations":[{"id":1,"op":"delete_everything"}]}"#;
    assert!(serde_json::from_str::<PushRequest>(text).is_err());
}

/// Sheets stored or pulled before the compact answers shape (each answer with
/// its own `device_id`) still read as the same sheets.
#[test]
fn answers_in_the_older_shape_still_decode() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/wire/pull-response-answers-v1.json");
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("\"device_id\": \"01900000-0000-7000-8000-000000000007\""));
    let old: PullResponse = serde_json::from_str(&text).unwrap();
    assert_eq!(old, pull_response());
}

/// Answers written by several devices, interleaved, keep each answer's device.
#[test]
fn answers_from_several_devices_round_trip() {
    let mut sheet = sheet_state();
    let (a, b) = (Uuid::from_u128(0xa), Uuid::from_u128(0xb));
    for (i, dev) in [b, a, b, a, a].into_iter().enumerate() {
        sheet.answers.insert(
            format!("{}.{}", 2 + i, i),
            AnswerState {
                answer: Answer {
                    option: Some("a".into()),
                    ..Answer::default()
                },
                rev: 100 + i as u64,
                device_id: dev,
            },
        );
    }
    let text = serde_json::to_string(&sheet).unwrap();
    assert_eq!(text.matches(&a.to_string()).count(), 1, "{text}");
    assert_eq!(text.matches(&b.to_string()).count(), 1, "{text}");
    assert!(!text.contains("device_id\":\"0000"), "{text}");
    let back: SheetState = serde_json::from_str(&text).unwrap();
    assert_eq!(back, sheet);
}

/// Writers put `devices` first; a decoder must not depend on it.
#[test]
fn answers_with_criteria_before_devices_decode_the_same() {
    let sheet = sheet_state();
    let mut v = serde_json::to_value(&sheet).unwrap();
    let (devices, criteria) = (
        v["answers"]["devices"].to_string(),
        v["answers"]["criteria"].to_string(),
    );
    v["answers"] = serde_json::Value::Null;
    let text = serde_json::to_string(&v).unwrap().replace(
        "\"answers\":null",
        &format!("\"answers\":{{\"criteria\":{criteria},\"devices\":{devices}}}"),
    );
    assert!(
        text.find("\"criteria\"") < text.find("\"devices\""),
        "{text}"
    );
    let back: SheetState = serde_json::from_str(&text).unwrap();
    assert_eq!(back, sheet);
}

#[rstest]
#[case::index_past_the_devices(
    r#"{"devices":["00000000-0000-0000-0000-00000000000a"],"criteria":{"1.1":{"answer":{"option":"a"},"rev":1,"d":1}}}"#,
    "criterion \"1.1\" names device 1 of 1"
)]
#[case::index_past_the_devices_named_after_the_criteria(
    r#"{"criteria":{"1.1":{"answer":{"option":"a"},"rev":1,"d":1}},"devices":["00000000-0000-0000-0000-00000000000a"]}"#,
    "criterion \"1.1\" names device 1 of 1"
)]
#[case::criteria_twice(
    r#"{"devices":[],"criteria":{},"criteria":{}}"#,
    "\"criteria\" given twice"
)]
#[case::devices_without_criteria(
    r#"{"devices":["00000000-0000-0000-0000-00000000000a"]}"#,
    "expected both \"devices\" and \"criteria\""
)]
#[case::both_shapes_mixed(
    r#"{"devices":[],"criteria":{},"1.1":{"answer":{"option":"a"},"rev":1,"device_id":"00000000-0000-0000-0000-00000000000a"}}"#,
    "expected both \"devices\" and \"criteria\""
)]
#[case::devices_twice(
    r#"{"devices":[],"devices":[],"criteria":{}}"#,
    "\"devices\" given twice"
)]
fn malformed_answers_are_refused_with_a_reason(#[case] answers: &str, #[case] reason: &str) {
    let mut v = serde_json::to_value(sheet_state()).unwrap();
    // Spliced as text: duplicate keys would not survive a `Value`.
    v["answers"] = serde_json::Value::Null;
    let text = serde_json::to_string(&v)
        .unwrap()
        .replace("\"answers\":null", &format!("\"answers\":{answers}"));
    let err = serde_json::from_str::<SheetState>(&text)
        .unwrap_err()
        .to_string();
    assert!(err.contains(reason), "{err}");
}

#[rstest]
#[case::more(Some("true"), Some("42"), Some(42))]
#[case::the_last_page(Some("false"), Some("42"), None)]
#[case::no_headers(None, None, None)]
#[case::no_cursor(Some("true"), None, None)]
#[case::no_has_more(None, Some("42"), None)]
#[case::cursor_not_a_number(Some("true"), Some("forty-two"), None)]
#[case::has_more_not_a_bool(Some("yes"), Some("42"), None)]
fn only_headers_that_say_there_is_more_name_the_next_page(
    #[case] has_more: Option<&str>,
    #[case] cursor: Option<&str>,
    #[case] next: Option<u64>,
) {
    assert_eq!(
        ocop_shared::wire::pull_headers::next_page(has_more, cursor),
        next
    );
}
