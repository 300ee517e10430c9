//! The real app (Tauri binary, WebKitGTK WebView) against a real server on
//! 127.0.0.1, driven as a member and a chair would. Run by `scripts/test`
//! under Xvfb; see `ocop_tests::ui`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ocop_app::Device;
use ocop_shared::rubric::Rubric;
use ocop_shared::wire::{Answer, Level, SheetStatus};
use ocop_sync_server::demo::{self, DemoInfo};
use ocop_sync_server::testing::{self, TestServer};
use ocop_tests::demo_rubric;
use ocop_tests::ui::{self, App};
use uuid::Uuid;

/// The UI tests share one display; one app at a time keeps them independent.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn server(dir: &Path) -> (TestServer, DemoInfo) {
    let s = testing::spawn(dir).await.expect("server");
    let info = demo::seed_with_url(&*s.state.store, &s.url).expect("demo data");
    (s, info)
}

/// Which option the test picks for the i-th criterion (varied, not all top).
fn pick(rubric: &Rubric) -> Vec<(String, String)> {
    rubric
        .criteria()
        .enumerate()
        .map(|(i, (_, _, c))| {
            let opts = &c.option_sets[0].options;
            (c.code.clone(), opts[(i * 7 + 3) % opts.len()].id.clone())
        })
        .collect()
}

fn photo_png(path: &Path) {
    let img = image::RgbImage::from_fn(2400, 1800, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, 90])
    });
    img.save(path).unwrap();
}

async fn enrol(app: &App, qr: &str) {
    app.find("[data-test=qr]")
        .await
        .send_keys(qr)
        .await
        .unwrap();
    app.click("[data-test=connect]").await;
    app.find("[data-test=round]").await;
}

async fn open_product(app: &App, code: &str) {
    app.click("[data-test=round]").await;
    app.click(&format!("[data-test=product][data-code='{code}']"))
        .await;
    app.find("[data-test=sheet-head]").await;
}

async fn wait_synced(app: &App) {
    app.wait_text("[data-test=sync-state]", |t| {
        t.contains("Đã đồng bộ") || t.contains("Up to date")
    })
    .await;
}

/// Signs in on a fresh device as `username` and returns that device after a sync.
async fn server_view(url: &str, dir: &Path, info: &DemoInfo, username: &str) -> Device {
    let u = info.user(username).unwrap();
    let d = Device::open(dir).unwrap();
    d.login(url, &u.username, &u.password, "checker")
        .await
        .unwrap();
    d.sync_now().await.unwrap();
    d
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_enrols_scores_every_criterion_with_a_note_and_a_photo_and_submits() {
    let Some(bin) = ui::require_app() else { return };
    let _one = ONE_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let (srv, info) = server(&tmp.path().join("server")).await;
    let member = &info.members()[0];
    let product = &info.products[0];
    let rubric = demo_rubric(&info, 0);
    let app = App::start(&bin, &tmp.path().join("phone"), &srv.url, 390, 844).await;
    let shots = ui::screenshot_dir();
    app.screenshot(&shots.join("connect-390.png")).await;

    enrol(&app, &member.qr_payload).await;
    app.wait_text("[data-test=who]", |t| t == member.full_name)
        .await;
    app.click("[data-test=round]").await;
    app.find("[data-test=product]").await;
    app.screenshot(&shots.join("products-390.png")).await;
    app.click(&format!(
        "[data-test=product][data-code='{}']",
        product.code
    ))
    .await;
    app.find("[data-test=sheet-head]").await;

    let picks = pick(&rubric);
    let mut answers = BTreeMap::new();
    for (code, opt) in &picks {
        app.click(&format!("[data-test='opt-{code}-{opt}']")).await;
        answers.insert(
            code.clone(),
            Answer {
                option: Some(opt.clone()),
                ..Default::default()
            },
        );
    }
    let expect = ocop_shared::score::score_sheet(&rubric, &answers, Level::Province).unwrap();
    app.wait_text("[data-test=total]", |t| t == expect.total.to_string())
        .await;
    assert_eq!(
        app.attr("[data-test=unanswered]", "data-count")
            .await
            .as_deref(),
        Some("0")
    );
    // A note and a photo on the first criterion.
    let first = &picks[0].0;
    app.click(&format!("[data-test='crit-{first}'] summary"))
        .await;
    let note = app.find(&format!("[data-test='note-{first}']")).await;
    note.send_keys("Có hồ sơ nguồn gốc nguyên liệu")
        .await
        .unwrap();
    app.click("[data-test=title]").await; // blur: the note is committed on change
    let png = tmp.path().join("evidence.png");
    photo_png(&png);
    app.find(&format!("[data-test='photo-{first}']"))
        .await
        .send_keys(&png.to_string_lossy())
        .await
        .unwrap();
    app.find(&format!("[data-test='crit-{first}'] [data-test=thumb]"))
        .await;
    app.screenshot(&shots.join("sheet-390.png")).await;

    app.click("[data-test=submit]").await;
    app.find("[data-test=confirm-submit]").await;
    app.screenshot(&shots.join("submit-390.png")).await;
    app.click("[data-test=confirm-submit]").await;
    app.find("[data-test=locked]").await;
    // The same sheet on a laptop.
    app.client.set_window_size(1280, 800).await.unwrap();
    app.client
        .execute("window.scrollTo(0, 0)", vec![])
        .await
        .unwrap();
    app.screenshot(&shots.join("sheet-1280.png")).await;
    app.click("[data-test=sync-now]").await;
    wait_synced(&app).await;
    app.close().await;

    // The server holds exactly that sheet: read back by another device.
    let d = server_view(&srv.url, &tmp.path().join("check"), &info, &member.username).await;
    let v = d.sheet(product.id).unwrap();
    assert_eq!(v.sheet.status, SheetStatus::Submitted);
    assert_eq!(v.score.total, expect.total);
    for (code, opt) in &picks {
        assert_eq!(
            v.sheet.answers[code].answer.option.as_deref(),
            Some(opt.as_str()),
            "{code}"
        );
    }
    let a = &v.sheet.answers[first].answer;
    assert_eq!(a.note, "Có hồ sơ nguồn gốc nguyên liệu");
    assert_eq!(a.attachments.len(), 1);
    // The photo went up downscaled to 1600 px and reached the other device.
    tokio::time::sleep(Duration::from_millis(100)).await;
    d.sync_now().await.unwrap();
    let bytes = d.photo(&a.attachments[0]).unwrap();
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (1600, 1200));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_scored_sheet_survives_no_server_and_a_killed_app_and_syncs_when_back() {
    let Some(bin) = ui::require_app() else { return };
    let _one = ONE_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let sdir = tmp.path().join("server");
    let (srv, info) = server(&sdir).await;
    let url = srv.url.clone();
    let member = &info.members()[1];
    let product = &info.products[1];
    let rubric = demo_rubric(&info, 1);
    let phone = tmp.path().join("phone");
    let app = App::start(&bin, &phone, &url, 390, 844).await;
    enrol(&app, &member.qr_payload).await;
    open_product(&app, &product.code).await;
    wait_synced(&app).await;

    // The server goes away; half the sheet is scored.
    srv.stop();
    drop(srv);
    let picks = pick(&rubric);
    let half = &picks[..picks.len() / 2];
    for (code, opt) in half {
        app.click(&format!("[data-test='opt-{code}-{opt}']")).await;
    }
    app.click("[data-test=sync-now]").await;
    app.wait_text("[data-test=sync-state]", |t| {
        t.contains("Ngoại tuyến") && t.contains("thay đổi chờ gửi")
    })
    .await;
    app.screenshot(&ui::screenshot_dir().join("offline-390.png"))
        .await;
    app.kill().await;

    // Restarted without a server: everything is still there.
    let app = App::start(&bin, &phone, &url, 390, 844).await;
    open_product(&app, &product.code).await;
    for (code, opt) in half {
        assert_eq!(
            app.attr(&format!("[data-test='opt-{code}-{opt}']"), "aria-pressed")
                .await
                .as_deref(),
            Some("true"),
            "{code} lost after the kill"
        );
    }
    app.wait_text("[data-test=sync-state]", |t| t.contains("thay đổi chờ gửi"))
        .await;
    let pending: u64 = app
        .content("[data-test=pending-count]")
        .await
        .parse()
        .expect("a count");
    assert!(pending > 0, "the answers wait in the outbox");

    // The server comes back on the same address: the pending count falls to 0.
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let state = ocop_sync_server::open(&sdir, Default::default())
        .await
        .unwrap();
    let listener = ocop_sync_server::listen(([127, 0, 0, 1], port).into()).unwrap();
    let task = tokio::spawn(ocop_sync_server::serve(listener, state));
    app.click("[data-test=sync-now]").await;
    wait_synced(&app).await;
    assert_eq!(app.content("[data-test=pending-count]").await, "0");
    app.close().await;
    let d = server_view(&url, &tmp.path().join("check"), &info, &member.username).await;
    let v = d.sheet(product.id).unwrap();
    assert_eq!(v.sheet.answers.len(), half.len());
    task.abort();
}

/// Three members submit through the core; the chair's app shows what
/// `ocop_shared::council::aggregate` gives, then releases and finalizes.
#[tokio::test(flavor = "multi_thread")]
async fn the_chairs_board_shows_the_council_result_and_finalizing_locks_the_sheets() {
    let Some(bin) = ui::require_app() else { return };
    let _one = ONE_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let (srv, info) = server(&tmp.path().join("server")).await;
    let product = &info.products[2];
    let rubric = demo_rubric(&info, 2);
    let chair = info.chair();
    // The chair and five members (a quorum of six of eight) score on their
    // own devices (the core, over HTTP), close enough not to need a rescore.
    let mut devices = Vec::new();
    let scorers: Vec<_> = std::iter::once(chair)
        .chain(info.members()[..5].iter())
        .collect();
    for (i, u) in scorers.into_iter().enumerate() {
        let d = Device::open(tmp.path().join(format!("dev{i}"))).unwrap();
        d.login(&srv.url, &u.username, &u.password, "phone")
            .await
            .unwrap();
        d.sync_now().await.unwrap();
        for (j, (_, _, c)) in rubric.criteria().enumerate() {
            // The best option everywhere but on three criteria per member.
            let mut opts = c.option_sets[0].options.clone();
            opts.sort_by_key(|o| std::cmp::Reverse(o.points));
            let k = usize::from((3 * i..3 * i + 3).contains(&j)).min(opts.len() - 1);
            d.set_answer(product.id, &c.code, Some(&opts[k].id))
                .unwrap();
        }
        d.submit(product.id).unwrap();
        d.sync_now().await.unwrap();
        devices.push(d);
    }
    // The chair's core device sees every submitted sheet once it syncs again.
    devices[0].sync_now().await.unwrap();
    let app = App::start(&bin, &tmp.path().join("laptop"), &srv.url, 1280, 800).await;
    app.click("[data-test=tab-login]").await;
    app.find("[data-test=username]")
        .await
        .send_keys(&chair.username)
        .await
        .unwrap();
    app.find("[data-test=password]")
        .await
        .send_keys(&chair.password)
        .await
        .unwrap();
    app.click("[data-test=connect]").await;
    app.click("[data-test=round]").await;
    app.click("[data-test=open-board]").await;
    app.click(&format!(
        "[data-test=board-row][data-code='{}'] [data-test=board-product]",
        product.code
    ))
    .await;
    app.find("[data-test=detail]").await;
    // The same numbers as the shared aggregation over the server's sheets.
    let expect = devices[0].council_result(product.id).unwrap();
    let mean = expect.mean_total.unwrap();
    let vi_mean = format!("{},{:02}", mean.hundredths() / 100, mean.hundredths() % 100);
    app.wait_text("[data-test=mean]", |t| t == vi_mean).await;
    for m in &expect.members {
        let css = format!(
            "[data-test=member-total][data-member='{}'] [data-test=member-sum]",
            m.user_id
        );
        assert_eq!(app.text(&css).await, m.total.to_string());
    }
    let spread = expect.spread.unwrap();
    let spread_text = app.text("[data-test=spread]").await;
    assert!(
        spread_text.starts_with(&format!(
            "{},{:02}",
            spread.hundredths() / 100,
            spread.hundredths() % 100
        )),
        "{spread_text}"
    );
    let stars = expect.star.as_ref().unwrap().stars as usize;
    let star_text = app.text("[data-test=council-star]").await;
    assert_eq!(star_text.matches('★').count(), stars, "{star_text}");
    app.screenshot(&ui::screenshot_dir().join("board-1280.png"))
        .await;
    // The chair's board on a phone: the panes stack, the grid scrolls sideways.
    app.client.set_window_size(390, 844).await.unwrap();
    app.screenshot(&ui::screenshot_dir().join("board-390.png"))
        .await;
    app.client.set_window_size(1280, 800).await.unwrap();

    app.click("[data-test=finalize]").await;
    app.click("[data-test=confirm-finalize-yes]").await;
    app.find("[data-test=finalized]").await;
    app.click("[data-test=sync-now]").await;
    wait_synced(&app).await;
    app.click("[data-test=release]").await;
    app.click("[data-test=sync-now]").await;
    app.wait_text("[data-test=finalized]", |t| t.contains("Đã công bố"))
        .await;
    wait_synced(&app).await;
    app.close().await;

    // A member's later edit is refused as locked; nothing they had is lost.
    let m = &devices[1];
    m.sync_now().await.unwrap();
    let c0 = &rubric.criteria().next().unwrap().2.code;
    let e = m.set_answer(product.id, c0, None).unwrap_err();
    assert!(e.to_string().contains("finalized"), "{e}");
    assert_eq!(
        m.sheet(product.id).unwrap().sheet.status,
        SheetStatus::Submitted
    );
    let _ = Uuid::nil();
}

/// On the phone and on the laptop, the screens an assessor uses neither
/// scroll sideways nor have a tap target under 44 px; the English switch
/// changes the texts and is remembered when the app starts again.
#[tokio::test(flavor = "multi_thread")]
async fn every_assessor_screen_fits_phone_and_laptop_with_44px_targets_and_english_is_remembered() {
    let Some(bin) = ui::require_app() else { return };
    let _one = ONE_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let (srv, info) = server(&tmp.path().join("server")).await;
    let member = &info.members()[2];
    let product = &info.products[3];
    let phone = tmp.path().join("phone");
    let app = App::start(&bin, &phone, &srv.url, 390, 844).await;
    app.find("[data-test=qr]").await;
    let sizes = [(390, 844), (1280, 800)];
    for (w, h) in sizes {
        app.client.set_window_size(w, h).await.unwrap();
        app.layout()
            .await
            .assert_thumb_friendly(&format!("connect {w}x{h}"));
    }
    app.client.set_window_size(390, 844).await.unwrap();
    enrol(&app, &member.qr_payload).await;
    let screens: [(&str, &str); 3] = [
        ("rounds", "[data-test=round]"),
        ("products", "[data-test=product]"),
        ("sheet", "[data-test=sheet-head]"),
    ];
    for (name, css) in screens {
        match name {
            "products" => app.click("[data-test=round]").await,
            "sheet" => {
                app.click(&format!(
                    "[data-test=product][data-code='{}']",
                    product.code
                ))
                .await
            }
            _ => {}
        }
        app.find(css).await;
        for (w, h) in sizes {
            app.client.set_window_size(w, h).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            app.layout()
                .await
                .assert_thumb_friendly(&format!("{name} {w}x{h}"));
        }
        app.client.set_window_size(390, 844).await.unwrap();
    }
    // English, then a restart: still English.
    assert_eq!(app.text("[data-test=lang]").await, "English");
    app.click("[data-test=lang]").await;
    app.wait_text("[data-test=submit]", |t| t == "Submit").await;
    app.screenshot(&ui::screenshot_dir().join("sheet-en-390.png"))
        .await;
    app.close().await;
    let app = App::start(&bin, &phone, &srv.url, 390, 844).await;
    app.wait_text("[data-test=lang]", |t| t == "Tiếng Việt")
        .await;
    app.click("[data-test=round]").await;
    app.find("[data-test=product]").await;
    app.screenshot(&ui::screenshot_dir().join("products-en-390.png"))
        .await;
    assert_eq!(
        app.attr("[data-test=search]", "placeholder")
            .await
            .as_deref(),
        Some("Search by code or name")
    );
    wait_synced(&app).await;
    assert!(
        app.text("[data-test=sync-state]")
            .await
            .contains("Up to date")
    );
    app.close().await;
}

/// One member on two devices changes the same criterion from the same
/// revision: the app shows both versions side by side, the member keeps
/// the app's, and the server then holds it.
#[tokio::test(flavor = "multi_thread")]
async fn a_conflict_between_two_devices_of_one_member_is_shown_side_by_side_and_resolved() {
    let Some(bin) = ui::require_app() else { return };
    let _one = ONE_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let (srv, info) = server(&tmp.path().join("server")).await;
    let member = &info.members()[3];
    let product = &info.products[4];
    let rubric = demo_rubric(&info, 4);
    let (_, _, c) = rubric.criteria().next().unwrap();
    let (code, opts) = (c.code.clone(), c.option_sets[0].options.clone());
    let app = App::start(&bin, &tmp.path().join("phone"), &srv.url, 390, 844).await;
    enrol(&app, &member.qr_payload).await;
    open_product(&app, &product.code).await;
    app.click(&format!("[data-test='opt-{code}-{}']", opts[0].id))
        .await;
    app.click("[data-test=sync-now]").await;
    wait_synced(&app).await;

    // The member's tablet, already signed in, picks another option and syncs...
    let tablet = server_view(
        &srv.url,
        &tmp.path().join("tablet"),
        &info,
        &member.username,
    )
    .await;
    tablet
        .set_answer(product.id, &code, Some(&opts[1].id))
        .unwrap();
    tablet.sync_now().await.unwrap();
    // ...and the phone, not having seen it, a third one.
    let mine = &opts[opts.len() - 1];
    app.click(&format!("[data-test='opt-{code}-{}']", mine.id))
        .await;
    app.click("[data-test=sync-now]").await;
    app.click("[data-test=attention-link]").await;
    app.find("[data-test=conflict]").await;
    let current = app.text("[data-test=conflict] [data-test=current]").await;
    let other = app.text("[data-test=conflict] [data-test=other]").await;
    assert!(current.contains(&opts[1].text_vi), "{current}");
    assert!(other.contains(&mine.text_vi), "{other}");
    app.screenshot(&ui::screenshot_dir().join("conflict-390.png"))
        .await;
    app.click("[data-test=conflict] [data-test=keep-other]")
        .await;
    app.wait_text("[data-test=conflicts]", |t| {
        !t.is_empty() && !t.contains(&mine.text_vi)
    })
    .await;
    app.click("[data-test=sync-now]").await;
    wait_synced(&app).await;
    app.close().await;
    tablet.sync_now().await.unwrap();
    let v = tablet.sheet(product.id).unwrap();
    assert_eq!(
        v.sheet.answers[&code].answer.option.as_deref(),
        Some(mine.id.as_str())
    );
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
}
