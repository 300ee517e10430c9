//! The app: shared context (language, session, sync status), the router.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::use_navigate;
use leptos_router::path;

use crate::api;
use crate::dto::{Session, SyncStatus};
use crate::i18n::{Lang, Msg, tr};
use crate::routes::{
    board::Board, connect::Connect, products::Products, rounds::Rounds, sheet::Sheet,
    sync_page::SyncPage,
};

/// What every screen may read.
#[derive(Clone, Copy)]
pub struct Ctx {
    pub lang: RwSignal<Lang>,
    pub status: RwSignal<Option<SyncStatus>>,
    pub session: RwSignal<Option<Session>>,
    /// Milliseconds since the epoch, ticking every 20 s ("2 phút trước").
    pub now_ms: RwSignal<f64>,
}

pub fn ctx() -> Ctx {
    expect_context::<Ctx>()
}

/// A fixed text in the current language.
pub fn t(m: Msg) -> impl Fn() -> &'static str + Copy + Send + Sync + 'static {
    let lang = ctx().lang;
    move || tr(lang.get(), m)
}

const LANG_KEY: &str = "ocop.lang";

fn stored_lang() -> Lang {
    web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item(LANG_KEY).ok().flatten())
        .map_or(Lang::Vi, |s| Lang::from_code(&s))
}

fn store_lang(l: Lang) {
    if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = s.set_item(LANG_KEY, l.code());
    }
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = el.set_attribute("lang", l.code());
    }
}

#[component]
pub fn App() -> impl IntoView {
    let c = Ctx {
        lang: RwSignal::new(stored_lang()),
        status: RwSignal::new(None),
        session: RwSignal::new(None),
        now_ms: RwSignal::new(js_sys::Date::now()),
    };
    provide_context(c);
    Effect::new(move |_| store_lang(c.lang.get()));
    api::on_sync_status(move |s| c.status.set(Some(s)));
    spawn_local(async move {
        if let Ok(s) = api::status().await {
            c.status.set(Some(s));
        }
    });
    set_interval(
        move || c.now_ms.set(js_sys::Date::now()),
        std::time::Duration::from_secs(20),
    );
    view! {
        <Router>
            <Routes fallback=|| view! { <p class="pad">"404"</p> }>
                <Route path=path!("/") view=Home />
                <Route path=path!("/connect") view=Connect />
                <Route path=path!("/rounds") view=Rounds />
                <Route path=path!("/rounds/:round") view=Products />
                <Route path=path!("/rounds/:round/sheet/:product") view=Sheet />
                <Route path=path!("/rounds/:round/board") view=Board />
                <Route path=path!("/sync") view=SyncPage />
            </Routes>
        </Router>
    }
}

/// Start: signed in → the rounds, otherwise → Connect.
#[component]
fn Home() -> impl IntoView {
    let nav = use_navigate();
    let c = ctx();
    spawn_local(async move {
        let s = api::session().await.ok().flatten();
        let to = if s.is_some() { "/rounds" } else { "/connect" };
        c.session.set(s);
        nav(to, Default::default());
    });
    view! { <p class="pad muted">{t(Msg::Working)}</p> }
}
