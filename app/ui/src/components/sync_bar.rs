//! The sync bar on every screen: what waits to be sent, when the last sync
//! succeeded, what is happening now, and a button to sync at once.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::app::{ctx, t};
use crate::dto::SyncState;
use crate::format;
use crate::i18n::{Lang, Msg, tr};

#[component]
pub fn SyncBar() -> impl IntoView {
    let c = ctx();
    let busy = RwSignal::new(false);
    let sync = move |_| {
        busy.set(true);
        spawn_local(async move {
            let _ = api::sync_now().await;
            if let Ok(s) = api::status().await {
                c.status.set(Some(s));
            }
            busy.set(false);
        });
    };
    let line = move || {
        let lang = c.lang.get();
        let Some(s) = c.status.get() else {
            return (String::new(), "sync".to_string());
        };
        let state = match s.state {
            SyncState::UpToDate => tr(lang, Msg::SyncUpToDate).to_string(),
            SyncState::Pending => format!("{} {}", s.pending, tr(lang, Msg::SyncPending)),
            SyncState::Syncing => match &s.progress {
                Some(p) => match p.total {
                    Some(n) => format!("{} {}/{n}", tr(lang, Msg::SyncSyncing), p.done),
                    None => format!("{} {}", tr(lang, Msg::SyncSyncing), p.done),
                },
                None => tr(lang, Msg::SyncSyncing).to_string(),
            },
            SyncState::Offline => format!(
                "{} · {} {}",
                tr(lang, Msg::SyncOffline),
                s.pending,
                tr(lang, Msg::SyncPending)
            ),
            SyncState::SignInAgain => tr(lang, Msg::SyncSignInAgain).to_string(),
            SyncState::UpdateApp => tr(lang, Msg::SyncUpdateApp).to_string(),
            SyncState::Failed => match (&s.last_error, lang) {
                (Some(w), Lang::Vi) => format!("{}: {}", tr(lang, Msg::SyncFailed), w.vi),
                (Some(w), Lang::En) => format!("{}: {}", tr(lang, Msg::SyncFailed), w.en),
                (None, _) => tr(lang, Msg::SyncFailed).to_string(),
            },
            SyncState::SignedOut => tr(lang, Msg::SyncSignedOut).to_string(),
        };
        let class = match s.state {
            SyncState::UpToDate => "sync ok",
            SyncState::Pending | SyncState::Syncing => "sync busy",
            _ => "sync warn",
        };
        (state, class.to_string())
    };
    let last = move || {
        let lang = c.lang.get();
        let s = c.status.get()?;
        let when = match s.last_success {
            Some(ts) => {
                let then = js_sys::Date::parse(&ts);
                format::ago(((c.now_ms.get() - then) / 1000.0) as i64, lang)
            }
            None => tr(lang, Msg::Never).to_string(),
        };
        Some(format!("{}: {when}", tr(lang, Msg::LastSync)))
    };
    let extra = move || {
        let s = c.status.get()?;
        (s.conflicts + s.needs_attention > 0).then(|| {
            let lang = c.lang.get();
            view! {
                <a class="attention" href="/sync" data-test="attention-link">
                    {[(s.conflicts, Msg::Conflicts), (s.needs_attention, Msg::NeedsAttention)]
                        .into_iter()
                        .filter(|(n, _)| *n > 0)
                        .map(|(n, m)| format!("{n} {}", tr(lang, m).to_lowercase()))
                        .collect::<Vec<_>>()
                        .join(" · ")}
                </a>
            }
        })
    };
    view! {
        <div class=move || line().1 data-test="sync-bar">
            <div class="sync-text">
                <span data-test="sync-state">{move || line().0}</span>
                <small data-test="sync-last">{last}</small>
                {extra}
            </div>
            <button class="btn small" data-test="sync-now" disabled=move || busy.get()
                on:click=sync>{t(Msg::SyncNow)}</button>
        </div>
        <span hidden data-test="pending-count">
            {move || c.status.get().map_or(0, |s| s.pending).to_string()}
        </span>
    }
}
