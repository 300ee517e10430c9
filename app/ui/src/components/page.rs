//! The frame of every screen: a top bar (back, title, language switch), the
//! sync bar, then the screen itself.

use leptos::prelude::*;

use crate::app::{ctx, t};
use crate::components::sync_bar::SyncBar;
use crate::i18n::Msg;

#[component]
pub fn Page(
    /// The title, already in the current language.
    #[prop(into)]
    title: Signal<String>,
    /// Where "back" goes; none on the first screen.
    #[prop(optional, into)]
    back: Option<String>,
    /// Hide the sync bar (before signing in there is nothing to sync).
    #[prop(optional)]
    no_sync: bool,
    #[prop(optional)] wide: bool,
    children: Children,
) -> impl IntoView {
    let c = ctx();
    view! {
        <div class="page" class:wide=wide>
            <header class="topbar">
                {back.map(|href| view! {
                    <a class="icon-btn" href=href data-test="back" aria-label=t(Msg::Back)>"‹"</a>
                })}
                <h1 data-test="title">{move || title.get()}</h1>
                <button class="lang" data-test="lang"
                    on:click=move |_| c.lang.update(|l| *l = l.other())>
                    {t(Msg::SwitchLanguage)}
                </button>
            </header>
            {(!no_sync).then(|| view! { <SyncBar /> })}
            <div class="content">{children()}</div>
        </div>
    }
}

/// A message for the user when something failed, in their language.
#[component]
pub fn ErrorNote(err: RwSignal<Option<crate::dto::ApiError>>) -> impl IntoView {
    let lang = ctx().lang;
    move || {
        err.get().map(|e| {
            view! {
                <div class="error" role="alert" data-test="error" data-code=e.code.clone()>
                    {e.text(lang.get()).to_string()}
                    <button class="link" on:click=move |_| err.set(None)>"×"</button>
                </div>
            }
        })
    }
}
