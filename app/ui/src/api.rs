//! Every call into the Tauri shell, typed: the one place that knows
//! command names and argument keys (camelCase, as Tauri expects).

use ocop_shared::council::{CouncilResult, Participation};
use ocop_shared::rubric::Rubric;
use ocop_shared::wire::{
    CouncilRole, DecisionInfo, ParticipationInfo, RosterEntry, RoundInfo, SheetState, UserInfo,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;
use wasm_bindgen::prelude::*;

use crate::dto::*;

#[wasm_bindgen]
extern "C" {
    // window.__TAURI__.core.invoke (tauri.conf.json: app.withGlobalTauri)
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], catch)]
    async fn invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "event"], catch)]
    async fn listen(event: &str, handler: &Closure<dyn FnMut(JsValue)>)
    -> Result<JsValue, JsValue>;
}

async fn call<R: DeserializeOwned>(cmd: &str, args: Value) -> Result<R, ApiError> {
    let ser = serde_wasm_bindgen::Serializer::json_compatible();
    let js = args
        .serialize(&ser)
        .map_err(|e| ApiError::local("ui", e.to_string(), e.to_string()))?;
    match invoke(cmd, js).await {
        Ok(v) => serde_wasm_bindgen::from_value(v).map_err(|e| {
            ApiError::local(
                "ui",
                format!("unexpected answer from {cmd}: {e}"),
                format!("câu trả lời không đúng dạng từ {cmd}: {e}"),
            )
        }),
        Err(e) => Err(
            serde_wasm_bindgen::from_value::<ApiError>(e.clone()).unwrap_or_else(|_| {
                let s = e.as_string().unwrap_or_else(|| format!("{e:?}"));
                ApiError::local("ui", s.clone(), s)
            }),
        ),
    }
}

/// Calls `f` with every `sync-status` event's status. Lives as long as the page.
pub fn on_sync_status(f: impl Fn(SyncStatus) + 'static) {
    let cb = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
        if let Ok(p) = js_sys::Reflect::get(&ev, &JsValue::from_str("payload"))
            && let Ok(s) = serde_wasm_bindgen::from_value::<SyncStatus>(p)
        {
            f(s);
        }
    });
    wasm_bindgen_futures::spawn_local(async move {
        let _ = listen("sync-status", &cb).await;
        cb.forget();
    });
}

pub async fn defaults() -> Result<Defaults, ApiError> {
    call("defaults", json!({})).await
}
pub async fn session() -> Result<Option<Session>, ApiError> {
    call("session", json!({})).await
}
pub async fn enrol(server: &str, code: &str, device: &str) -> Result<UserInfo, ApiError> {
    call(
        "enrol",
        json!({"serverUrl": server, "code": code, "deviceName": device}),
    )
    .await
}
pub async fn login(server: &str, user: &str, pw: &str, device: &str) -> Result<UserInfo, ApiError> {
    let a = json!({"serverUrl": server, "username": user, "password": pw, "deviceName": device});
    call("login", a).await
}
pub async fn sign_out(force: bool) -> Result<(), ApiError> {
    call("sign_out", json!({"force": force})).await
}
pub async fn rounds() -> Result<Vec<RoundInfo>, ApiError> {
    call("rounds", json!({})).await
}
pub async fn my_role(round: Uuid) -> Result<Option<CouncilRole>, ApiError> {
    call("my_role", json!({"round": round})).await
}
pub async fn roster(round: Uuid) -> Result<Vec<RosterEntry>, ApiError> {
    call("roster", json!({"round": round})).await
}
pub async fn products(round: Uuid) -> Result<Vec<ProductItem>, ApiError> {
    call("products", json!({"round": round})).await
}
pub async fn rubric(product: Uuid) -> Result<Rubric, ApiError> {
    call("rubric", json!({"product": product})).await
}
pub async fn sheet(product: Uuid) -> Result<SheetView, ApiError> {
    call("sheet", json!({"product": product})).await
}
pub async fn sheets_of_product(product: Uuid) -> Result<Vec<SheetState>, ApiError> {
    call("sheets_of_product", json!({"product": product})).await
}
pub async fn set_answer(
    product: Uuid,
    criterion: &str,
    option: Option<&str>,
) -> Result<(), ApiError> {
    call(
        "set_answer",
        json!({"product": product, "criterion": criterion, "option": option}),
    )
    .await
}
pub async fn set_knockout(product: Uuid, criterion: &str, raised: bool) -> Result<(), ApiError> {
    call(
        "set_knockout",
        json!({"product": product, "criterion": criterion, "raised": raised}),
    )
    .await
}
pub async fn set_answer_note(product: Uuid, criterion: &str, note: &str) -> Result<(), ApiError> {
    call(
        "set_answer_note",
        json!({"product": product, "criterion": criterion, "note": note}),
    )
    .await
}
pub async fn set_note(product: Uuid, note: &str) -> Result<(), ApiError> {
    call("set_note", json!({"product": product, "note": note})).await
}
pub async fn add_photo(
    product: Uuid,
    criterion: &str,
    data_b64: String,
) -> Result<String, ApiError> {
    call(
        "add_photo",
        json!({"product": product, "criterion": criterion, "dataB64": data_b64}),
    )
    .await
}
pub async fn photo(sha256: &str) -> Result<String, ApiError> {
    call("photo", json!({"sha256": sha256})).await
}
pub async fn submit(product: Uuid) -> Result<(), ApiError> {
    call("submit", json!({"product": product})).await
}
pub async fn status() -> Result<SyncStatus, ApiError> {
    call("status", json!({})).await
}
pub async fn sync_now() -> Result<Value, ApiError> {
    call("sync_now", json!({})).await
}
pub async fn conflicts() -> Result<Vec<ConflictView>, ApiError> {
    call("conflicts", json!({})).await
}
pub async fn resolve_conflict(sheet: Uuid, conflict: Uuid, keep: Keep) -> Result<(), ApiError> {
    call(
        "resolve_conflict",
        json!({"sheetId": sheet, "conflictId": conflict, "keep": keep}),
    )
    .await
}
pub async fn needs_attention() -> Result<Vec<AttentionItem>, ApiError> {
    call("needs_attention", json!({})).await
}
pub async fn retry_attention(id: u64) -> Result<Option<u64>, ApiError> {
    call("retry_attention", json!({"id": id})).await
}
pub async fn dismiss_attention(id: u64) -> Result<(), ApiError> {
    call("dismiss_attention", json!({"id": id})).await
}
pub async fn council_result(product: Uuid) -> Result<CouncilResult, ApiError> {
    call("council_result", json!({"product": product})).await
}
pub async fn can_preside(product: Uuid) -> Result<bool, ApiError> {
    call("can_preside", json!({"product": product})).await
}
pub async fn participations(product: Uuid) -> Result<Vec<ParticipationInfo>, ApiError> {
    call("participations", json!({"product": product})).await
}
pub async fn decision(product: Uuid) -> Result<Option<DecisionInfo>, ApiError> {
    call("decision", json!({"product": product})).await
}
pub async fn set_participation(
    product: Uuid,
    user: Uuid,
    p: Participation,
    reason: &str,
) -> Result<(), ApiError> {
    let a = json!({"product": product, "user": user, "participation": p, "reason": reason});
    call("set_participation", a).await
}
pub async fn reopen(product: Uuid, owner: Uuid, reason: &str) -> Result<(), ApiError> {
    call(
        "reopen",
        json!({"product": product, "owner": owner, "reason": reason}),
    )
    .await
}
pub async fn finalize(product: Uuid, note: &str) -> Result<CouncilResult, ApiError> {
    call("finalize", json!({"product": product, "note": note})).await
}
pub async fn release(product: Uuid) -> Result<(), ApiError> {
    call("release", json!({"product": product})).await
}

/// One queued write.
type Job = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// The writes not yet run, and whether a runner is draining them.
#[derive(Default)]
struct Queue {
    jobs: std::collections::VecDeque<Job>,
    running: bool,
}

thread_local! {
    static QUEUE: std::cell::RefCell<Queue> = Default::default();
}

/// Runs writes one after another in the order the user made them: two
/// quick taps on one criterion must commit in tap order, and commands
/// started at once could otherwise reach the database in either order.
pub fn in_order(f: impl std::future::Future<Output = ()> + 'static) {
    let start = QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        q.jobs.push_back(Box::pin(f));
        !std::mem::replace(&mut q.running, true)
    });
    if start {
        wasm_bindgen_futures::spawn_local(async {
            loop {
                let next = QUEUE.with(|q| {
                    let mut q = q.borrow_mut();
                    let n = q.jobs.pop_front();
                    if n.is_none() {
                        q.running = false;
                    }
                    n
                });
                match next {
                    Some(f) => f.await,
                    None => break,
                }
            }
        });
    }
}
