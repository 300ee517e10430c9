//! What sync could not settle alone: conflicts (both versions side by side,
//! keep one) and the needs-attention list (retry or dismiss).

use leptos::prelude::*;
use leptos::task::spawn_local;
use ocop_shared::wire::Answer;

use crate::api;
use crate::app::{ctx, t};
use crate::components::page::{ErrorNote, Page};
use crate::dto::{AttentionItem, ConflictView, Keep};
use crate::i18n::{Lang, Msg, tr};

fn answer_text(a: &Answer, lang: Lang) -> String {
    let mut parts = Vec::new();
    if let Some(o) = &a.option {
        parts.push(format!(
            "{}: {o}",
            if lang == Lang::En {
                "option"
            } else {
                "phương án"
            }
        ));
    }
    if a.knockout {
        parts.push(tr(lang, Msg::Knockout).to_string());
    }
    if !a.note.is_empty() {
        parts.push(format!("{}: {}", tr(lang, Msg::Note), a.note));
    }
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(" · ")
    }
}

#[component]
pub fn SyncPage() -> impl IntoView {
    let c = ctx();
    let conflicts = RwSignal::new(Vec::<ConflictView>::new());
    let attention = RwSignal::new(Vec::<AttentionItem>::new());
    let err = RwSignal::new(None);
    let load = move || {
        spawn_local(async move {
            match api::conflicts().await {
                Ok(x) => conflicts.set(x),
                Err(e) => err.set(Some(e)),
            }
            if let Ok(x) = api::needs_attention().await {
                attention.set(x);
            }
        })
    };
    load();
    let resolve = move |cv: &ConflictView, keep: Keep| {
        let (s, id) = (cv.sheet_id, cv.conflict_id);
        spawn_local(async move {
            match api::resolve_conflict(s, id, keep).await {
                Ok(()) => load(),
                Err(e) => err.set(Some(e)),
            }
        });
    };
    let title = Signal::derive(move || tr(c.lang.get(), Msg::Conflicts).to_string());
    view! {
        <Page title=title back="/rounds">
            <ErrorNote err=err />
            <h2>{t(Msg::Conflicts)}</h2>
            <div data-test="conflicts">
            {move || {
                let lang = c.lang.get();
                let list = conflicts.get();
                if list.is_empty() { return view! { <p class="muted">{tr(lang, Msg::Nothing)}</p> }.into_any(); }
                list.into_iter().map(|cv| {
                    let (a, b) = (cv.clone(), cv.clone());
                    view! {
                        <div class="card conflict" data-test="conflict">
                            <strong>{cv.criterion.clone().unwrap_or_else(|| tr(lang, Msg::SheetNote).to_string())}</strong>
                            <div class="side-by-side">
                                <div><small>{tr(lang, Msg::ServerVersion)}</small>
                                    <p data-test="current">{answer_text(&cv.current, lang)}</p>
                                    <button class="btn" data-test="keep-current" on:click=move |_| resolve(&a, Keep::Current)>{tr(lang, Msg::ConflictKeepServer)}</button>
                                </div>
                                <div><small>{tr(lang, Msg::OtherVersion)}</small>
                                    <p data-test="other">{answer_text(&cv.other, lang)}</p>
                                    <button class="btn" data-test="keep-other" on:click=move |_| resolve(&b, Keep::Other)>{tr(lang, Msg::ConflictKeepMine)}</button>
                                </div>
                            </div>
                        </div>
                    }
                }).collect_view().into_any()
            }}
            </div>
            <h2>{t(Msg::NeedsAttention)}</h2>
            <div data-test="attention">
            {move || {
                let lang = c.lang.get();
                let list = attention.get();
                if list.is_empty() { return view! { <p class="muted">{tr(lang, Msg::Nothing)}</p> }.into_any(); }
                list.into_iter().map(|it| {
                    let id = it.mutation_id;
                    view! {
                        <div class="card" data-test="attention-item">
                            <p>{format!("{} ({})", it.reason, it.code)}</p>
                            <div class="actions">
                                <button class="btn" on:click=move |_| spawn_local(async move { let _ = api::retry_attention(id).await; load(); })>{tr(lang, Msg::Retry)}</button>
                                <button class="btn ghost" on:click=move |_| spawn_local(async move { let _ = api::dismiss_attention(id).await; load(); })>{tr(lang, Msg::Dismiss)}</button>
                            </div>
                        </div>
                    }
                }).collect_view().into_any()
            }}
            </div>
        </Page>
    }
}
