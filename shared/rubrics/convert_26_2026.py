#!/usr/bin/env python3
"""Converts ../shared/reference/rubric-sheets-26-2026.json (the 26 score sheets
of Decision 26/2026/QĐ-TTg, Phụ lục II, transcribed from a public full-text
copy) into the project's rubric format (`ocop-rubric/2`, docs/rubric-format.md),
and writes shared/src/bundled_26_2026.rs, which embeds them.

Kept in the repository as the provenance of the bundled sheets; the JSON files
it writes are the project data. Re-run:
    python3 shared/rubrics/convert_26_2026.py SRC [RUBRIC_DIR [RUST_FILE]]

What it does beyond copying, each a reading recorded in the sheet's provenance
or in docs/rubric-format.md:
- a star mark (`min_star` on an option) becomes a star requirement naming the
  option, with `min_points` = the option's points ("that option or better");
- the lines the transcription's parser attached to the last criterion before
  a part heading or the total ("Phần B: …", "PHẦN C …", "TỔNG CỘNG") are
  headings, not the criterion's notes, and are dropped;
- a "Yêu cầu: …" run into a criterion's title (5.3 "Trí tuệ/bản sắc địa
  phương Yêu cầu: …") is moved to the criterion's notes, word for word;
- the alternatives of "Lựa chọn một trong hai trường hợp sau" (sheet 26:
  criteria 8, 9, 15) become two option sets labelled with the printed case
  lines, the first half of the options for case 1;
- evidence hints (Mẫu 02, Phần III) go on every option that gives points, by
  the criterion's subject; the wording is ours, the decision's form lists the
  documents but prints no hint per criterion.
"""
import json
import re
import sys

SRC = sys.argv[1]
OUT = sys.argv[2] if len(sys.argv) > 2 else "shared/rubrics"
RUST = sys.argv[3] if len(sys.argv) > 3 else "shared/src/bundled_26_2026.rs"

PART_EN = {
    "A": "Product and community strength",
    "B": "Marketing capacity",
    "C": "Product quality",
}

# Mẫu 02, Phần III (the producer's self-assessment: documents per criterion
# area), as hints keyed by words of the criterion's title. First match wins;
# the order puts narrow subjects before broad ones.
EVIDENCE = [
    (("sở hữu trí tuệ",),
     "Đơn đăng ký nhãn hiệu được chấp nhận hợp lệ hoặc đã công bố; giấy chứng nhận nhãn hiệu, chỉ dẫn địa lý, "
     "nhãn hiệu tập thể, nhãn hiệu chứng nhận, bằng sáng chế, kiểu dáng công nghiệp"),
    (("lao động",),
     "Danh sách lao động tham gia bảo hiểm xã hội, có nơi cư trú, được chủ thể xác nhận"),
    (("tăng trưởng",),
     "Kết quả xếp loại hợp tác xã hoặc báo cáo tài chính hai năm gần nhất"),
    (("loại hình tổ chức", "đăng ký kinh doanh", "điều kiện kinh doanh"),
     "Bản sao giấy chứng nhận đăng ký kinh doanh; bản sao giấy chứng nhận đủ điều kiện sản xuất, kinh doanh"),
    (("nguồn gốc sản phẩm", "nguồn nguyên liệu", "vùng nguyên liệu", "liên kết"),
     "Xác nhận an toàn thực phẩm của vùng nguyên liệu; hợp đồng, thỏa thuận thu mua nguyên liệu; hóa đơn, chứng từ"),
    (("môi trường", "bền vững"),
     "Hồ sơ, thủ tục về môi trường; hình ảnh, bản mô tả công trình, công nghệ"),
    (("câu chuyện",),
     "Tờ rơi, ấn phẩm, hình ảnh, phim, bản ghi âm câu chuyện sản phẩm"),
    (("quảng bá",),
     "Trang thông tin điện tử; hình ảnh, tài liệu về các hoạt động quảng bá, xúc tiến thương mại"),
    (("phân phối", "thị trường"),
     "Hợp đồng, hợp đồng ký gửi, đơn hàng, hóa đơn phân phối hoặc xuất khẩu"),
    (("công bố",),
     "Hồ sơ công bố chất lượng sản phẩm (hoặc tương đương)"),
    (("kiểm nghiệm", "an toàn thực phẩm", "chỉ tiêu"),
     "Phiếu kết quả kiểm nghiệm các chỉ tiêu chất lượng, an toàn thực phẩm"),
    (("đảm bảo chất lượng", "truy xuất", "quản lý chất lượng"),
     "Mã số mã vạch, tem truy xuất nguồn gốc; giấy chứng nhận hệ thống quản lý chất lượng tiên tiến"),
]

HEADING = re.compile(r"^(Phần|PHẦN) [ABC]\b|^TỔNG CỘNG$")
CASE_LINE = re.compile(r"^[ab]\. (Trường hợp [12]: .*)$")


def evidence(title):
    t = title.lower()
    for words, hint in EVIDENCE:
        if any(w in t for w in words):
            return hint
    return None


def as_int(x, where):
    if x != int(x):
        raise SystemExit(f"{where}: {x} is not a whole number of points")
    return int(x)


def group_of(printed):
    # "Thực phẩm. Nhóm: Thực phẩm tươi sống" -> "Thực phẩm tươi sống".
    m = re.search(r"Nhóm:\s*(.+)$", printed)
    return m.group(1).strip() if m else printed.strip()


def convert(sheet):
    rid = sheet["id"]
    corrections = [f"sheet: {n}" for n in sheet.get("notes", [])]
    requirements = []
    parts = []
    for p in sheet["parts"]:
        sections = {s["code"]: {"code": s["code"], "title_vi": s["title"],
                                "max_points": as_int(s["max"], f"{rid} section {s['code']}"),
                                "criteria": []}
                    for s in p["sections"]}
        for c in p["criteria"]:
            code = c["code"]
            where = f"{rid} criterion {code}"
            title = c["title"]
            notes = []
            m = re.match(r"^(.*?) (Yêu cầu: .*)$", title)
            if m:
                title = m.group(1)
                notes.append(m.group(2))
                corrections.append(f"criterion {code}: the line \"Yêu cầu: …\" printed in the criterion's "
                                   "title cell is shown as the criterion's note, word for word")
            labels = []
            for n in c.get("source_notes", []):
                if HEADING.match(n):
                    continue
                lm = CASE_LINE.match(n)
                if lm:
                    labels.append(lm.group(1))
                    continue
                notes.append(n)
            dropped = [n for n in c.get("source_notes", []) if HEADING.match(n)]
            if dropped:
                shown = "; ".join(f"“{n}”" for n in dropped)
                corrections.append(f"criterion {code}: the heading line {shown}, attached to this criterion by "
                                   "the transcription, is not one of its notes")
            fixes = c.get("notes", [])
            for n in [fixes] if isinstance(fixes, str) else fixes:
                corrections.append(f"criterion {code}: {n}")
            options = []
            for o in c["options"]:
                if not o["code"].startswith(code + "."):
                    raise SystemExit(f"{where}: option code {o['code']} is not under the criterion")
                oid = o["code"][len(code) + 1:]
                points = as_int(o["points"], f"{where} option {oid}")
                opt = {"id": oid, "text_vi": o["text"], "points": points}
                options.append(opt)
                if "min_star" in o:
                    requirements.append({"stars": o["min_star"], "criterion": code, "min_points": points,
                                         "text_vi": o["text"], "option": oid})
            hint = evidence(title)
            if hint:
                for opt in options:
                    if opt["points"] > 0:
                        opt["evidence_vi"] = hint
            if labels:
                if len(labels) != 2 or len(options) % 2:
                    raise SystemExit(f"{where}: {len(labels)} case lines for {len(options)} options")
                half = len(options) // 2
                option_sets = [{"label_vi": labels[0], "label_en": "Case 1", "options": options[:half]},
                               {"label_vi": labels[1], "label_en": "Case 2", "options": options[half:]}]
            else:
                option_sets = [{"options": options}]
            crit = {"code": code, "text_vi": title, "max_points": as_int(c["max"], where)}
            if notes:
                crit["notes"] = notes
            crit["option_sets"] = option_sets
            sec = code.split(".")[0]
            if sec not in sections:
                raise SystemExit(f"{where}: no section {sec} in part {p['code']}")
            sections[sec]["criteria"].append(crit)
        parts.append({"code": p["code"], "title_vi": p["title"], "title_en": PART_EN[p["code"]],
                      "cap": as_int(p["cap"], f"{rid} part {p['code']}"), "sections": list(sections.values())})
    seen = set()
    for q in requirements:
        key = (q["stars"], q["criterion"])
        if key in seen:
            raise SystemExit(f"{rid}: two {q['stars']}★ marks on criterion {q['criterion']}")
        seen.add(key)
    requirements.sort(key=lambda q: (q["stars"], [int(x) if x.isdigit() else x for x in q["criterion"].split(".")]))
    out = {
        "format": "ocop-rubric/2",
        "id": rid,
        "version": 1,
        "decision": "26/2026",
        "title_vi": f"Phiếu đánh giá sản phẩm OCOP — Bộ sản phẩm {sheet['annex1_code']}: {sheet['subgroup']}",
        "title_en": f"OCOP product score sheet {sheet['sheet_no']} of decision 26/2026/QĐ-TTg "
                    f"(product set {sheet['annex1_code']})",
        "group": group_of(sheet["group_as_printed_on_sheet"]),
        "subgroup": sheet["subgroup"],
        "parts": parts,
        "star_requirements": requirements,
    }
    if sheet["disqualifiers"]:
        out["disqualifiers"] = [{"code": f"loai-{i}", "text_vi": t}
                                for i, t in enumerate(sheet["disqualifiers"], start=1)]
    out["provenance"] = {
        "decision": sheet["decision"],
        "date": sheet["decision_date"],
        "annex": sheet["annex"],
        "sheet_no": sheet["sheet_no"],
        "annex1_code": sheet["annex1_code"],
        "group_as_printed": sheet["group_as_printed_on_sheet"],
        "source": sheet["source"],
        "corrections": corrections,
    }
    out["source_notes"] = [
        "Nguồn: bản sao văn bản Quyết định 26/2026/QĐ-TTg ngày 22/5/2026, chưa đối chiếu với Công báo.",
        "Source: a public full-text copy of decision 26/2026/QĐ-TTg of 22/5/2026, not yet compared with the "
        "official gazette.",
        sheet["star_marks_legend"].split(" — ")[0],
        "star_requirements naming an option are the sheet's star marks: a product is ranked n stars only if, "
        "for every criterion with an option marked n or less, the chosen option gives at least that option's "
        "points; otherwise the star is capped at the highest level whose marks are all met (this project's "
        "reading; the decision does not spell out the cap).",
    ]
    return out


def main():
    src = json.load(open(SRC, encoding="utf-8"))
    if len(src) != 26:
        raise SystemExit(f"{SRC}: {len(src)} sheets, expected 26")
    rows = []
    for sheet in sorted(src, key=lambda s: s["sheet_no"]):
        out = convert(sheet)
        path = f"{OUT}/{out['id']}.json"
        with open(path, "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, indent=2)
            f.write("\n")
        rows.append((sheet["annex1_code"], out["id"]))
        print("wrote", path)
    with open(RUST, "w", encoding="utf-8") as f:
        f.write("//! The 26 score sheets of Decision 26/2026/QĐ-TTg, by Phụ lục I code, in\n"
                "//! sheet order. Generated by shared/rubrics/convert_26_2026.py; do not edit.\n\n"
                "/// `(Phụ lục I code, file name, text)` of every sheet.\n"
                f"pub const SHEETS: [(&str, &str, &str); {len(rows)}] = [\n")
        for code, rid in rows:
            f.write(f"    (\n        \"{code}\",\n        \"{rid}.json\",\n"
                    f"        include_str!(\"../rubrics/{rid}.json\"),\n    ),\n")
        f.write("];\n")
    print("wrote", RUST)


main()
