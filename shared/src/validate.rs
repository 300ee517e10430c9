//! Loading rubric files with validation that reports every problem with its path.
//!
//! Arbitrary input never panics: bytes that are not a rubric give an error
//! naming where the reading stopped; a rubric that parses but breaks a rule
//! gives all its problems at once, each as `path: message`, so an admin can
//! fix a whole file in one pass.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::rubric::{Decision, RUBRIC_FORMAT, RUBRIC_FORMAT_1, Rubric};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The rubric cannot be used.
    Error,
    /// Usable, but someone should look (e.g. a suspected source slip).
    Warning,
}

/// One problem, located by a path such as `parts[2].sections[0].criteria[3].options[1].points`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub severity: Severity,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a rubric file cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RubricError {
    /// Not JSON, or JSON of the wrong shape.
    #[error("{path}: {message} (line {line}, column {column})")]
    Syntax {
        path: String,
        message: String,
        line: usize,
        column: usize,
    },
    /// Parsed, but breaks the rules; every error is listed.
    #[error("rubric has {} problem(s):\n{}", .0.len(), .0.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Issue>),
}

impl RubricError {
    /// Every problem as `path: message` lines.
    pub fn messages(&self) -> Vec<String> {
        match self {
            RubricError::Syntax { .. } => vec![self.to_string()],
            RubricError::Invalid(v) => v.iter().map(|i| i.to_string()).collect(),
        }
    }
}

/// A loaded, valid rubric and the warnings it raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub rubric: Rubric,
    pub warnings: Vec<Issue>,
}

/// Parses and validates a rubric file.
pub fn load_rubric(text: &str) -> Result<Loaded, RubricError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let rubric: Rubric = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        RubricError::Syntax {
            path: if path == "." || path == "?" {
                "(file)".to_string()
            } else {
                path
            },
            message: lower_first(&strip_position(&inner.to_string())),
            line: inner.line(),
            column: inner.column(),
        }
    })?;
    // Trailing text after the object is a broken file, not a rubric.
    de.end().map_err(|e| RubricError::Syntax {
        path: "(file)".to_string(),
        message: lower_first(&strip_position(&e.to_string())),
        line: e.line(),
        column: e.column(),
    })?;
    let issues = validate(&rubric);
    let (errors, warnings): (Vec<Issue>, Vec<Issue>) = issues
        .into_iter()
        .partition(|i| i.severity == Severity::Error);
    if errors.is_empty() {
        Ok(Loaded { rubric, warnings })
    } else {
        Err(RubricError::Invalid(errors))
    }
}

fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

struct Report(Vec<Issue>);

impl Report {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
        });
    }
    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
        });
    }
    fn non_empty(&mut self, path: String, value: &str) {
        if value.trim().is_empty() {
            self.err(path, "must not be empty");
        }
    }
}

/// Longest rubric id.
pub const MAX_ID_LEN: usize = 64;

/// Every rule a rubric must follow; errors and warnings in file order.
pub fn validate(r: &Rubric) -> Vec<Issue> {
    let mut rep = Report(Vec::new());
    if r.format == RUBRIC_FORMAT_1 {
        // What `/2` added would change what a `/1` file means (a star mark
        // caps a star, a disqualifier voids it): such a file must say `/2`.
        let mut added: Vec<String> = Vec::new();
        if !r.disqualifiers.is_empty() {
            added.push("disqualifiers".into());
        }
        if r.provenance.is_some() {
            added.push("provenance".into());
        }
        for (i, q) in r.star_requirements.iter().enumerate() {
            if q.option.is_some() {
                added.push(format!("star_requirements[{i}].option"));
            }
        }
        for (pi, p) in r.parts.iter().enumerate() {
            for (si, s) in p.sections.iter().enumerate() {
                if s.max_points.is_some() {
                    added.push(format!("parts[{pi}].sections[{si}].max_points"));
                }
            }
        }
        for path in added {
            rep.err(
                path,
                format!("is a field of {RUBRIC_FORMAT:?}; a {RUBRIC_FORMAT_1:?} file cannot carry it (change \"format\")"),
            );
        }
    } else if r.format != RUBRIC_FORMAT {
        rep.err(
            "format",
            format!(
                "{:?} is not a known rubric format; expected {RUBRIC_FORMAT:?} (or {RUBRIC_FORMAT_1:?} for a file of the first format)",
                r.format
            ),
        );
    }
    if r.id.is_empty()
        || r.id.len() > MAX_ID_LEN
        || !r
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        rep.err(
            "id",
            format!("{:?} must be 1 to {MAX_ID_LEN} lowercase letters, digits or dashes, e.g. \"148-food-processed-cereal\"", r.id),
        );
    }
    if r.version == 0 {
        rep.err("version", "must be 1 or more");
    }
    rep.non_empty("title_vi".into(), &r.title_vi);
    rep.non_empty("group".into(), &r.group);
    rep.non_empty("subgroup".into(), &r.subgroup);

    let expected = r.decision.part_caps();
    let mut seen_parts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut seen_criteria: BTreeMap<&str, String> = BTreeMap::new();
    for (pi, p) in r.parts.iter().enumerate() {
        let pp = format!("parts[{pi}]");
        match expected.iter().find(|(c, _)| *c == p.code) {
            None => rep.err(
                format!("{pp}.code"),
                format!(
                    "{:?} is not a known part code; use \"A\", \"B\" or \"C\"",
                    p.code
                ),
            ),
            Some((_, cap)) if *cap != p.cap => rep.err(
                format!("{pp}.cap"),
                format!(
                    "{} differs from {cap}, the cap decision {} fixes for part {}",
                    p.cap,
                    r.decision.label(),
                    p.code
                ),
            ),
            Some(_) => {}
        }
        if let Some(prev) = seen_parts.insert(&p.code, pi) {
            rep.err(
                format!("{pp}.code"),
                format!("part {:?} appears twice (also at parts[{prev}])", p.code),
            );
        }
        rep.non_empty(format!("{pp}.title_vi"), &p.title_vi);
        if p.sections.is_empty() {
            rep.err(
                format!("{pp}.sections"),
                "a part needs at least one section",
            );
        }
        let mut seen_sections: BTreeMap<&str, usize> = BTreeMap::new();
        for (si, s) in p.sections.iter().enumerate() {
            let sp = format!("{pp}.sections[{si}]");
            rep.non_empty(format!("{sp}.code"), &s.code);
            rep.non_empty(format!("{sp}.title_vi"), &s.title_vi);
            if let Some(prev) = seen_sections.insert(&s.code, si) {
                rep.err(
                    format!("{sp}.code"),
                    format!(
                        "section {:?} appears twice in part {} (also at sections[{prev}])",
                        s.code, p.code
                    ),
                );
            }
            let section_sum: u32 = s.criteria.iter().map(|c| c.max_points).sum();
            if let Some(max) = s.max_points
                && !s.criteria.is_empty()
                && section_sum != max
            {
                rep.err(
                    format!("{sp}.max_points"),
                    format!(
                        "{max} but the criteria maxima of section {} sum to {section_sum}",
                        s.code
                    ),
                );
            }
            if s.criteria.is_empty() && !r.template {
                rep.err(format!("{sp}.criteria"), "a section needs at least one criterion (or mark the rubric \"template\": true)");
            }
            for (ci, c) in s.criteria.iter().enumerate() {
                let cp = format!("{sp}.criteria[{ci}]");
                if c.code.trim().is_empty() {
                    rep.err(format!("{cp}.code"), "must not be empty");
                } else if let Some(prev) = seen_criteria.insert(&c.code, cp.clone()) {
                    rep.err(
                        format!("{cp}.code"),
                        format!("criterion {:?} is used twice (also at {prev})", c.code),
                    );
                }
                rep.non_empty(format!("{cp}.text_vi"), &c.text_vi);
                if let Some(k) = &c.knockout {
                    rep.non_empty(format!("{cp}.knockout.text_vi"), &k.text_vi);
                }
                if c.max_points == 0 {
                    rep.err(format!("{cp}.max_points"), "must be 1 or more");
                }
                if c.option_sets.is_empty() {
                    rep.err(
                        format!("{cp}.option_sets"),
                        "a criterion needs at least one option set",
                    );
                }
                let mut seen_opts: BTreeMap<&str, String> = BTreeMap::new();
                for (oi, set) in c.option_sets.iter().enumerate() {
                    let op = format!("{cp}.option_sets[{oi}]");
                    if set.options.len() < 2 {
                        rep.err(
                            format!("{op}.options"),
                            format!(
                                "has {} option(s); a criterion needs at least two to choose from",
                                set.options.len()
                            ),
                        );
                    }
                    let mut by_points: BTreeMap<u32, usize> = BTreeMap::new();
                    for (xi, o) in set.options.iter().enumerate() {
                        let xp = format!("{op}.options[{xi}]");
                        if o.id.trim().is_empty() {
                            rep.err(format!("{xp}.id"), "must not be empty");
                        } else if let Some(prev) = seen_opts.insert(&o.id, xp.clone()) {
                            rep.err(
                                format!("{xp}.id"),
                                format!(
                                    "option id {:?} is used twice in criterion {} (also at {prev})",
                                    o.id, c.code
                                ),
                            );
                        }
                        rep.non_empty(format!("{xp}.text_vi"), &o.text_vi);
                        if o.points > c.max_points {
                            rep.err(
                                format!("{xp}.points"),
                                format!(
                                    "{} exceeds the criterion maximum {}",
                                    o.points, c.max_points
                                ),
                            );
                        }
                        if let Some(prev) = by_points.insert(o.points, xi) {
                            rep.warn(
                                format!("{xp}.points"),
                                format!(
                                    "options[{prev}] and options[{xi}] of criterion {} both give {} points; check the source (a slip is likely)",
                                    c.code, o.points
                                ),
                            );
                        }
                    }
                }
                if !c.option_sets.is_empty()
                    && c.top_points() != c.max_points
                    && c.top_points() < c.max_points
                {
                    rep.err(
                        format!("{cp}.max_points"),
                        format!(
                            "is {} but the best option gives {}; one option must reach the maximum",
                            c.max_points,
                            c.top_points()
                        ),
                    );
                }
            }
        }
        let sum = p.criteria_max_sum();
        let has_criteria = p.sections.iter().any(|s| !s.criteria.is_empty());
        if (!r.template || has_criteria) && sum != p.cap {
            rep.err(
                format!("{pp}.cap"),
                format!(
                    "{} but the criteria maxima of part {} sum to {sum}",
                    p.cap, p.code
                ),
            );
        }
    }
    for (code, cap) in expected {
        if !seen_parts.contains_key(code) {
            rep.err("parts", format!("part {code} ({cap} points) is missing"));
        }
    }
    let total = r.total_cap();
    if total != 100 {
        rep.err(
            "parts",
            format!("part caps sum to {total}; a score sheet totals 100"),
        );
    }
    let mut seen_requirements: BTreeMap<(u8, &str), usize> = BTreeMap::new();
    for (i, q) in r.star_requirements.iter().enumerate() {
        let qp = format!("star_requirements[{i}]");
        if !(2..=5).contains(&q.stars) {
            rep.err(
                format!("{qp}.stars"),
                format!(
                    "{} is not a star level that can carry a requirement (2 to 5)",
                    q.stars
                ),
            );
        }
        match r.criterion(&q.criterion) {
            None => rep.err(
                format!("{qp}.criterion"),
                format!("{:?} is not a criterion of this rubric", q.criterion),
            ),
            Some(c) if q.min_points > c.max_points => rep.err(
                format!("{qp}.min_points"),
                format!(
                    "{} exceeds the maximum {} of criterion {}",
                    q.min_points, c.max_points, c.code
                ),
            ),
            Some(c) => {
                if let Some(id) = &q.option {
                    match c.option(id) {
                        None => rep.err(
                            format!("{qp}.option"),
                            format!("{id:?} is not an option of criterion {}", c.code),
                        ),
                        // The mark means "this option or a better one", and
                        // the scoring checks points: the two must agree.
                        Some(o) if o.points != q.min_points => rep.err(
                            format!("{qp}.min_points"),
                            format!(
                                "{} differs from the {} points of the marked option {id} of criterion {}",
                                q.min_points, o.points, c.code
                            ),
                        ),
                        Some(_) => {}
                    }
                }
            }
        }
        // A missed requirement's reason is found by its level and criterion.
        if let Some(prev) = seen_requirements.insert((q.stars, q.criterion.as_str()), i) {
            rep.err(
                format!("{qp}.criterion"),
                format!(
                    "criterion {} has a second requirement for {} stars (also at star_requirements[{prev}])",
                    q.criterion, q.stars
                ),
            );
        }
        rep.non_empty(format!("{qp}.text_vi"), &q.text_vi);
    }
    let mut seen_disqualifiers: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, d) in r.disqualifiers.iter().enumerate() {
        let dp = format!("disqualifiers[{i}]");
        if d.code.trim().is_empty() {
            rep.err(format!("{dp}.code"), "must not be empty");
        } else if let Some(at) = seen_criteria.get(d.code.as_str()) {
            rep.err(
                format!("{dp}.code"),
                format!(
                    "{:?} is a criterion code (at {at}); a disqualifier needs its own answer key",
                    d.code
                ),
            );
        } else if let Some(prev) = seen_disqualifiers.insert(&d.code, i) {
            rep.err(
                format!("{dp}.code"),
                format!(
                    "disqualifier {:?} is used twice (also at disqualifiers[{prev}])",
                    d.code
                ),
            );
        }
        rep.non_empty(format!("{dp}.text_vi"), &d.text_vi);
    }
    if let Some(pv) = &r.provenance {
        rep.non_empty("provenance.decision".into(), &pv.decision);
        rep.non_empty("provenance.annex".into(), &pv.annex);
        rep.non_empty("provenance.annex1_code".into(), &pv.annex1_code);
        rep.non_empty("provenance.source".into(), &pv.source);
        if !is_iso_date(&pv.date) {
            rep.err(
                "provenance.date",
                format!("{:?} is not a date in the form YYYY-MM-DD", pv.date),
            );
        }
        if pv.sheet_no == 0 {
            rep.err("provenance.sheet_no", "must be 1 or more");
        }
        for (i, c) in pv.corrections.iter().enumerate() {
            rep.non_empty(format!("provenance.corrections[{i}]"), c);
        }
    }
    if r.decision == Decision::D1048 && r.criteria().any(|(_, _, c)| c.mandatory) {
        rep.warn("parts", "criteria marked mandatory in a 1048/781 rubric: mandatory criteria were introduced by 148");
    }
    rep.0
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}
