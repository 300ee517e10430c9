//! The rounds this member takes part in; one round opens its products directly.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;

use crate::api;
use crate::app::{ctx, t};
use crate::components::page::{ErrorNote, Page};
use crate::format;
use crate::i18n::{Msg, tr};

#[component]
pub fn Rounds() -> impl IntoView {
    let c = ctx();
    let nav = use_navigate();
    let err = RwSignal::new(None);
    let rounds = RwSignal::new(None::<Vec<ocop_shared::wire::RoundInfo>>);
    let load = move || {
        spawn_local(async move {
            match api::rounds().await {
                Ok(r) => rounds.set(Some(r)),
                Err(e) => err.set(Some(e)),
            }
        })
    };
    load();
    // New data after a sync: read again.
    Effect::new(move |prev: Option<Option<String>>| {
        let k = c.status.get().and_then(|s| s.last_success);
        if prev.is_some() && prev.as_ref() != Some(&k) {
            load();
        }
        k
    });
    let sign_out = move |_| {
        let nav = nav.clone();
        spawn_local(async move {
            match api::sign_out(false).await {
                Ok(()) => {
                    c.session.set(None);
                    nav("/connect", Default::default());
                }
                Err(e) => err.set(Some(e)),
            }
        });
    };
    let title = Signal::derive(move || tr(c.lang.get(), Msg::Rounds).to_string());
    view! {
        <Page title=title>
            <ErrorNote err=err />
            {move || c.session.get().map(|s| view! {
                <p class="muted" data-test="who">{s.user.full_name.clone()}</p>
            })}
            {move || rounds.get().map(|rs| {
                if rs.is_empty() {
                    return view! { <p class="muted" data-test="no-rounds">{t(Msg::NoRounds)}</p> }.into_any();
                }
                rs.into_iter().map(|r| {
                    let href = format!("/rounds/{}", r.id);
                    view! {
                        <a class="card link-card" href=href data-test="round">
                            <strong>{r.name.clone()}</strong>
                            <small>{format!("{} · {} – {}", r.province, format::date(&r.starts_on), format::date(&r.ends_on))}</small>
                        </a>
                    }
                }).collect_view().into_any()
            })}
            <button class="btn ghost" data-test="sign-out" on:click=sign_out>{t(Msg::SignOut)}</button>
        </Page>
    }
}
