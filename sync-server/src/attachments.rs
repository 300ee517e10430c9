//! Who may read an evidence photo, and which photos a sheet may name.
//!
//! A photo is addressed by its SHA-256, and a hash is not a secret: it is in
//! every sheet that names the photo, and in the pushes and logs that carry
//! it. So the hash is never the permission. A photo is readable by the admin,
//! by its uploader, and by whoever may read in full a sheet **of its
//! uploader** that names it; a sheet may name a photo only when its writer
//! uploaded it or may already read it. Without the second rule a member who
//! learned a hash could name it on their own sheet and then download it
//! through that sheet; without "of its uploader" a sheet could name a photo
//! before anyone uploaded it, and be granted it once the real owner did.

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::sqlite::{SheetView, Visibility};
use crate::store::Principal;

/// Who started the upload of a photo (`None`: nobody yet).
fn uploader(conn: &Connection, sha256: &str) -> Result<Option<Uuid>> {
    let u: Option<String> = conn
        .prepare_cached("SELECT uploaded_by FROM attachments WHERE sha256 = ?1")?
        .query_row(params![sha256], |r| r.get(0))
        .optional()?;
    u.map(|u| Uuid::parse_str(&u).map_err(|e| Error::Internal(format!("uploaded_by {u}: {e}"))))
        .transpose()
}

/// Whether `actor` may read the photo (download it, or ask about its upload).
pub(crate) fn may_read(conn: &Connection, actor: &Principal, sha256: &str) -> Result<bool> {
    if actor.is_admin() {
        return Ok(true);
    }
    let Some(up) = uploader(conn, sha256)? else {
        return Ok(false);
    };
    if up == actor.user.id {
        return Ok(true);
    }
    let vis = Visibility::load(conn, actor)?;
    let mut stmt = conn.prepare_cached(
        "SELECT s.round_id, s.product_id FROM sheet_attachments a
         JOIN entities s ON s.kind = 'sheet' AND s.id = a.sheet_id
         WHERE a.sha256 = ?1 AND s.owner_id = ?2",
    )?;
    let rows = stmt.query_map(params![sha256, up.to_string()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    for r in rows {
        let (round, product) = r?;
        let parse = |s: &str| {
            Uuid::parse_str(s).map_err(|e| Error::Internal(format!("sheet scope {s}: {e}")))
        };
        if vis.sheet(parse(&round)?, parse(&product)?, up) == SheetView::Full {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The first of `hashes` that `actor` may not name on a sheet: one somebody
/// else uploaded (or is uploading) that the actor may not read. A photo
/// nobody uploaded yet may be named; the writer's device uploads it next
/// (the push answers with it in `missing_attachments`), and until the
/// writer is its uploader, naming it grants nobody anything (see [`may_read`]).
pub(crate) fn first_unavailable<'h>(
    conn: &Connection,
    actor: &Principal,
    hashes: impl IntoIterator<Item = &'h String>,
) -> Result<Option<&'h str>> {
    for h in hashes {
        match uploader(conn, h)? {
            None => {}
            Some(u) if u == actor.user.id => {}
            Some(_) if !may_read(conn, actor, h)? => return Ok(Some(h)),
            Some(_) => {}
        }
    }
    Ok(None)
}
