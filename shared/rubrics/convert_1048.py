#!/usr/bin/env python3
"""Converts ../shared/reference/rubric-sheets-1048.json (transcribed public data)
into the project's rubric format (`ocop-rubric/1`, docs/rubric-format.md).

Kept in the repository as the provenance of the bundled sheets; the JSON files
beside it are the project data. Re-run: python3 shared/rubrics/convert_1048.py SRC
"""
import json
import re
import sys

src = json.load(open(sys.argv[1], encoding="utf-8"))
IDS = {
    "Chế biến từ gạo, ngũ cốc": "1048-food-processed-cereal",
    "Rau, củ, quả, hạt tươi": "1048-food-fresh-produce",
}
# 781/QĐ-TTg minimum requirements per star, as this project reads them for
# these two sheets (3★: product standard declared + quality control plan;
# 4★: those plus control plan with batch records, and uniqueness).
REQS = {
    "1048-food-processed-cereal": [
        (3, "8.1", 2, "Có bản tiêu chuẩn sản phẩm / tự công bố chất lượng"),
        (3, "9", 1, "Có kế hoạch kiểm soát chất lượng gắn với truy xuất nguồn gốc"),
        (4, "8.1", 2, "Có bản tiêu chuẩn sản phẩm / tự công bố chất lượng"),
        (4, "9", 3, "Có kế hoạch kiểm soát chất lượng và ghi hồ sơ lô sản xuất"),
        (4, "7", 3, "Sản phẩm có tính độc đáo"),
    ],
    "1048-food-fresh-produce": [
        (3, "9.1", 1, "Có tiêu chuẩn sản phẩm"),
        (3, "10", 1, "Có kế hoạch kiểm soát chất lượng gắn với truy xuất nguồn gốc"),
        (4, "9.1", 1, "Có tiêu chuẩn sản phẩm"),
        (4, "10", 3, "Có kế hoạch kiểm soát chất lượng và ghi hồ sơ lô sản xuất"),
        (4, "8", 3, "Sản phẩm có tính độc đáo"),
    ],
}
KNOCKOUTS = {
    ("1048-food-processed-cereal", "1.1"): "disqualify",
    ("1048-food-processed-cereal", "6.1"): "zero_section",
}
KNOCKOUT_EN = {
    "disqualify": "Disqualified if all raw material is imported or of unknown origin",
    "zero_section": "Other sensory indicators are not considered if high-risk foreign matter is found",
}


def letters(n):
    return [chr(ord("a") + i) for i in range(n)]


for sheet in src["sheets"]:
    rid = IDS[sheet["subgroup"]]
    parts = []
    for p in sheet["parts"]:
        sections = []
        for sec in p["sections"]:
            crits = []
            for c in sec["criteria"]:
                opts = c["options"]
                ids = letters(len(opts))
                notes = [n for n in c["notes_vi_or_en"]]
                option_objs = [
                    {"id": i, "text_vi": o["text_vi"], "points": o["points"]} for i, o in zip(ids, opts)
                ]
                if c["code"] == "3.2":
                    # "Lựa chọn một trong hai trường hợp sau": options 1-2 / 3-4.
                    sets = [
                        {"label_vi": "Trường hợp 1: thành viên quản trị cao cấp", "label_en": "Case 1: senior managers",
                         "options": option_objs[:2]},
                        {"label_vi": "Trường hợp 2: giám đốc/chủ hộ", "label_en": "Case 2: director or household head",
                         "options": option_objs[2:]},
                    ]
                    notes = [n for n in notes if not n.startswith("Two alternative")]
                else:
                    sets = [{"options": option_objs}]
                crit = {"code": c["code"], "text_vi": c["text_vi"]}
                if c.get("text_en"):
                    crit["text_en"] = c["text_en"]
                crit["max_points"] = c["max_points"]
                ko = KNOCKOUTS.get((rid, c["code"]))
                if ko:
                    gating = [n for n in notes if n.startswith("Ghi chú:")]
                    crit["knockout"] = {
                        "effect": ko,
                        "text_vi": gating[0].removeprefix("Ghi chú: ") if gating else c["gating_note"],
                        "text_en": KNOCKOUT_EN[ko],
                    }
                if notes:
                    crit["notes"] = notes
                crit["option_sets"] = sets
                crits.append(crit)
            m = re.match(r"^\s*(\d+)\.\s*(.*)$", sec["title_vi"])
            title = m.group(2) if m else sec["title_vi"]
            code = crits[0]["code"].split(".")[0]
            sections.append({"code": code, "title_vi": title.strip(), "title_en": sec["title_en"], "criteria": crits})
        parts.append({"code": p["code"], "title_vi": p["title_vi"], "title_en": p["title_en"], "cap": p["max_points"],
                      "sections": sections})
    out = {
        "format": "ocop-rubric/1",
        "id": rid,
        "version": 1,
        "decision": "1048/781",
        "title_vi": f"Phiếu đánh giá sản phẩm OCOP — {sheet['group']}: {sheet['subgroup']}",
        "title_en": f"OCOP product score sheet — food: {sheet['subgroup']}",
        "group": sheet["group"],
        "subgroup": sheet["subgroup"],
        "parts": parts,
        "star_requirements": [
            {"stars": s, "criterion": c, "min_points": m, "text_vi": t} for s, c, m, t in REQS[rid]
        ],
        "source_notes": [
            "Chép từ dữ liệu công khai của Quyết định 1048/QĐ-TTg, sửa đổi bởi 781/QĐ-TTg; đã được thay thế bởi 148/QĐ-TTg.",
            "Transcribed from public data of decision 1048/QĐ-TTg as amended by 781/QĐ-TTg; superseded by 148/QĐ-TTg.",
            "star_requirements are this project's reading of the 781/QĐ-TTg minimum requirements per star; publish a new version to change them.",
        ],
    }
    if rid == "1048-food-processed-cereal":
        out["source_notes"].append(
            "Criterion 6.2 (Ngoại hình): the source gives 3 points to both 'Tương đối đồng đều' and 'Đồng đều'; "
            "likely a data-entry slip (2 expected). Kept as published; the validator reports it as a warning."
        )
    path = f"{sys.argv[2] if len(sys.argv) > 2 else 'shared/rubrics'}/{rid}.json"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print("wrote", path)

o = src["decision_148_outline"]
tmpl = {
    "format": "ocop-rubric/1",
    "id": "148-template",
    "version": 1,
    "decision": "148",
    "title_vi": "Mẫu phiếu đánh giá theo Quyết định 148/QĐ-TTg (cần hoàn thiện các tiêu chí)",
    "title_en": "Score sheet template of decision 148/QĐ-TTg (criteria to be completed by import)",
    "group": "(chưa xác định)",
    "subgroup": "(chưa xác định)",
    "template": True,
    "parts": [
        {"code": p["code"], "title_vi": p["title_vi"], "title_en": p["title_en"], "cap": p["max_points"],
         "sections": [{"code": str(i), "title_vi": s["title_vi"], "title_en": s["title_en"], "criteria": []}
                      for i, s in enumerate(p["sections"], start=sum(len(q["sections"]) for q in o["parts"][:k]) + 1)]}
        for k, p in enumerate(o["parts"])
    ],
    "source_notes": [
        "Parts and section names of 148/QĐ-TTg; the item-level sheets were not available. An admin completes the criteria and imports the sheet.",
    ],
}
path = f"{sys.argv[2] if len(sys.argv) > 2 else 'shared/rubrics'}/148-template.json"
with open(path, "w", encoding="utf-8") as f:
    json.dump(tmpl, f, ensure_ascii=False, indent=2)
    f.write("\n")
print("wrote", path)
