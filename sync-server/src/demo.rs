//! A realistic provincial round for demos and for the app's tests.
//!
//! Council of 9 (chair, 7 members, secretary) with Vietnamese names and 12
//! Hà Tĩnh products over the two bundled 1048 rubrics. Demo passwords are
//! deterministic (`ocop-<username>`): this is demo data, never production.

use ocop_shared::bundled;
use ocop_shared::rubric::RubricRef;
use ocop_shared::wire::{
    AccountRole, CouncilRole, CreateProductRequest, CreateRoundRequest, CreateUserRequest,
    EnrolmentCodeRequest, Level, ProductInfo, RosterLine, SetRosterRequest,
};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::store::{Principal, Store};

/// Name of the seeded round (used to detect an already seeded database).
pub const ROUND_NAME: &str = "Đánh giá, phân hạng sản phẩm OCOP cấp tỉnh Hà Tĩnh — đợt 2 năm 2026";

/// One seeded council member.
#[derive(Debug, Clone)]
pub struct DemoUser {
    pub id: Uuid,
    pub username: String,
    pub full_name: String,
    pub password: String,
    pub role: CouncilRole,
    /// A fresh single-use enrolment code (valid 7 days).
    pub enrolment_code: String,
    pub qr_payload: String,
}

/// What [`seed`] made.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    pub round_id: Uuid,
    /// Chair first, then members, then the secretary.
    pub users: Vec<DemoUser>,
    pub product_ids: Vec<Uuid>,
    pub products: Vec<ProductInfo>,
    /// Whether this call created the data (false: it was already there).
    pub created: bool,
}

impl DemoInfo {
    pub fn chair(&self) -> &DemoUser {
        &self.users[0]
    }
    pub fn members(&self) -> &[DemoUser] {
        &self.users[1..8]
    }
    pub fn secretary(&self) -> &DemoUser {
        &self.users[8]
    }
    pub fn user(&self, username: &str) -> Option<&DemoUser> {
        self.users.iter().find(|u| u.username == username)
    }
}

const COUNCIL: [(&str, &str, CouncilRole); 9] = [
    ("hung.nv", "Nguyễn Văn Hùng", CouncilRole::Chair),
    ("lan.tt", "Trần Thị Lan", CouncilRole::Member),
    ("tuan.lm", "Lê Minh Tuấn", CouncilRole::Member),
    ("hoa.pt", "Phạm Thị Hoa", CouncilRole::Member),
    ("nam.hv", "Hoàng Văn Nam", CouncilRole::Member),
    ("mai.vt", "Võ Thị Mai", CouncilRole::Member),
    ("bao.dq", "Đặng Quốc Bảo", CouncilRole::Member),
    ("ha.btt", "Bùi Thị Thu Hà", CouncilRole::Member),
    ("hanh.nt", "Ngô Thị Hạnh", CouncilRole::Secretary),
];

/// (code, name, producer, commune, district, cereal rubric?)
const PRODUCTS: [(&str, &str, &str, &str, &str, bool); 12] = [
    (
        "SP-01",
        "Kẹo cu đơ Thiên Cầm",
        "Cơ sở sản xuất kẹo cu đơ Bà Sơn",
        "xã Cẩm Nhượng",
        "huyện Cẩm Xuyên",
        true,
    ),
    (
        "SP-02",
        "Bánh đa vừng đen Hồng Lộc",
        "HTX Bánh đa Hồng Lộc",
        "xã Hồng Lộc",
        "huyện Lộc Hà",
        true,
    ),
    (
        "SP-03",
        "Bánh gai Đức Thọ",
        "Cơ sở bánh gai Thảo Nguyên",
        "xã Tùng Ảnh",
        "huyện Đức Thọ",
        true,
    ),
    (
        "SP-04",
        "Bún bánh Yên Hồ",
        "HTX Bún bánh Yên Hồ",
        "xã Yên Hồ",
        "huyện Đức Thọ",
        true,
    ),
    (
        "SP-05",
        "Bánh tráng Thạch Châu",
        "Tổ hợp tác bánh tráng Thạch Châu",
        "xã Thạch Châu",
        "huyện Lộc Hà",
        true,
    ),
    (
        "SP-06",
        "Cu đơ gừng Hà Tĩnh",
        "Công ty TNHH Thực phẩm Cu đơ Hà Tĩnh",
        "phường Thạch Quý",
        "thành phố Hà Tĩnh",
        true,
    ),
    (
        "SP-07",
        "Cam bù Hương Sơn",
        "HTX Cam bù Sơn Kim",
        "xã Sơn Kim 1",
        "huyện Hương Sơn",
        false,
    ),
    (
        "SP-08",
        "Cam Khe Mây",
        "Tổ hợp tác cam Khe Mây",
        "xã Hương Minh",
        "huyện Vũ Quang",
        false,
    ),
    (
        "SP-09",
        "Bưởi Phúc Trạch",
        "HTX Bưởi Phúc Trạch",
        "xã Phúc Trạch",
        "huyện Hương Khê",
        false,
    ),
    (
        "SP-10",
        "Nhãn T6 Tùng Lộc",
        "HTX Nhãn Tùng Lộc",
        "xã Tùng Lộc",
        "huyện Can Lộc",
        false,
    ),
    (
        "SP-11",
        "Dưa lưới Thạch Hà",
        "HTX Nông nghiệp công nghệ cao Thạch Hà",
        "xã Thạch Liên",
        "huyện Thạch Hà",
        false,
    ),
    (
        "SP-12",
        "Rau củ an toàn Cẩm Bình",
        "HTX Rau an toàn Cẩm Bình",
        "xã Cẩm Bình",
        "huyện Cẩm Xuyên",
        false,
    ),
];

/// The demo password of a seeded user.
pub fn demo_password(username: &str) -> String {
    format!("ocop-{username}")
}

/// Seeds the demo round if it is not there yet and returns what it holds,
/// with fresh enrolment codes. `server_url` goes into the QR payloads.
pub fn seed(store: &dyn Store) -> Result<DemoInfo> {
    seed_with_url(store, "http://127.0.0.1:8787")
}

/// [`seed`] with the server URL to put into QR payloads.
pub fn seed_with_url(store: &dyn Store, server_url: &str) -> Result<DemoInfo> {
    let sys = Principal::system();
    let existing = store
        .list_rounds(&sys)?
        .into_iter()
        .find(|r| r.name == ROUND_NAME);
    let created = existing.is_none();
    let mut users = Vec::new();
    for (username, full_name, role) in COUNCIL {
        let user = match store.user_by_username(username)? {
            Some(u) => u,
            None => store.create_user(
                &sys,
                &CreateUserRequest {
                    username: username.into(),
                    full_name: full_name.into(),
                    role: AccountRole::Assessor,
                    password: Some(demo_password(username)),
                },
            )?,
        };
        let code = store.issue_enrolment_code(
            &sys,
            &EnrolmentCodeRequest {
                user_id: user.id,
                ttl_minutes: Some(7 * 24 * 60),
            },
            server_url,
        )?;
        users.push(DemoUser {
            id: user.id,
            username: username.into(),
            full_name: full_name.into(),
            password: demo_password(username),
            role,
            enrolment_code: code.code,
            qr_payload: code.qr_payload,
        });
    }
    let round = match existing {
        Some(r) => r,
        None => {
            let r = store.create_round(
                &sys,
                &CreateRoundRequest {
                    name: ROUND_NAME.into(),
                    level: Level::Province,
                    province: "Hà Tĩnh".into(),
                    starts_on: "2026-11-23".into(),
                    ends_on: "2026-11-27".into(),
                    council: Default::default(),
                },
            )?;
            store.set_roster(
                &sys,
                r.id,
                &SetRosterRequest {
                    members: users
                        .iter()
                        .map(|u| RosterLine {
                            user_id: u.id,
                            role: u.role,
                        })
                        .collect(),
                },
            )?;
            let rubrics = bundled::scoreable();
            let cereal = rubrics
                .iter()
                .find(|r| r.id.contains("cereal"))
                .ok_or_else(|| Error::Internal("bundled cereal rubric missing".into()))?;
            let fresh = rubrics
                .iter()
                .find(|r| r.id.contains("fresh"))
                .ok_or_else(|| Error::Internal("bundled fresh produce rubric missing".into()))?;
            for (code, name, producer, commune, district, is_cereal) in PRODUCTS {
                let rubric = if is_cereal { cereal } else { fresh };
                store.create_product(
                    &sys,
                    &CreateProductRequest {
                        round_id: r.id,
                        code: code.into(),
                        name: name.into(),
                        producer: producer.into(),
                        commune: commune.into(),
                        district: district.into(),
                        province: "Hà Tĩnh".into(),
                        group: rubric.group.clone(),
                        subgroup: rubric.subgroup.clone(),
                        rubric: RubricRef {
                            id: rubric.id.clone(),
                            version: rubric.version,
                        },
                    },
                )?;
            }
            r
        }
    };
    let export = store.export_round(&sys, round.id)?;
    let mut products: Vec<ProductInfo> =
        serde_json::from_value(export["products"].clone()).map_err(Error::Json)?;
    products.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(DemoInfo {
        round_id: round.id,
        users,
        product_ids: products.iter().map(|p| p.id).collect(),
        products,
        created,
    })
}
