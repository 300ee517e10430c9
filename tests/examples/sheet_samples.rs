//! Writes sample sheet bodies, as the server stores them, to train the zstd
//! dictionary the server compresses them with (`sync-server/src/sheet-bodies-1.dict`):
//! both bundled score sheets, every criterion or some answered, random ids,
//! revisions and devices, and notes of random Vietnamese words (not the
//! benchmark's notes, so that the dictionary learns the shape of a sheet,
//! not the benchmark's text).
//!
//! ```text
//! cargo run --release -p ocop-tests --example sheet_samples -- /tmp/samples 4000
//! zstd --train /tmp/samples/* --maxdict=16384 --dictID=1329811280 -o sheet-bodies-1.dict
//! ```
//!
//! A shipped dictionary is never retrained in place: stored bodies need it
//! to be read. A better one is added under a new id (see `pack_body`).

use std::collections::BTreeMap;

use ocop_shared::rubric::RubricRef;
use ocop_shared::wire::{Answer, AnswerState, SheetState, SheetStatus};
use rand::Rng;
use rand::SeedableRng;
use uuid::Uuid;

const WORDS: &str = "sản phẩm chất lượng tốt đạt yêu cầu cần bổ sung giấy chứng nhận an toàn \
    thực phẩm bao bì nhãn mác nguồn gốc nguyên liệu địa phương quy trình sản xuất hợp tác xã \
    doanh nghiệp thị trường tiêu thụ kế hoạch kinh doanh câu chuyện hương vị màu sắc đóng gói \
    kiểm nghiệm hồ sơ đầy đủ thiếu minh chứng có không rõ ràng hình ảnh mẫu thử ổn định";

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: sheet_samples DIR [COUNT]"));
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(4000);
    std::fs::create_dir_all(&dir).expect("output directory");
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let rubrics = ocop_shared::bundled::scoreable();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1048);
    let mut id = || Uuid::from_u128(rng.random());
    let ids: Vec<Uuid> = (0..count * 8).map(|_| id()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(148);
    for i in 0..count {
        let rubric = &rubrics[i % rubrics.len()];
        let devices = [ids[i * 8 + 4], ids[i * 8 + 5]];
        let answered = rng.random_range(0.5..=1.0);
        let note = |rng: &mut rand::rngs::StdRng| -> String {
            if rng.random_bool(0.4) {
                return String::new();
            }
            let n = rng.random_range(1..16);
            (0..n)
                .map(|_| words[rng.random_range(0..words.len())])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let chosen: Vec<_> = rubric
            .criteria()
            .filter(|_| rng.random_bool(answered))
            .collect();
        let answers: BTreeMap<String, AnswerState> = chosen
            .into_iter()
            .map(|(_, _, c)| {
                let opts: Vec<_> = c.options().collect();
                let answer = Answer {
                    option: Some(opts[rng.random_range(0..opts.len())].id.clone()),
                    knockout: false,
                    note: note(&mut rng),
                    attachments: vec![],
                };
                let state = AnswerState {
                    answer,
                    rev: rng.random_range(1..200_000),
                    device_id: devices[usize::from(rng.random_bool(0.2))],
                };
                (c.code.clone(), state)
            })
            .collect();
        let sheet = SheetState {
            id: ids[i * 8],
            round_id: ids[i * 8 + 1],
            product_id: ids[i * 8 + 2],
            owner_id: ids[i * 8 + 3],
            rubric: RubricRef {
                id: rubric.id.clone(),
                version: rubric.version,
            },
            status: if rng.random_bool(0.7) {
                SheetStatus::Draft
            } else {
                SheetStatus::Submitted
            },
            answers,
            note: note(&mut rng),
            note_rev: 0,
            reopen_reason: None,
            revision: rng.random_range(1..200_000),
            conflicts: vec![],
        };
        let json = serde_json::to_string(&sheet).expect("encode");
        std::fs::write(dir.join(format!("sheet-{i:05}.json")), json).expect("write sample");
    }
    println!("{count} sample sheets in {}", dir.display());
}
