//! Every command the UI may invoke, one line each over [`ocop_app::Device`].
//! Local calls run on the blocking pool ([`local`]); sign-in and sync are
//! the device's own `async` methods. Arguments arrive in camelCase from the
//! UI (`productId`), as Tauri maps them to these snake_case parameters.

use std::sync::Arc;

use base64::Engine;
use ocop_app::{
    AttentionItem, ConflictView, Device, Error, Keep, ProductItem, Session, SheetView, SyncReport,
    SyncStatus,
};
use ocop_shared::council::{CouncilResult, Participation};
use ocop_shared::rubric::Rubric;
use ocop_shared::wire::{
    CouncilRole, DecisionInfo, ParticipationInfo, RosterEntry, RoundInfo, SheetState, UserInfo,
};
use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime};
use uuid::Uuid;

use crate::{Core, events};

type Result<T> = std::result::Result<T, Error>;

fn device<R: Runtime>(app: &AppHandle<R>) -> Arc<Device> {
    app.state::<Core>().0.clone()
}

/// Runs a local call off the UI thread, then tells the UI if the sync
/// status changed (a tap adds a pending change).
async fn local<T, R>(
    app: &AppHandle<R>,
    f: impl FnOnce(&Device) -> Result<T> + Send + 'static,
) -> Result<T>
where
    T: Send + 'static,
    R: Runtime,
{
    let d = device(app);
    let d2 = d.clone();
    let out = tauri::async_runtime::spawn_blocking(move || f(&d2))
        .await
        .map_err(|e| Error::Io(format!("the local call stopped: {e}")))?;
    events::emit_if_changed(app, &d);
    out
}

/// What the Connect screen starts from.
#[derive(Debug, Serialize)]
pub struct Defaults {
    /// `OCOP_SERVER` (set by `scripts/run`), else empty.
    pub server_url: String,
    pub device_name: String,
}

#[tauri::command]
pub fn defaults() -> Defaults {
    Defaults {
        server_url: std::env::var("OCOP_SERVER").unwrap_or_default(),
        device_name: std::env::var("OCOP_DEVICE_NAME")
            .unwrap_or_else(|_| format!("OCOP Score ({})", std::env::consts::OS)),
    }
}

#[tauri::command]
pub async fn session<R: Runtime>(app: AppHandle<R>) -> Result<Option<Session>> {
    local(&app, |d| d.session()).await
}

#[tauri::command]
pub async fn enrol<R: Runtime>(
    app: AppHandle<R>,
    server_url: String,
    code: String,
    device_name: String,
) -> Result<UserInfo> {
    device(&app).enrol(&server_url, &code, &device_name).await
}

#[tauri::command]
pub async fn login<R: Runtime>(
    app: AppHandle<R>,
    server_url: String,
    username: String,
    password: String,
    device_name: String,
) -> Result<UserInfo> {
    device(&app)
        .login(&server_url, &username, &password, &device_name)
        .await
}

#[tauri::command]
pub async fn sign_out<R: Runtime>(app: AppHandle<R>, force: bool) -> Result<()> {
    local(&app, move |d| d.sign_out(force)).await
}

#[tauri::command]
pub async fn rounds<R: Runtime>(app: AppHandle<R>) -> Result<Vec<RoundInfo>> {
    local(&app, |d| d.rounds()).await
}

#[tauri::command]
pub async fn my_role<R: Runtime>(app: AppHandle<R>, round: Uuid) -> Result<Option<CouncilRole>> {
    local(&app, move |d| d.my_role(round)).await
}

#[tauri::command]
pub async fn roster<R: Runtime>(app: AppHandle<R>, round: Uuid) -> Result<Vec<RosterEntry>> {
    local(&app, move |d| d.roster(round)).await
}

#[tauri::command]
pub async fn products<R: Runtime>(app: AppHandle<R>, round: Uuid) -> Result<Vec<ProductItem>> {
    local(&app, move |d| d.list_products(round)).await
}

#[tauri::command]
pub async fn rubric<R: Runtime>(app: AppHandle<R>, product: Uuid) -> Result<Rubric> {
    local(&app, move |d| d.rubric(product)).await
}

#[tauri::command]
pub async fn sheet<R: Runtime>(app: AppHandle<R>, product: Uuid) -> Result<SheetView> {
    local(&app, move |d| d.sheet(product)).await
}

#[tauri::command]
pub async fn sheet_of<R: Runtime>(
    app: AppHandle<R>,
    product: Uuid,
    owner: Uuid,
) -> Result<SheetView> {
    local(&app, move |d| d.sheet_of(product, owner)).await
}

#[tauri::command]
pub async fn sheets_of_product<R: Runtime>(
    app: AppHandle<R>,
    product: Uuid,
) -> Result<Vec<SheetState>> {
    local(&app, move |d| d.sheets_of_product(product)).await
}

#[tauri::command]
pub async fn set_answer<R: Runtime>(
    app: AppHandle<R>,
    product: Uuid,
    criterion: String,
    option: Option<String>,
) -> Result<()> {
    local(&app, move |d| {
        d.set_answer(product, &criterion, option.as_deref())
    })
    .await
}

#[tauri::command]
pub async fn set_knockout<R: Runtime>(
    app: AppHandle<R>,
    product: Uuid,
    criterion: String,
    raised: bool,
) -> Result<()> {
    local(&app, move |d| d.set_knockout(product, &criterion, raised)).await
}

#[tauri::command]
pub async fn set_answer_note<R: Runtime>(
    app: AppHandle<R>,
    product: Uuid,
    criterion: String,
    note: String,
) -> Result<()> {
    local(&app, move |d| d.set_answer_note(product, &criterion, &note)).await
}

#[tauri::command]
pub async fn set_note<R: Runtime>(app: AppHandle<R>, product: Uuid, note: String) -> Result<()> {
    local(&app, move |d| d.set_note(product, &note)).await
}

/// A photo as base64 (the one IPC body every platform delivers); the core
/// downscales it before storing.
#[tauri::command]
pub async fn add_photo<R: Runtime>(
    app: AppHandle<R>,
    product: Uuid,
    criterion: String,
    data_b64: String,
) -> Result<String> {
    local(&app, move |d| {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data_b64.as_bytes())
            .map_err(|e| Error::Invalid(format!("the photo did not arrive whole: {e}")))?;
        d.add_photo(product, &criterion, &bytes)
    })
    .await
}

/// A stored photo as a `data:` URL for a thumbnail.
#[tauri::command]
pub async fn photo<R: Runtime>(app: AppHandle<R>, sha256: String) -> Result<String> {
    local(&app, move |d| {
        let bytes = d.photo(&sha256)?;
        Ok(format!(
            "data:image/jpeg;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    })
    .await
}

#[tauri::command]
pub async fn submit<R: Runtime>(app: AppHandle<R>, product: Uuid) -> Result<()> {
    local(&app, move |d| d.submit(product)).await
}

#[tauri::command]
pub async fn status<R: Runtime>(app: AppHandle<R>) -> Result<SyncStatus> {
    local(&app, |d| d.status()).await
}

#[tauri::command]
pub async fn sync_now<R: Runtime>(app: AppHandle<R>) -> Result<SyncReport> {
    let d = device(&app);
    let out = d.sync_now().await;
    events::emit_if_changed(&app, &d);
    out
}

#[tauri::command]
pub async fn conflicts<R: Runtime>(app: AppHandle<R>) -> Result<Vec<ConflictView>> {
    local(&app, |d| d.conflicts()).await
}

#[tauri::command]
pub async fn resolve_conflict<R: Runtime>(
    app: AppHandle<R>,
    sheet_id: Uuid,
    conflict_id: Uuid,
    keep: Keep,
) -> Result<()> {
    local(&app, move |d| {
        d.resolve_conflict(sheet_id, conflict_id, keep)
    })
    .await
}

#[tauri::command]
pub async fn needs_attention<R: Runtime>(app: AppHandle<R>) -> Result<Vec<AttentionItem>> {
    local(&app, |d| d.needs_attention()).await
}

#[tauri::command]
pub async fn retry_attention<R: Runtime>(app: AppHandle<R>, id: u64) -> Result<Option<u64>> {
    local(&app, move |d| d.retry_attention(id)).await
}

#[tauri::command]
pub async fn dismiss_attention<R: Runtime>(app: AppHandle<R>, id: u64) -> Result<()> {
    local(&app, move |d| d.dismiss_attention(id)).await
}

#[tauri::command]
pub async fn council_result<R: Runtime>(app: AppHandle<R>, product: Uuid) -> Result<CouncilResult> {
    local(&app, move |d| d.council_result(product)).await
}

#[tauri::command]
pub async fn can_preside<R: Runtime>(app: AppHandle<R>, product: Uuid) -> Result<bool> {
    local(&app, move |d| d.can_preside(product)).await
}

#[tauri::command]
pub async fn participations<R: Runtime>(
    app: AppHandle<R>,
    product: Uuid,
) -> Result<Vec<ParticipationInfo>> {
    local(&app, move |d| d.participations(product)).await
}

#[tauri::command]
pub async fn decision<R: Runtime>(
    app: AppHandle<R>,
    product: Uuid,
) -> Result<Option<DecisionInfo>> {
    local(&app, move |d| d.decision_of(product)).await
}

#[tauri::command]
pub async fn set_participation<R: Runtime>(
    app: AppHandle<R>,
    product: Uuid,
    user: Uuid,
    participation: Participation,
    reason: String,
) -> Result<()> {
    local(&app, move |d| {
        d.set_participation(product, user, participation, &reason)
    })
    .await
}

#[tauri::command]
pub async fn reopen<R: Runtime>(
    app: AppHandle<R>,
    product: Uuid,
    owner: Uuid,
    reason: String,
) -> Result<()> {
    local(&app, move |d| d.reopen(product, owner, &reason)).await
}

#[tauri::command]
pub async fn finalize<R: Runtime>(
    app: AppHandle<R>,
    product: Uuid,
    note: String,
) -> Result<CouncilResult> {
    local(&app, move |d| d.finalize(product, &note)).await
}

#[tauri::command]
pub async fn release<R: Runtime>(app: AppHandle<R>, product: Uuid) -> Result<()> {
    local(&app, move |d| d.release(product)).await
}

/// The handler with every command above.
pub fn handler<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        defaults,
        session,
        enrol,
        login,
        sign_out,
        rounds,
        my_role,
        roster,
        products,
        rubric,
        sheet,
        sheet_of,
        sheets_of_product,
        set_answer,
        set_knockout,
        set_answer_note,
        set_note,
        add_photo,
        photo,
        submit,
        status,
        sync_now,
        conflicts,
        resolve_conflict,
        needs_attention,
        retry_attention,
        dismiss_attention,
        council_result,
        can_preside,
        participations,
        decision,
        set_participation,
        reopen,
        finalize,
        release,
    ]
}
