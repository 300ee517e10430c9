//! What sync could not settle alone: conflicts (both versions side by side,
//! keep one) and the needs-attention list (retry or dismiss).

use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::HashMap;

use ocop_shared::rubric::{Criterion, Rubric};
use ocop_shared::wire::Answer;
use uuid::Uuid;

use crate::api;
use crate::app::{ctx, t};
use crate::components::page::{ErrorNote, Page};
use crate::dto::{AttentionItem, ConflictView, Keep};
use crate::i18n::{Lang, Msg, tr};

/// One side of a conflict in words: the option as the sheet shows it (its
/// text and points, not its id), the knock-out, the note.
fn answer_text(a: &Answer, criterion: Option<&Criterion>, lang: Lang) -> String {
    let mut parts = Vec::new();
    if let Some(o) = &a.option {
        let opt = criterion.and_then(|c| {
            c.option_sets
                .iter()
                .flat_map(|s| &s.options)
                .find(|x| &x.id == o)
        });
        parts.push(match opt {
            Some(x) => {
                let text = match (lang, &x.text_en) {
                    (Lang::En, Some(en)) => en.as_str(),
                    _ => x.text_vi.as_str(),
                };
                format!("{text} ({} {})", x.points, tr(lang, Msg::PointsShort))
            }
            None => format!("{} {o}", tr(lang, Msg::OptionWord)),
        });
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

fn criterion<'a>(r: Option<&'a Rubric>, code: &str) -> Option<&'a Criterion> {
    r?.criterion(code)
}

#[component]
pub fn SyncPage() -> impl IntoView {
    let c = ctx();
    let conflicts = RwSignal::new(Vec::<ConflictView>::new());
    let attention = RwSignal::new(Vec::<AttentionItem>::new());
    let rubrics = RwSignal::new(HashMap::<Uuid, Rubric>::new());
    let err = RwSignal::new(None);
    let load = move || {
        spawn_local(async move {
            match api::conflicts().await {
                Ok(x) => {
                    for p in x.iter().map(|c| c.product_id) {
                        if !rubrics.with_untracked(|r| r.contains_key(&p))
                            && let Ok(r) = api::rubric(p).await
                        {
                            rubrics.update(|m| {
                                m.insert(p, r);
                            });
                        }
                    }
                    conflicts.set(x)
                }
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
                let rs = rubrics.get();
                list.into_iter().map(|cv| {
                    let (a, b) = (cv.clone(), cv.clone());
                    let crit = cv.criterion.as_deref().and_then(|k| criterion(rs.get(&cv.product_id), k));
                    let head = match (&cv.criterion, crit) {
                        (Some(_), Some(c)) => format!("{} {}", c.code, match (lang, &c.text_en) {
                            (Lang::En, Some(en)) => en.as_str(),
                            _ => c.text_vi.as_str(),
                        }),
                        (Some(k), None) => k.clone(),
                        (None, _) => tr(lang, Msg::SheetNote).to_string(),
                    };
                    view! {
                        <div class="card conflict" data-test="conflict">
                            <strong>{head}</strong>
                            <div class="side-by-side">
                                <div><small>{tr(lang, Msg::ServerVersion)}</small>
                                    <p data-test="current">{answer_text(&cv.current, crit, lang)}</p>
                                    <button class="btn" data-test="keep-current" on:click=move |_| resolve(&a, Keep::Current)>{tr(lang, Msg::ConflictKeepServer)}</button>
                                </div>
                                <div><small>{tr(lang, if cv.other_is_mine { Msg::ThisDeviceVersion } else { Msg::OtherVersion })}</small>
                                    <p data-test="other">{answer_text(&cv.other, crit, lang)}</p>
                                    <button class="btn" data-test="keep-other" on:click=move |_| resolve(&b, Keep::Other)>{tr(lang, if cv.other_is_mine { Msg::KeepThisDevice } else { Msg::ConflictKeepMine })}</button>
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
