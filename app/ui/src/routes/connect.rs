//! Connect: enrol this device with the code the OCOP office printed (the
//! QR text pasted, or server and code typed), or sign in with a password.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;

use crate::api;
use crate::app::{ctx, t};
use crate::components::page::{ErrorNote, Page};
use crate::dto::ApiError;
use crate::enrol;
use crate::format::nfc;
use crate::i18n::{Msg, tr};

#[component]
pub fn Connect() -> impl IntoView {
    let c = ctx();
    let nav = use_navigate();
    let use_password = RwSignal::new(false);
    let qr = RwSignal::new(String::new());
    let server = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let device = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let err = RwSignal::new(None::<ApiError>);
    spawn_local(async move {
        if let Ok(d) = api::defaults().await {
            if server.get_untracked().is_empty() {
                server.set(d.server_url);
            }
            device.set(d.device_name);
        }
    });
    // A pasted QR text fills server and code.
    Effect::new(move |_| {
        if let Some(l) = enrol::parse(&qr.get()) {
            server.set(l.server);
            code.set(l.code);
        }
    });
    let go = move || {
        let nav = nav.clone();
        let (s, cd, u, p, d) = (
            nfc(server.get_untracked().trim()),
            nfc(code.get_untracked().trim()),
            nfc(username.get_untracked().trim()),
            password.get_untracked(),
            device.get_untracked(),
        );
        let by_password = use_password.get_untracked();
        if s.is_empty() || (!by_password && cd.is_empty()) || (by_password && u.is_empty()) {
            err.set(Some(ApiError::local(
                "missing",
                "fill in the server address and the code (or username and password)",
                "hãy nhập địa chỉ máy chủ và mã ghi danh (hoặc tên đăng nhập và mật khẩu)",
            )));
            return;
        }
        busy.set(true);
        err.set(None);
        spawn_local(async move {
            let r = if by_password {
                api::login(&s, &u, &p, &d).await
            } else {
                api::enrol(&s, &cd, &d).await
            };
            busy.set(false);
            match r {
                Ok(_) => {
                    c.session.set(api::session().await.ok().flatten());
                    let _ = api::sync_now().await;
                    nav("/rounds", Default::default());
                }
                Err(e) => err.set(Some(e)),
            }
        });
    };
    let title = Signal::derive(move || tr(c.lang.get(), Msg::ConnectTitle).to_string());
    view! {
        <Page title=title no_sync=true>
            <p class="muted">{t(Msg::ConnectIntro)}</p>
            <div class="tabs" role="tablist">
                <button role="tab" class="tab" class:on=move || !use_password.get() data-test="tab-enrol"
                    on:click=move |_| use_password.set(false)>{t(Msg::EnrolTab)}</button>
                <button role="tab" class="tab" class:on=move || use_password.get() data-test="tab-login"
                    on:click=move |_| use_password.set(true)>{t(Msg::LoginTab)}</button>
            </div>
            <form class="form" on:submit=move |ev| { ev.prevent_default(); go() }>
                <Show when=move || !use_password.get()>
                    <label>{t(Msg::QrText)}
                        <textarea rows="2" data-test="qr" placeholder=t(Msg::QrHint)
                            prop:value=move || qr.get()
                            on:input=move |ev| qr.set(event_target_value(&ev))></textarea>
                    </label>
                </Show>
                <label>{t(Msg::ServerUrl)}
                    <input type="url" data-test="server" inputmode="url" autocomplete="off"
                        placeholder="http://127.0.0.1:8787"
                        prop:value=move || server.get()
                        on:input=move |ev| server.set(event_target_value(&ev)) />
                </label>
                <Show when=move || !use_password.get()
                    fallback=move || view! {
                        <label>{t(Msg::Username)}
                            <input data-test="username" autocomplete="username" autocapitalize="none"
                                prop:value=move || username.get()
                                on:input=move |ev| username.set(event_target_value(&ev)) />
                        </label>
                        <label>{t(Msg::Password)}
                            <input type="password" data-test="password" autocomplete="current-password"
                                prop:value=move || password.get()
                                on:input=move |ev| password.set(event_target_value(&ev)) />
                        </label>
                    }>
                    <label>{t(Msg::EnrolCode)}
                        <input data-test="code" autocapitalize="characters" autocomplete="off"
                            placeholder="K7QP-M2XD"
                            prop:value=move || code.get()
                            on:input=move |ev| code.set(event_target_value(&ev)) />
                    </label>
                </Show>
                <ErrorNote err=err />
                <button type="submit" class="btn primary big" data-test="connect" disabled=move || busy.get()>
                    {move || if busy.get() { t(Msg::Working)() }
                        else if use_password.get() { t(Msg::LoginButton)() } else { t(Msg::EnrolButton)() }}
                </button>
            </form>
        </Page>
    }
}
