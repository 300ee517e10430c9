//! The score sheet: parts A/B/C with their caps, one card per criterion
//! with its options as large choices, evidence hints, a note, photos and
//! the knock-out where the sheet has one. The sticky header shows the
//! total, the parts against their caps, the star it gives now (computed
//! here by `ocop-shared`, the server's code) and what is unanswered.
//! Every tap is committed by the device core at once; there is no save.

use std::collections::BTreeMap;

use base64::Engine;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;
use ocop_shared::rubric::{Criterion, Rubric};
use ocop_shared::score::{self, SheetScore};
use ocop_shared::wire::{Answer, Level};
use uuid::Uuid;
use wasm_bindgen::JsCast;

use crate::api;
use crate::app::{ctx, t};
use crate::components::page::{ErrorNote, Page};
use crate::dto::{ApiError, SheetView};
use crate::format;
use crate::i18n::{Lang, Msg, tr};

#[derive(Clone)]
struct Loaded {
    rubric: Rubric,
    level: Level,
    view: SheetView,
}

#[component]
pub fn Sheet() -> impl IntoView {
    let c = ctx();
    let params = use_params_map();
    let id = |k: &str| {
        params
            .read_untracked()
            .get(k)
            .and_then(|s| s.parse::<Uuid>().ok())
            .unwrap_or_default()
    };
    let (round, product) = (id("round"), id("product"));
    let data = RwSignal::new(None::<Loaded>);
    let answers = RwSignal::new(BTreeMap::<String, Answer>::new());
    let note = RwSignal::new(String::new());
    let err = RwSignal::new(None::<ApiError>);
    let confirm = RwSignal::new(false);
    let load = move || {
        spawn_local(async move {
            let r = async {
                let rubric = api::rubric(product).await?;
                let view = api::sheet(product).await?;
                let level = api::rounds()
                    .await?
                    .into_iter()
                    .find(|r| r.id == round)
                    .map_or(Level::Province, |r| r.level);
                Ok::<_, ApiError>(Loaded {
                    rubric,
                    level,
                    view,
                })
            }
            .await;
            match r {
                Ok(l) => {
                    answers.set(
                        l.view
                            .sheet
                            .answers
                            .iter()
                            .map(|(k, v)| (k.clone(), v.answer.clone()))
                            .collect(),
                    );
                    note.set(l.view.sheet.note.clone());
                    data.set(Some(l));
                }
                Err(e) => err.set(Some(e)),
            }
        })
    };
    load();
    // The score of what is on screen, by the same code as the server's.
    let score = Memo::new(move |_| {
        data.with(|d| {
            d.as_ref()
                .and_then(|d| answers.with(|a| score::score_sheet(&d.rubric, a, d.level).ok()))
        })
    });
    let editable = move || data.with(|d| d.as_ref().is_some_and(|d| d.view.editable));
    // One change: shown at once, committed by the core in tap order.
    let change = move |code: String, f: Box<dyn Fn(&mut Answer)>, send: Sender| {
        answers.update(|a| f(a.entry(code.clone()).or_default()));
        api::in_order(async move {
            if let Err(e) = send(code).await {
                err.set(Some(e));
                load();
            }
        });
    };
    let submit = move || {
        confirm.set(false);
        api::in_order(async move {
            match api::submit(product).await {
                Ok(()) => load(),
                Err(e) => err.set(Some(e)),
            }
        });
    };
    let title = Signal::derive(move || {
        data.with(|d| {
            d.as_ref().map_or_else(
                || tr(c.lang.get(), Msg::ScoreSheet).to_string(),
                |d| format!("{} · {}", d.view.product.code, d.view.product.name),
            )
        })
    });
    view! {
        <Page title=title back=format!("/rounds/{round}")>
            <ErrorNote err=err />
            {move || score.get().map(|s| view! { <Header score=s /> })}
            {move || data.with(|d| d.as_ref().map(|d| {
                let lang = c.lang.get();
                let locked = if d.view.sheet.status == ocop_shared::wire::SheetStatus::Submitted {
                    Some(tr(lang, Msg::SubmittedLocked))
                } else if !d.view.editable {
                    Some(tr(lang, Msg::FinalizedLocked))
                } else { None };
                let rubric = d.rubric.clone();
                view! {
                    {locked.map(|m| view! { <div class="banner" data-test="locked">{m}</div> })}
                    {(!d.view.conflicts.is_empty()).then(|| view! {
                        <a class="banner warn" href="/sync" data-test="sheet-conflicts">
                            {format!("{}: {}", tr(lang, Msg::Conflicts), d.view.conflicts.len())}
                        </a>
                    })}
                    <p class="muted small">{rubric.title_vi.clone()}</p>
                    {rubric.parts.iter().map(|part| view! {
                        <section class="part" data-test=format!("part-{}", part.code)>
                            <h2>{format!("{} · {}", part.code, if lang == Lang::En { part.title_en.clone().unwrap_or(part.title_vi.clone()) } else { part.title_vi.clone() })}
                                <small>{format!(" ({} {})", part.cap, tr(lang, Msg::Points))}</small></h2>
                            {part.sections.iter().map(|sec| view! {
                                <h3>{format!("{}. {}", sec.code, sec.title_vi)}</h3>
                                {sec.criteria.iter().map(|cr| view! {
                                    <CriterionCard criterion=cr.clone() product=product answers=answers
                                        editable=Signal::derive(editable) change=change />
                                }).collect_view()}
                            }).collect_view()}
                        </section>
                    }).collect_view()}
                }
            }))}
            <Show when=move || data.with(|d| d.is_some())>
                <label class="card">{t(Msg::SheetNote)}
                    <textarea rows="3" data-test="sheet-note" prop:value=move || note.get()
                        disabled=move || !editable()
                        on:change=move |ev| {
                            let v = format::nfc(&event_target_value(&ev));
                            note.set(v.clone());
                            api::in_order(async move {
                                if let Err(e) = api::set_note(product, &v).await { err.set(Some(e)); }
                            });
                        }></textarea>
                </label>
                <Show when=editable>
                    <button class="btn primary big" data-test="submit" on:click=move |_| confirm.set(true)>
                        {t(Msg::Submit)}
                    </button>
                </Show>
            </Show>
            <Show when=move || confirm.get()>
                <div class="modal-bg">
                    <div class="modal" role="dialog" data-test="confirm">
                        {move || {
                            let lang = c.lang.get();
                            let missing = score.get().map(|s| s.unanswered).unwrap_or_default();
                            if missing.is_empty() {
                                view! {
                                    <h2>{tr(lang, Msg::SubmitConfirmTitle)}</h2>
                                    <p>{tr(lang, Msg::SubmitConfirmAll)}</p>
                                    <div class="actions">
                                        <button class="btn" data-test="cancel" on:click=move |_| confirm.set(false)>{tr(lang, Msg::Cancel)}</button>
                                        <button class="btn primary" data-test="confirm-submit" on:click=move |_| submit()>{tr(lang, Msg::Confirm)}</button>
                                    </div>
                                }.into_any()
                            } else {
                                view! {
                                    <h2>{tr(lang, Msg::SubmitConfirmTitle)}</h2>
                                    <p>{tr(lang, Msg::SubmitConfirmMissing)}</p>
                                    <ul class="chips" data-test="missing">
                                        {missing.into_iter().map(|m| view! {
                                            <li><a href=format!("#c-{m}") on:click=move |_| confirm.set(false)>{m.clone()}</a></li>
                                        }).collect_view()}
                                    </ul>
                                    <div class="actions">
                                        <button class="btn" data-test="cancel" on:click=move |_| confirm.set(false)>{tr(lang, Msg::Cancel)}</button>
                                    </div>
                                }.into_any()
                            }
                        }}
                    </div>
                </div>
            </Show>
        </Page>
    }
}

/// The sticky summary: total, parts against caps, star now, unanswered.
#[component]
fn Header(score: SheetScore) -> impl IntoView {
    let lang = ctx().lang.get_untracked();
    let star = &score.star;
    let star_text = if star.disqualified {
        tr(lang, Msg::Disqualified).to_string()
    } else {
        format!(
            "{} {}",
            format::stars(star.stars),
            if star.proposed_for_five {
                tr(lang, Msg::ProposedForFive)
            } else {
                ""
            }
        )
    };
    let reasons: Vec<String> = star
        .reasons
        .iter()
        .skip(1)
        .map(|r| if lang == Lang::En { r.en() } else { r.vi() })
        .collect();
    let unanswered = score.unanswered.len();
    view! {
        <div class="sheet-head" data-test="sheet-head">
            <div class="total">
                <span class="big-num" data-test="total">{score.total.to_string()}</span>
                <small>"/100"</small>
            </div>
            <div class="parts">
                {score.parts.iter().map(|p| view! {
                    <span class="part-chip" data-test=format!("sub-{}", p.code)>{format!("{} {}/{}", p.code, p.points, p.cap)}</span>
                }).collect_view()}
            </div>
            <div class="star" data-test="star">{star_text}</div>
            <div class="left" data-test="unanswered" data-count=unanswered.to_string()>
                {if unanswered == 0 { tr(lang, Msg::AllAnswered).to_string() }
                 else { format!("{}: {unanswered}", tr(lang, Msg::Unanswered)) }}
            </div>
            {(!reasons.is_empty()).then(|| view! {
                <ul class="reasons" data-test="reasons">{reasons.into_iter().map(|r| view! { <li>{r}</li> }).collect_view()}</ul>
            })}
        </div>
    }
}

type Sender = Box<
    dyn FnOnce(
        String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ApiError>>>>,
>;

#[component]
fn CriterionCard(
    criterion: Criterion,
    product: Uuid,
    answers: RwSignal<BTreeMap<String, Answer>>,
    editable: Signal<bool>,
    change: impl Fn(String, Box<dyn Fn(&mut Answer)>, Sender) + Copy + 'static,
) -> impl IntoView {
    let c = ctx();
    let code = criterion.code.clone();
    let code2 = code.clone();
    let current = Memo::new(move |_| answers.with(|a| a.get(&code2).cloned().unwrap_or_default()));
    let err = RwSignal::new(None::<ApiError>);
    let photos = RwSignal::new(Vec::<(String, String)>::new());
    // Thumbnails of the photos this answer names.
    Effect::new(move |_| {
        let shas = current.get().attachments;
        spawn_local(async move {
            let mut out = Vec::new();
            for s in shas {
                if let Ok(url) = api::photo(&s).await {
                    out.push((s, url));
                }
            }
            photos.set(out);
        });
    });
    let lang = c.lang.get_untracked();
    let text = if lang == Lang::En {
        criterion
            .text_en
            .clone()
            .unwrap_or(criterion.text_vi.clone())
    } else {
        criterion.text_vi.clone()
    };
    let answered = move || current.get().option.is_some();
    let options = criterion.option_sets.iter().map(|set| {
        let label = set.label_vi.clone();
        let opts = set.options.iter().map(|o| {
            let (oid, oid2) = (o.id.clone(), o.id.clone());
            let code = code.clone();
            let otext = if lang == Lang::En { o.text_en.clone().unwrap_or(o.text_vi.clone()) } else { o.text_vi.clone() };
            let chosen = move || current.get().option.as_deref() == Some(oid.as_str());
            let pick = move |_| {
                let id = oid2.clone();
                let id2 = id.clone();
                change(code.clone(), Box::new(move |a| a.option = Some(id.clone())),
                    Box::new(move |code| Box::pin(async move { api::set_answer(product, &code, Some(&id2)).await })));
            };
            view! {
                <button class="opt" class:chosen=chosen.clone() data-test=format!("opt-{}-{}", criterion.code, o.id)
                    aria-pressed=move || chosen().to_string() disabled=move || !editable.get() on:click=pick>
                    <span class="opt-text">{otext}</span>
                    <span class="opt-pts">{format!("{} đ", o.points)}</span>
                    {o.evidence_vi.clone().map(|e| view! { <small class="evidence">{format!("{}: {e}", tr(lang, Msg::Evidence))}</small> })}
                </button>
            }
        }).collect_view();
        view! {
            {label.map(|l| view! { <p class="set-label">{l}</p> })}
            <div class="opts">{opts}</div>
        }
    }).collect_view();
    let ko = criterion.knockout.clone().map(|k| {
        let code = code.clone();
        let raised = move || current.get().knockout;
        view! {
            <label class="knockout" data-test=format!("ko-{}", criterion.code)>
                <input type="checkbox" prop:checked=raised disabled=move || !editable.get()
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        change(code.clone(), Box::new(move |a| a.knockout = on),
                            Box::new(move |code| Box::pin(async move { api::set_knockout(product, &code, on).await })));
                    } />
                <span>{format!("{}: {}", tr(lang, Msg::Knockout), k.text_vi)}</span>
            </label>
        }
    });
    let code_n = code.clone();
    let code_p = code.clone();
    let on_photo = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = ev.target().unwrap().unchecked_into();
        let Some(files) = input.files() else { return };
        let code = code_p.clone();
        for i in 0..files.length() {
            let Some(f) = files.get(i) else { continue };
            let code = code.clone();
            api::in_order(async move {
                let buf = match wasm_bindgen_futures::JsFuture::from(f.array_buffer()).await {
                    Ok(b) => js_sys::Uint8Array::new(&b).to_vec(),
                    Err(_) => return,
                };
                match api::add_photo(
                    product,
                    &code,
                    base64::engine::general_purpose::STANDARD.encode(&buf),
                )
                .await
                {
                    Ok(sha) => answers.update(|a| {
                        let e = a.entry(code.clone()).or_default();
                        if !e.attachments.contains(&sha) {
                            e.attachments.push(sha)
                        }
                    }),
                    Err(e) => err.set(Some(e)),
                }
            });
        }
        input.set_value("");
    };
    view! {
        <article class="card crit" class:answered=answered id=format!("c-{}", criterion.code) data-test=format!("crit-{}", criterion.code)>
            <header class="crit-head">
                <span class="crit-code">{criterion.code.clone()}</span>
                <span class="crit-text">{text}</span>
                <span class="crit-max">{format!("{} đ", criterion.max_points)}</span>
            </header>
            {criterion.notes.iter().map(|n| view! { <p class="crit-note">{n.clone()}</p> }).collect_view()}
            {options}
            {ko}
            <ErrorNote err=err />
            <details class="extras">
                <summary>{format!("{} · {}", tr(lang, Msg::Note), tr(lang, Msg::AddPhoto))}</summary>
                <textarea rows="2" data-test=format!("note-{}", criterion.code) placeholder=tr(lang, Msg::NotePlaceholder)
                    prop:value=move || current.get().note disabled=move || !editable.get()
                    on:change=move |ev| {
                        let v = format::nfc(&event_target_value(&ev));
                        let v2 = v.clone();
                        change(code_n.clone(), Box::new(move |a| a.note = v.clone()),
                            Box::new(move |code| Box::pin(async move { api::set_answer_note(product, &code, &v2).await })));
                    }></textarea>
                <div class="photos">
                    {move || photos.get().into_iter().map(|(s, url)| view! {
                        <img class="thumb" src=url alt=s data-test="thumb" />
                    }).collect_view()}
                    <label class="btn small photo-btn">
                        {tr(lang, Msg::AddPhoto)}
                        <input type="file" accept="image/*" capture="environment" multiple
                            data-test=format!("photo-{}", criterion.code) disabled=move || !editable.get()
                            on:change=on_photo />
                    </label>
                </div>
            </details>
        </article>
    }
}
