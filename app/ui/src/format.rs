//! Numbers, dates and times as a Vietnamese or English reader expects them.

use ocop_shared::fixed::Centi;
use unicode_normalization::UnicodeNormalization;

use crate::i18n::Lang;

/// A two-decimal score: `72,67` in Vietnamese, `72.67` in English.
pub fn centi(c: Centi, lang: Lang) -> String {
    let h = c.hundredths();
    let sign = if h < 0 { "-" } else { "" };
    let h = h.abs();
    let sep = match lang {
        Lang::Vi => ',',
        Lang::En => '.',
    };
    format!("{sign}{}{sep}{:02}", h / 100, h % 100)
}

/// `YYYY-MM-DD` as `07/12/2026` (both languages use day/month/year here).
pub fn date(iso: &str) -> String {
    let p: Vec<&str> = iso.get(..10).unwrap_or(iso).split('-').collect();
    match p.as_slice() {
        [y, m, d] => format!("{d}/{m}/{y}"),
        _ => iso.to_string(),
    }
}

/// How long ago, for "last sync": `2 phút trước` / `2 minutes ago`.
pub fn ago(seconds: i64, lang: Lang) -> String {
    let s = seconds.max(0);
    let (n, vi, en) = if s < 60 {
        return match lang {
            Lang::Vi => "vừa xong".into(),
            Lang::En => "just now".into(),
        };
    } else if s < 3600 {
        (s / 60, "phút", "minute")
    } else if s < 86_400 {
        (s / 3600, "giờ", "hour")
    } else {
        (s / 86_400, "ngày", "day")
    };
    match lang {
        Lang::Vi => format!("{n} {vi} trước"),
        Lang::En => format!("{n} {en}{} ago", if n == 1 { "" } else { "s" }),
    }
}

/// Stars as glyphs: `★★★☆☆`.
pub fn stars(n: u8) -> String {
    let n = n.min(5) as usize;
    format!("{}{}", "★".repeat(n), "☆".repeat(5 - n))
}

/// Text entering the app (typed, pasted) in NFC, as every stored text is.
pub fn nfc(s: &str) -> String {
    s.nfc().collect()
}

/// Search: case- and diacritic-insensitive match of `needle` in `hay`
/// ("nuoc mam" finds "Nước mắm").
pub fn matches(hay: &str, needle: &str) -> bool {
    let n = fold(needle);
    n.is_empty() || fold(hay).contains(&n)
}

fn fold(s: &str) -> String {
    s.nfd()
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .map(|c| if c == 'đ' || c == 'Đ' { 'd' } else { c })
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(7267, Lang::Vi, "72,67")]
    #[case(7267, Lang::En, "72.67")]
    #[case(9000, Lang::Vi, "90,00")]
    #[case(5, Lang::En, "0.05")]
    fn scores_use_the_language_decimal_separator(
        #[case] h: i64,
        #[case] lang: Lang,
        #[case] want: &str,
    ) {
        assert_eq!(centi(Centi::from_hundredths(h), lang), want);
    }

    #[test]
    fn dates_read_day_month_year() {
        assert_eq!(date("2026-12-07"), "07/12/2026");
        assert_eq!(date("2026-12-07T10:00:00Z"), "07/12/2026");
    }

    #[rstest]
    #[case(5, Lang::Vi, "vừa xong")]
    #[case(120, Lang::Vi, "2 phút trước")]
    #[case(60, Lang::En, "1 minute ago")]
    #[case(7200, Lang::En, "2 hours ago")]
    #[case(90_000, Lang::Vi, "1 ngày trước")]
    fn last_sync_reads_as_time_ago(#[case] s: i64, #[case] lang: Lang, #[case] want: &str) {
        assert_eq!(ago(s, lang), want);
    }

    #[test]
    fn search_ignores_case_and_diacritics() {
        assert!(matches("Nước mắm Vũng Áng", "nuoc mam"));
        assert!(matches("Đường phèn", "duong"));
        assert!(matches("HT-KA-001-2026", "ka-001"));
        assert!(!matches("Chè xanh", "mật ong"));
    }

    #[test]
    fn typed_text_is_stored_as_nfc() {
        let nfd = "Ho\u{302}\u{323}i đồng";
        assert_eq!(nfc(nfd), "Hội đồng");
    }

    #[test]
    fn stars_show_filled_and_empty() {
        assert_eq!(stars(3), "★★★☆☆");
        assert_eq!(stars(0), "☆☆☆☆☆");
    }
}
