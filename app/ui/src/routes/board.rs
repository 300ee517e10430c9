//! The chair's round board (laptop, two panes): products × members with
//! each cell's state; for the chosen product the council result computed by
//! `ocop_shared::council::aggregate` over the sheets on this device, and
//! the chair's actions. The secretary sees the progress only.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_params_map, use_query_map};
use ocop_shared::council::{CouncilResult, Participation};
use ocop_shared::wire::{CouncilRole, DecisionInfo, ParticipationInfo, RosterEntry, SheetState};
use uuid::Uuid;

use crate::api;
use crate::app::{ctx, t};
use crate::components::page::{ErrorNote, Page};
use crate::dto::{ApiError, ProductItem};
use crate::format;
use crate::i18n::{Lang, Msg, tr};
use crate::view::{Cell, exclusion_label, role_label};

#[derive(Clone)]
struct Row {
    item: ProductItem,
    sheets: Vec<SheetState>,
    parts: Vec<ParticipationInfo>,
    result: Option<CouncilResult>,
    decision: Option<DecisionInfo>,
    presides: bool,
}

#[component]
pub fn Board() -> impl IntoView {
    let c = ctx();
    let params = use_params_map();
    let query = use_query_map();
    let round = params
        .read_untracked()
        .get("round")
        .and_then(|s| s.parse::<Uuid>().ok())
        .unwrap_or_default();
    let selected = move || {
        query
            .read()
            .get("product")
            .and_then(|s| s.parse::<Uuid>().ok())
    };
    let roster = RwSignal::new(Vec::<RosterEntry>::new());
    let rows = RwSignal::new(Vec::<Row>::new());
    let my_role = RwSignal::new(None::<CouncilRole>);
    let err = RwSignal::new(None::<ApiError>);
    let load = move || {
        spawn_local(async move {
            let r = async {
                roster.set(api::roster(round).await?);
                my_role.set(api::my_role(round).await?);
                let mut out = Vec::new();
                for item in api::products(round).await? {
                    let p = item.product.id;
                    out.push(Row {
                        sheets: api::sheets_of_product(p).await?,
                        parts: api::participations(p).await?,
                        result: api::council_result(p).await.ok(),
                        decision: api::decision(p).await?,
                        presides: api::can_preside(p).await.unwrap_or(false),
                        item,
                    });
                }
                rows.set(out);
                Ok::<_, ApiError>(())
            }
            .await;
            if let Err(e) = r {
                err.set(Some(e));
            }
        })
    };
    load();
    Effect::new(move |prev: Option<(Option<String>, u64)>| {
        let k = c
            .status
            .get()
            .map_or((None, 0), |s| (s.last_success, s.pending));
        if prev.is_some() && prev.as_ref() != Some(&k) {
            load();
        }
        k
    });
    let secretary = move || my_role.get() == Some(CouncilRole::Secretary);
    let title = Signal::derive(move || tr(c.lang.get(), Msg::Board).to_string());
    view! {
        <Page title=title back=format!("/rounds/{round}") wide=true>
            <ErrorNote err=err />
            <div class="panes">
                <div class="pane grid-pane">
                    <table class="board" data-test="board">
                        <thead><tr>
                            <th>{t(Msg::Products)}</th>
                            {move || roster.get().into_iter().map(|m| {
                                let lang = c.lang.get();
                                view! { <th title=role_label(m.role, lang)>{short_name(&m.full_name)}</th> }
                            }).collect_view()}
                            <th>{t(Msg::Mean)}</th>
                            <th>{t(Msg::Stars)}</th>
                        </tr></thead>
                        <tbody>
                            {move || {
                                let lang = c.lang.get();
                                let members = roster.get();
                                let hide = secretary();
                                rows.get().into_iter().map(|r| {
                                    let pid = r.item.product.id;
                                    let href = format!("/rounds/{round}/board?product={pid}");
                                    let is_sel = selected() == Some(pid);
                                    let cells = members.iter().map(|m| {
                                        let part = r.parts.iter().find(|x| x.user_id == m.user_id).map_or(Participation::Present, |x| x.participation);
                                        let sheet = r.sheets.iter().find(|s| s.owner_id == m.user_id);
                                        let total = r.result.as_ref().and_then(|res| res.members.iter().find(|x| x.user_id == m.user_id).map(|x| x.total));
                                        let cell = Cell::of(m.role, part, sheet, total, r.item.criteria);
                                        let label = match (cell, hide) {
                                            (Cell::Submitted { .. }, true) => tr(lang, Msg::Submitted).to_string(),
                                            _ => cell.label(lang),
                                        };
                                        let title = (cell == Cell::NotStarted).then(|| tr(lang, Msg::NotStarted));
                                        view! { <td class=cell_class(cell) title=title data-test="cell" data-member=m.user_id.to_string()>{label}</td> }
                                    }).collect_view();
                                    let (mean, star, star_full) = if hide { Default::default() } else { summary(&r, lang) };
                                    view! {
                                        <tr class:sel=is_sel data-test="board-row" data-code=r.item.product.code.clone()>
                                            <td><a href=href data-test="board-product">{format!("{} {}", r.item.product.code, r.item.product.name)}</a></td>
                                            {cells}
                                            <td class="num" data-test="row-mean">{mean}</td>
                                            <td class="star" title=star_full data-test="row-star">{star}</td>
                                        </tr>
                                    }
                                }).collect_view()
                            }}
                        </tbody>
                    </table>
                    <p class="muted small legend">{move || format!("· {}", tr(c.lang.get(), Msg::NotStarted))}</p>
                    <Show when=secretary><p class="muted">{t(Msg::ProgressOnly)}</p></Show>
                </div>
                <div class="pane detail-pane">
                    {move || {
                        let lang = c.lang.get();
                        if secretary() { return view! { <p class="muted">{tr(lang, Msg::ProgressOnly)}</p> }.into_any(); }
                        match selected().and_then(|p| rows.get().into_iter().find(|r| r.item.product.id == p)) {
                            None => view! { <p class="muted">{tr(lang, Msg::PickProduct)}</p> }.into_any(),
                            Some(r) => view! { <Detail row=r roster=roster.get() err=err reload=load /> }.into_any(),
                        }
                    }}
                </div>
            </div>
        </Page>
    }
}

fn short_name(full: &str) -> String {
    full.rsplit(' ').next().unwrap_or(full).to_string()
}

fn cell_class(c: Cell) -> &'static str {
    match c {
        Cell::Submitted { .. } => "cell done",
        Cell::Draft { .. } => "cell draft",
        Cell::NotStarted => "cell todo",
        _ => "cell off",
    }
}

/// A row's mean, its star in short ("4★", to fit the board) and in full.
fn summary(r: &Row, lang: Lang) -> (String, String, String) {
    let res = r
        .decision
        .as_ref()
        .and_then(|d| d.result.clone())
        .filter(|_| r.decision.as_ref().is_some_and(|d| d.finalized))
        .or(r.result.clone());
    let Some(res) = res else {
        return Default::default();
    };
    let mean = res
        .mean_total
        .map(|m| format::centi(m, lang))
        .unwrap_or_default();
    let short = match &res.star {
        Some(s) if s.disqualified => "✗".to_string(),
        Some(s) => format!("{}★", s.stars),
        None => String::new(),
    };
    let full = res
        .star
        .as_ref()
        .map(|s| star_label(s, lang))
        .unwrap_or_default();
    (mean, short, full)
}

fn star_label(s: &ocop_shared::stars::StarOutcome, lang: Lang) -> String {
    if s.disqualified {
        return tr(lang, Msg::Disqualified).to_string();
    }
    format!(
        "{}{}",
        format::stars(s.stars),
        if s.stars <= 2 {
            format!(" ({})", tr(lang, Msg::NotRecognised))
        } else {
            String::new()
        }
    )
}

#[component]
fn Detail(
    row: Row,
    roster: Vec<RosterEntry>,
    err: RwSignal<Option<ApiError>>,
    reload: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let lang = ctx().lang.get_untracked();
    let pid = row.item.product.id;
    let finalized = row.decision.as_ref().is_some_and(|d| d.finalized);
    let released = row.decision.as_ref().is_some_and(|d| d.released);
    let res = if finalized {
        row.decision
            .as_ref()
            .and_then(|d| d.result.clone())
            .or(row.result.clone())
    } else {
        row.result.clone()
    };
    let confirm = RwSignal::new(false);
    let reopen_for = RwSignal::new(None::<Uuid>);
    let reason = RwSignal::new(String::new());
    let act =
        move |f: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ApiError>>>>| {
            spawn_local(async move {
                match f.await {
                    Ok(()) => reload(),
                    Err(e) => err.set(Some(e)),
                }
            });
        };
    let Some(res) = res else {
        return view! { <p class="muted">{tr(lang, Msg::Nothing)}</p> }.into_any();
    };
    let mean = res
        .mean_total
        .map(|m| format::centi(m, lang))
        .unwrap_or_else(|| "—".into());
    let spread = res
        .spread
        .map(|m| format::centi(m, lang))
        .unwrap_or_else(|| "—".into());
    let q = res.quorum.clone();
    let star = res.star.clone();
    let can_finalize = res.can_finalize && row.presides && !finalized;
    let members = res.members.clone();
    let excluded = res.excluded.clone();
    let submitted: Vec<Uuid> = row
        .sheets
        .iter()
        .filter(|s| s.status == ocop_shared::wire::SheetStatus::Submitted)
        .map(|s| s.owner_id)
        .collect();
    view! {
        <div class="detail" data-test="detail">
            <h2>{format!("{} · {}", row.item.product.code, row.item.product.name)}</h2>
            <p class="muted small">{format!("{} · {}", row.item.product.producer, row.item.product.commune)}</p>
            {finalized.then(|| view! { <div class="banner" data-test="finalized">{format!("{}{}", tr(lang, Msg::Finalized), if released { format!(" · {}", tr(lang, Msg::Released)) } else { String::new() })}</div> })}
            <table class="scores" data-test="member-totals">
                <thead><tr><th>{tr(lang, Msg::Member)}</th>
                    {res.part_means.iter().map(|p| view! { <th class="num">{p.code.clone()}</th> }).collect_view()}
                    <th class="num">{tr(lang, Msg::Total)}</th><th></th></tr></thead>
                <tbody>
                    {members.into_iter().map(|m| {
                        let uid = m.user_id;
                        let can_reopen = row.presides && !finalized && submitted.contains(&uid);
                        view! {
                            <tr data-test="member-total" data-member=uid.to_string()>
                                <td>{format!("{} ({})", m.name, role_label(m.role, lang))}</td>
                                {m.parts.iter().map(|p| view! { <td class="num">{p.to_string()}</td> }).collect_view()}
                                <td class="num" data-test="member-sum">{m.total.to_string()}</td>
                                <td>{can_reopen.then(|| view! {
                                    <button class="btn small ghost" data-test="reopen" on:click=move |_| reopen_for.set(Some(uid))>{tr(lang, Msg::Reopen)}</button>
                                })}</td>
                            </tr>
                        }
                    }).collect_view()}
                    <tr class="mean-row">
                        <td><strong>{tr(lang, Msg::Mean)}</strong></td>
                        {res.part_means.iter().map(|p| view! { <td class="num">{format::centi(p.mean, lang)}</td> }).collect_view()}
                        <td class="num"><strong data-test="mean">{mean}</strong></td><td></td>
                    </tr>
                </tbody>
            </table>
            {(!excluded.is_empty()).then(|| view! {
                <p class="muted small" data-test="not-counted">{format!("{}: {}", tr(lang, Msg::NotCounted), excluded.iter().map(|e| format!("{} ({})", e.name, exclusion_label(e.why, lang))).collect::<Vec<_>>().join(", "))}</p>
            })}
            <dl class="facts">
                <dt>{tr(lang, Msg::Spread)}</dt>
                <dd data-test="spread" class:warn=res.spread_flagged>{format!("{spread}{}", if res.spread_flagged { format!(" — {}", tr(lang, Msg::SpreadOver)) } else { String::new() })}</dd>
                <dt>{tr(lang, Msg::Quorum)}</dt>
                <dd data-test="quorum">{format!("{}/{} ({} ≥ {}) — {}", q.present, q.eligible, tr(lang, Msg::Quorum).to_lowercase(), q.required, if q.met { tr(lang, Msg::QuorumMet) } else { tr(lang, Msg::QuorumNotMet) })}</dd>
                <dt>{tr(lang, Msg::Stars)}</dt>
                <dd data-test="council-star">{star.as_ref().map(|s| format!("{}{}", star_label(s, lang), if s.proposed_for_five { format!(" — {}", tr(lang, Msg::ProposedForFive)) } else { String::new() })).unwrap_or_else(|| "—".into())}</dd>
            </dl>
            {star.map(|s| view! {
                <details open><summary>{tr(lang, Msg::Reasons)}</summary>
                    <ul class="reasons" data-test="council-reasons">{s.reasons.iter().map(|r| view! { <li>{if lang == Lang::En { r.en() } else { r.vi() }}</li> }).collect_view()}</ul>
                </details>
            })}
            <div class="actions">
                {can_finalize.then(|| view! {
                    <button class="btn primary" data-test="finalize" on:click=move |_| confirm.set(true)>{tr(lang, Msg::Finalize)}</button>
                })}
                {(finalized && !released && row.presides).then(|| view! {
                    <button class="btn" data-test="release" on:click=move |_| act(Box::pin(api::release(pid)))>{tr(lang, Msg::Release)}</button>
                })}
            </div>
            {row.presides.then(|| view! {
                <details><summary>{tr(lang, Msg::Recuse)}</summary>
                    {roster.iter().filter(|m| m.role != CouncilRole::Secretary).map(|m| {
                        let uid = m.user_id;
                        let recused = row.parts.iter().any(|p| p.user_id == uid && p.participation == Participation::Recused);
                        view! {
                            <label class="check-row">
                                <input type="checkbox" prop:checked=recused disabled=finalized
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        let p = if on { Participation::Recused } else { Participation::Present };
                                        act(Box::pin(async move { api::set_participation(pid, uid, p, "").await }));
                                    } />
                                {m.full_name.clone()}
                            </label>
                        }
                    }).collect_view()}
                </details>
            })}
            <Show when=move || confirm.get()>
                <div class="modal-bg"><div class="modal" role="dialog" data-test="confirm-finalize">
                    <p>{tr(lang, Msg::FinalizeConfirm)}</p>
                    <div class="actions">
                        <button class="btn" on:click=move |_| confirm.set(false)>{tr(lang, Msg::Cancel)}</button>
                        <button class="btn primary" data-test="confirm-finalize-yes" on:click=move |_| {
                            confirm.set(false);
                            act(Box::pin(async move { api::finalize(pid, "").await.map(|_| ()) }));
                        }>{tr(lang, Msg::Confirm)}</button>
                    </div>
                </div></div>
            </Show>
            <Show when=move || reopen_for.get().is_some()>
                <div class="modal-bg"><div class="modal" role="dialog" data-test="reopen-dialog">
                    <label>{tr(lang, Msg::ReopenReason)}
                        <textarea rows="2" data-test="reopen-reason" prop:value=move || reason.get()
                            on:input=move |ev| reason.set(event_target_value(&ev))></textarea></label>
                    <div class="actions">
                        <button class="btn" on:click=move |_| reopen_for.set(None)>{tr(lang, Msg::Cancel)}</button>
                        <button class="btn primary" data-test="reopen-yes" disabled=move || reason.get().trim().is_empty() on:click=move |_| {
                            let Some(owner) = reopen_for.get_untracked() else { return };
                            let why = format::nfc(reason.get_untracked().trim());
                            reopen_for.set(None);
                            act(Box::pin(async move { api::reopen(pid, owner, &why).await }));
                        }>{tr(lang, Msg::Confirm)}</button>
                    </div>
                </div></div>
            </Show>
        </div>
    }.into_any()
}
