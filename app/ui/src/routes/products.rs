//! My products in a round, with my sheet's state and whether it is synced;
//! search by code or name. The chair and the secretary also reach the
//! council board from here.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;
use ocop_shared::wire::CouncilRole;
use uuid::Uuid;

use crate::api;
use crate::app::{ctx, t};
use crate::components::page::{ErrorNote, Page};
use crate::dto::ProductItem;
use crate::format;
use crate::i18n::{Msg, tr};
use crate::view::MyState;

#[component]
pub fn Products() -> impl IntoView {
    let c = ctx();
    let params = use_params_map();
    let round = move || {
        params
            .read()
            .get("round")
            .and_then(|s| s.parse::<Uuid>().ok())
            .unwrap_or_default()
    };
    let items = RwSignal::new(None::<Vec<ProductItem>>);
    let role = RwSignal::new(None::<CouncilRole>);
    let query = RwSignal::new(String::new());
    let err = RwSignal::new(None);
    let load = move || {
        let r = round();
        spawn_local(async move {
            match api::products(r).await {
                Ok(p) => items.set(Some(p)),
                Err(e) => err.set(Some(e)),
            }
            role.set(api::my_role(r).await.ok().flatten());
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
    let title = Signal::derive(move || tr(c.lang.get(), Msg::Products).to_string());
    view! {
        <Page title=title back="/rounds">
            <ErrorNote err=err />
            {move || matches!(role.get(), Some(CouncilRole::Chair | CouncilRole::ViceChair | CouncilRole::Secretary)).then(|| view! {
                <a class="btn primary" data-test="open-board" href=format!("/rounds/{}/board", round())>{t(Msg::Board)}</a>
            })}
            <input class="search" type="search" data-test="search" placeholder=t(Msg::Search)
                prop:value=move || query.get()
                on:input=move |ev| query.set(event_target_value(&ev)) />
            <ul class="list" data-test="products">
                {move || {
                    let lang = c.lang.get();
                    let q = query.get();
                    let list = items.get().unwrap_or_default();
                    let shown: Vec<_> = list.into_iter().filter(|i| {
                        format::matches(&i.product.code, &q) || format::matches(&i.product.name, &q)
                    }).collect();
                    if shown.is_empty() && items.get().is_some() {
                        return view! { <li class="muted">{tr(lang, Msg::NoProducts)}</li> }.into_any();
                    }
                    shown.into_iter().map(|i| {
                        let st = MyState::of(&i);
                        let href = format!("/rounds/{}/sheet/{}", i.product.round_id, i.product.id);
                        let sync = if i.unsynced { tr(lang, Msg::NotSynced) } else { "" };
                        view! {
                            <li>
                                <a class="row" href=href data-test="product" data-code=i.product.code.clone()>
                                    <div class="row-main">
                                        <strong>{i.product.name.clone()}</strong>
                                        <small>{format!("{} · {}", i.product.code, i.product.producer)}</small>
                                    </div>
                                    <div class="row-side">
                                        <span class=st.class() data-test="my-state">{st.label(lang)}</span>
                                        <small class="unsynced" data-test="unsynced">{sync}</small>
                                    </div>
                                </a>
                            </li>
                        }
                    }).collect_view().into_any()
                }}
            </ul>
        </Page>
    }
}
