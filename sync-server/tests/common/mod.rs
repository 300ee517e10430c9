//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use ocop_shared::rubric::Rubric;
use ocop_shared::wire::{
    Answer, AnswerEdit, EnrolRequest, Entity, Mutation, Op, Outcome, PROTOCOL_VERSION,
    PullResponse, PushRequest, PushResponse, SheetKey, SheetState, TokenResponse, paths,
};
use ocop_sync_server::demo::{self, DemoInfo};
use ocop_sync_server::sqlite::SqliteStore;
use ocop_sync_server::testing::{self, TestServer};
use ocop_sync_server::{Principal, Store};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A device talking to a server.
#[derive(Clone)]
pub struct Device {
    pub url: String,
    pub token: String,
    pub device_id: Uuid,
    pub user_id: Uuid,
    pub http: reqwest::Client,
    next_id: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Device {
    pub fn new(url: &str, t: TokenResponse) -> Device {
        Device {
            url: url.to_string(),
            token: t.token,
            device_id: t.device_id,
            user_id: t.user.id,
            http: reqwest::Client::builder().timeout(TIMEOUT).build().unwrap(),
            next_id: std::sync::Arc::new(1.into()),
        }
    }

    pub fn next_id(&self) -> u64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    pub fn mutation(&self, op: Op) -> Mutation {
        Mutation {
            id: self.next_id(),
            client_time: None,
            op,
        }
    }

    pub async fn raw(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(&self.token)
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> (u16, serde_json::Value, Option<T>) {
        let r = self
            .raw(reqwest::Method::GET, path)
            .await
            .send()
            .await
            .unwrap();
        decode(r).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> (u16, serde_json::Value, Option<T>) {
        let r = self
            .raw(reqwest::Method::POST, path)
            .await
            .json(body)
            .send()
            .await
            .unwrap();
        decode(r).await
    }

    pub async fn push_status(
        &self,
        mutations: Vec<Mutation>,
    ) -> (u16, serde_json::Value, Option<PushResponse>) {
        self.post(
            paths::PUSH,
            &PushRequest {
                protocol: PROTOCOL_VERSION,
                mutations,
            },
        )
        .await
    }

    pub async fn push(&self, mutations: Vec<Mutation>) -> PushResponse {
        let (status, body, resp) = self.push_status(mutations).await;
        assert_eq!(status, 200, "push failed: {body}");
        resp.unwrap()
    }

    pub async fn pull_from(&self, cursor: u64, limit: usize) -> PullResponse {
        let (status, body, resp) = self
            .get(&format!("{}?cursor={cursor}&limit={limit}", paths::PULL))
            .await;
        assert_eq!(status, 200, "pull failed: {body}");
        resp.unwrap()
    }

    /// Pulls everything from 0, following pages. Bounded, and the cursor must
    /// advance on every page that says there is more: a server that loops
    /// fails the test instead of hanging it.
    pub async fn pull_all(&self) -> Vec<ocop_shared::wire::Change> {
        const MAX_PAGES: usize = 1000;
        let mut cursor = 0;
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let p = self.pull_from(cursor, 1000).await;
            out.extend(p.changes);
            if !p.has_more {
                return out;
            }
            assert!(
                p.next_cursor > cursor,
                "pull says has_more but the cursor did not advance from {cursor}"
            );
            cursor = p.next_cursor;
        }
        panic!("pull did not finish within {MAX_PAGES} pages");
    }
}

pub async fn decode<T: DeserializeOwned>(
    r: reqwest::Response,
) -> (u16, serde_json::Value, Option<T>) {
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    let typed = serde_json::from_slice(&bytes).ok();
    (status, value, typed)
}

/// A running server seeded with the demo round, and a device per council member.
pub struct World {
    pub _dir: tempfile::TempDir,
    pub server: TestServer,
    pub demo: DemoInfo,
    pub admin: Device,
    /// Same order as `demo.users`: chair, 7 members, secretary.
    pub devices: Vec<Device>,
}

impl World {
    pub fn chair(&self) -> &Device {
        &self.devices[0]
    }
    pub fn member(&self, i: usize) -> &Device {
        &self.devices[1 + i]
    }
    pub fn secretary(&self) -> &Device {
        &self.devices[8]
    }
    pub fn url(&self) -> &str {
        &self.server.url
    }
}

pub async fn enrol(url: &str, code: &str, name: &str) -> Device {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}{}", paths::ENROL))
        .json(&EnrolRequest {
            code: code.to_string(),
            device_name: name.to_string(),
        })
        .send()
        .await
        .unwrap();
    let (status, body, t) = decode::<TokenResponse>(r).await;
    assert_eq!(status, 200, "enrol failed: {body}");
    Device::new(url, t.unwrap())
}

pub async fn login(
    url: &str,
    username: &str,
    password: &str,
) -> (u16, serde_json::Value, Option<TokenResponse>) {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}{}", paths::LOGIN))
        .json(
            &serde_json::json!({"username": username, "password": password, "device_name": "test"}),
        )
        .send()
        .await
        .unwrap();
    decode(r).await
}

pub async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let server = testing::spawn(dir.path()).await.unwrap();
    let store = server.state.store.clone();
    let info = tokio::task::spawn_blocking(move || demo::seed(&*store))
        .await
        .unwrap()
        .unwrap();
    let (status, body, t) = login(&server.url, "admin", testing::ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let admin = Device::new(&server.url, t.unwrap());
    let mut devices = Vec::new();
    for u in &info.users {
        devices.push(
            enrol(
                &server.url,
                &u.enrolment_code,
                &format!("phone of {}", u.username),
            )
            .await,
        );
    }
    World {
        _dir: dir,
        server,
        demo: info,
        admin,
        devices,
    }
}

pub fn rubric_of(world: &World, product: usize) -> Rubric {
    let r = &world.demo.products[product].rubric;
    ocop_shared::bundled::scoreable()
        .into_iter()
        .find(|x| x.id == r.id && x.version == r.version)
        .unwrap()
}

pub fn key(world: &World, product: usize, sheet_id: Uuid) -> SheetKey {
    let p = &world.demo.products[product];
    SheetKey {
        sheet_id,
        round_id: p.round_id,
        product_id: p.id,
        rubric: p.rubric.clone(),
    }
}

/// Every criterion answered with option number `pick` (clamped), with a note.
pub fn full_answers(rubric: &Rubric, pick: usize) -> Vec<AnswerEdit> {
    rubric
        .criteria()
        .map(|(_, _, c)| {
            let opts: Vec<_> = c.options().collect();
            let o = opts[pick.min(opts.len() - 1)];
            AnswerEdit {
                criterion: c.code.clone(),
                answer: Answer {
                    option: Some(o.id.clone()),
                    knockout: false,
                    note: format!("đã kiểm tra hồ sơ tiêu chí {}", c.code),
                    attachments: vec![],
                },
                base_rev: 0,
            }
        })
        .collect()
}

pub fn one_answer(
    rubric: &Rubric,
    criterion_idx: usize,
    option_idx: usize,
    base_rev: u64,
) -> AnswerEdit {
    let (_, _, c) = rubric.criteria().nth(criterion_idx).unwrap();
    let o = c.options().nth(option_idx).unwrap();
    AnswerEdit {
        criterion: c.code.clone(),
        answer: Answer {
            option: Some(o.id.clone()),
            ..Answer::default()
        },
        base_rev,
    }
}

pub fn set_answers(world: &World, product: usize, sheet_id: Uuid, answers: Vec<AnswerEdit>) -> Op {
    Op::SetAnswers {
        sheet: key(world, product, sheet_id),
        answers,
    }
}

/// One enrolled device for each of `users` (demo users, in their order),
/// straight through the store (no HTTP).
pub fn principals(
    store: &dyn ocop_sync_server::Store,
    users: &[demo::DemoUser],
) -> Vec<ocop_sync_server::Principal> {
    users
        .iter()
        .map(|u| {
            let t = store
                .enrol(&EnrolRequest {
                    code: u.enrolment_code.clone(),
                    device_name: "điện thoại".into(),
                })
                .unwrap();
            store.authenticate(&t.token).unwrap().unwrap()
        })
        .collect()
}

/// A member's device, one product's sheet key and its rubric, on a demo store.
pub struct StoreWorld {
    pub _dir: tempfile::TempDir,
    pub path: std::path::PathBuf,
    pub sqlite: SqliteStore,
    pub who: Principal,
    pub key: SheetKey,
    pub rubric: ocop_shared::rubric::Rubric,
}

impl StoreWorld {
    pub fn new() -> StoreWorld {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite3");
        let sqlite = SqliteStore::open(&path).unwrap();
        let store: &dyn Store = &sqlite;
        store.install_bundled_rubrics().unwrap();
        let info = demo::seed(store).unwrap();
        let m = &info.members()[0];
        let t = store
            .enrol(&EnrolRequest {
                code: m.enrolment_code.clone(),
                device_name: "d".into(),
            })
            .unwrap();
        let who: Principal = store.authenticate(&t.token).unwrap().unwrap();
        let prod = &info.products[0];
        let rubric = ocop_shared::bundled::scoreable()
            .into_iter()
            .find(|r| r.id == prod.rubric.id)
            .unwrap();
        let key = SheetKey {
            sheet_id: Uuid::now_v7(),
            round_id: prod.round_id,
            product_id: prod.id,
            rubric: prod.rubric.clone(),
        };
        StoreWorld {
            _dir: dir,
            path,
            sqlite,
            who,
            key,
            rubric,
        }
    }

    pub fn codes(&self) -> Vec<String> {
        self.rubric
            .criteria()
            .map(|(_, _, c)| c.code.clone())
            .collect()
    }

    /// Mutation `id`: the `i`-th option (and a note) on each criterion given.
    pub fn set(&self, id: u64, edits: Vec<(String, usize)>) -> Mutation {
        let opt = |code: &str, i: usize| {
            let c = self.rubric.criterion(code).unwrap();
            let o: Vec<_> = c.options().collect();
            o[i % o.len()].id.clone()
        };
        Mutation {
            id,
            client_time: None,
            op: Op::SetAnswers {
                sheet: self.key.clone(),
                answers: edits
                    .into_iter()
                    .map(|(c, i)| AnswerEdit {
                        answer: Answer {
                            option: Some(opt(&c, i)),
                            note: format!("ghi chú {i}"),
                            ..Default::default()
                        },
                        criterion: c,
                        base_rev: 0,
                    })
                    .collect(),
            },
        }
    }

    /// Pushes `ms`; every one must be applied.
    pub fn push(&self, ms: Vec<Mutation>) {
        let r = self.push_any(ms);
        assert!(
            r.results
                .iter()
                .all(|x| matches!(x.outcome, Outcome::Applied { .. })),
            "{r:?}"
        );
    }

    /// Pushes `ms`, whatever their outcomes.
    pub fn push_any(&self, ms: Vec<Mutation>) -> PushResponse {
        self.sqlite
            .push(
                &self.who,
                &PushRequest {
                    protocol: PROTOCOL_VERSION,
                    mutations: ms,
                },
            )
            .unwrap()
    }

    /// The sheet as pull serves it.
    pub fn current(&self) -> SheetState {
        self.sqlite
            .pull(&Principal::system(), 0, 100_000)
            .unwrap()
            .changes
            .into_iter()
            .find_map(|c| match c.entity {
                Entity::Sheet(s) if s.id == self.key.sheet_id => Some(*s),
                _ => None,
            })
            .unwrap()
    }

    pub fn revisions(&self) -> Vec<SheetState> {
        self.sqlite
            .sheet_revisions(&Principal::system(), self.key.sheet_id)
            .unwrap()
    }

    /// Each revision row's `delta` and the length of its own body.
    pub fn revision_rows(&self) -> Vec<(i64, i64)> {
        let db = rusqlite::Connection::open(&self.path).unwrap();
        db.prepare("SELECT delta, length(body) FROM sheet_revisions ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}
