//! The path files of attribution tools, read and attributed for `tribute attribute`.
//!
//! **Format.** A header naming the columns `path`, `total_conversions`,
//! `total_conversion_value` and `total_null` (any order, extra columns
//! ignored), then one row per path. `path` lists channel names joined by
//! `>` (usually ` > `) in time order. Fields are separated by commas or by
//! semicolons — whichever the header uses — and may be double-quoted. With
//! semicolons a decimal comma is accepted (`12,50`). An optional
//! `ages_days` column gives, `>`-separated, each touch's age in days at the
//! conversion; it enables `time_decay` and `--window`.
//!
//! A row stands for `total_conversions` converting journeys, each worth
//! `total_conversion_value / total_conversions`, and `total_null` journeys
//! that did not convert. The data-driven models are fitted over the file's
//! journeys (whole paths; the window only bounds which touches earn).
//!
//! **Exact totals.** Values are parsed as exact decimals into minor units
//! with as many decimals as the file uses (at least 2, at most 9). Each
//! row's value and its conversions (in units of 10⁻⁶ conversion, see
//! [`CONVERSION_DECIMALS`]) are split over the row's touches by largest
//! remainder — the same rule commissions are paid with — and summed per
//! channel, so every model's channels add up exactly to the file's total
//! conversions and total value. Conversions whose touches all fall outside
//! the window are reported under the channel [`UNATTRIBUTED`].
//!
//! `markov_global` is the figure attribution tools usually report: the
//! file's total conversions and value split by the channel weights `w_c`.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use super::config::{validate_order, ModelKind};
use super::journey::Journey;
use super::{data_driven_weights, fit_markov, fit_shapley, rules, Fit};
use crate::split::{fixed_point_weights, split_into, SplitScratch};
use crate::FieldError;

/// Conversions are credited in millionths: printed with 6 decimals.
pub const CONVERSION_DECIMALS: u32 = 6;
/// The pseudo-channel for conversions none of whose touches counted.
pub const UNATTRIBUTED: &str = "(unattributed)";
/// How many malformed lines an error lists before summarising the rest.
const MAX_REPORTED_ERRORS: usize = 20;

/// One row of a path file, with values exact in the file's minor units.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRow {
    /// 1-based line number in the file.
    pub line: usize,
    pub path: Vec<String>,
    pub conversions: u64,
    /// `total_conversion_value` in units of 10^-`value_decimals`.
    pub value: i128,
    pub nulls: u64,
    /// Age in days of each touch at the conversion, when the file has them.
    pub ages_days: Option<Vec<f64>>,
}

/// A parsed path file.
#[derive(Debug, Clone, PartialEq)]
pub struct PathFile {
    pub separator: char,
    /// Decimals of every `value` (the most any row used, at least 2).
    pub value_decimals: u32,
    pub has_ages: bool,
    pub rows: Vec<PathRow>,
    pub total_conversions: u64,
    pub total_value: i128,
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// Why a path file could not be read: every malformed line, by number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PathFileError {
    pub errors: Vec<LineError>,
    /// Malformed lines beyond those listed.
    pub more: usize,
}

impl fmt::Display for PathFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if e.line == 0 {
                write!(f, "{}", e.message)?;
            } else {
                write!(f, "line {}: {}", e.line, e.message)?;
            }
        }
        if self.more > 0 {
            write!(f, "\n… and {} more malformed lines", self.more)?;
        }
        Ok(())
    }
}

fn fail(line: usize, message: impl Into<String>) -> PathFileError {
    PathFileError {
        errors: vec![LineError {
            line,
            message: message.into(),
        }],
        more: 0,
    }
}

/// Split one line into fields on `sep`, honouring double quotes (`""` is a
/// quote inside a quoted field).
fn fields(line: &str, sep: char) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (false, c) if c == sep => out.push(std::mem::take(&mut field)),
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    out.push(field);
    Ok(out)
}

/// A non-negative whole count; `3.0` is accepted as tools write floats.
fn count(s: &str, column: &str) -> Result<u64, String> {
    let s = s.trim();
    let whole = match s.split_once(['.', ',']) {
        Some((w, frac)) if frac.bytes().all(|b| b == b'0') => w,
        Some(_) => return Err(format!("{column} `{s}` is not a whole number")),
        None => s,
    };
    whole
        .parse::<u64>()
        .map_err(|_| format!("{column} `{s}` is not a non-negative whole number"))
}

/// An exact decimal: (digits as an integer, number of decimals).
fn decimal(s: &str, decimal_comma: bool) -> Result<(i128, u32), String> {
    let t = s.trim();
    let bad = || format!("total_conversion_value `{t}` is not a decimal number");
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = match body.split_once(|c| c == '.' || (decimal_comma && c == ',')) {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err(format!(
            "total_conversion_value `{t}` has more than 9 decimals"
        ));
    }
    if int.len() + frac.len() > 30 {
        return Err(format!("total_conversion_value `{t}` is too large"));
    }
    let digits: i128 = format!("{int}{frac}").parse().unwrap_or(0);
    Ok((if neg { -digits } else { digits }, frac.len() as u32))
}

/// Parse a path file (see the module documentation for the format).
pub fn parse_paths(text: &str) -> Result<PathFile, PathFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((header_line, header)) = lines.next() else {
        return Err(fail(0, "the file is empty: expected a header with path, total_conversions, total_conversion_value, total_null"));
    };
    let separator = if header.contains(';') { ';' } else { ',' };
    let names: Vec<String> = fields(header, separator)
        .map_err(|m| fail(header_line, m))?
        .into_iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    let column = |name: &str| names.iter().position(|n| n == name);
    let required = [
        "path",
        "total_conversions",
        "total_conversion_value",
        "total_null",
    ];
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|n| column(n).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(fail(
            header_line,
            format!("the header lacks the column(s) {}", missing.join(", ")),
        ));
    }
    let [c_path, c_conv, c_value, c_null] = required.map(|n| column(n).unwrap_or(0));
    let c_ages = column("ages_days");
    let width = names.len();

    let mut rows = Vec::new();
    let mut errors: Vec<LineError> = Vec::new();
    let mut more = 0;
    let mut values: Vec<(i128, u32)> = Vec::new();
    for (line, text) in lines {
        match parse_row(
            text,
            separator,
            width,
            [c_path, c_conv, c_value, c_null],
            c_ages,
        ) {
            Ok((row, value)) => {
                rows.push(PathRow { line, ..row });
                values.push(value);
            }
            Err(message) if errors.len() < MAX_REPORTED_ERRORS => {
                errors.push(LineError { line, message })
            }
            Err(_) => more += 1,
        }
    }
    if !errors.is_empty() {
        return Err(PathFileError { errors, more });
    }

    let value_decimals = values.iter().map(|v| v.1).max().unwrap_or(0).max(2);
    let mut total_conversions = 0u64;
    let mut total_value = 0i128;
    for (row, &(digits, decimals)) in rows.iter_mut().zip(&values) {
        row.value = digits * 10i128.pow(value_decimals - decimals);
        total_value += row.value;
        total_conversions = total_conversions
            .checked_add(row.conversions)
            .ok_or_else(|| fail(row.line, "total conversions overflow a 64-bit count"))?;
    }
    if total_conversions == 0 {
        return Err(fail(0, "the file has no conversions: every total_conversions is 0, so there is nothing to attribute"));
    }
    Ok(PathFile {
        separator,
        value_decimals,
        has_ages: c_ages.is_some(),
        rows,
        total_conversions,
        total_value,
    })
}

/// One data row; the value is returned as (digits, decimals) to be scaled
/// once the file's precision is known.
fn parse_row(
    text: &str,
    sep: char,
    width: usize,
    [c_path, c_conv, c_value, c_null]: [usize; 4],
    c_ages: Option<usize>,
) -> Result<(PathRow, (i128, u32)), String> {
    let f = fields(text, sep)?;
    if f.len() < width {
        return Err(format!(
            "expected {width} fields separated by `{sep}`, found {}",
            f.len()
        ));
    }
    let path: Vec<String> = f[c_path].split('>').map(|c| c.trim().to_owned()).collect();
    if path.iter().any(String::is_empty) {
        return Err(format!(
            "path `{}` has an empty channel name",
            f[c_path].trim()
        ));
    }
    let conversions = count(&f[c_conv], "total_conversions")?;
    let nulls = count(&f[c_null], "total_null")?;
    let value = decimal(&f[c_value], sep == ';')?;
    if conversions == 0 && value.0 != 0 {
        return Err("total_conversion_value is not zero but total_conversions is".into());
    }
    let ages_days = match c_ages {
        None => None,
        Some(c) => {
            let ages: Vec<f64> = f[c]
                .split('>')
                .map(|a| {
                    let a = a.trim();
                    let parsed = if sep == ';' {
                        a.replace(',', ".")
                    } else {
                        a.to_owned()
                    };
                    match parsed.parse::<f64>() {
                        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
                        _ => Err(format!(
                            "ages_days `{a}` is not a non-negative number of days"
                        )),
                    }
                })
                .collect::<Result<_, _>>()?;
            if ages.len() != path.len() {
                return Err(format!(
                    "ages_days has {} values for a path of {} touches",
                    ages.len(),
                    path.len()
                ));
            }
            Some(ages)
        }
    };
    let row = PathRow {
        line: 0,
        path,
        conversions,
        value: 0,
        nulls,
        ages_days,
    };
    Ok((row, value))
}

/// What the report lists: a model, or Markov's global figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportModel {
    Model(ModelKind),
    /// Total conversions and value × `w_c` (not per conversion).
    MarkovGlobal,
}

impl ReportModel {
    /// Every model a report can list, in its order: the models, with
    /// `markov_global` right after `markov`.
    pub fn all() -> Vec<ReportModel> {
        let mut all = Vec::with_capacity(ModelKind::ALL.len() + 1);
        for m in ModelKind::ALL {
            all.push(ReportModel::Model(m));
            if m == ModelKind::Markov {
                all.push(ReportModel::MarkovGlobal);
            }
        }
        all
    }

    pub fn name(self) -> &'static str {
        match self {
            ReportModel::Model(m) => m.as_str(),
            ReportModel::MarkovGlobal => "markov_global",
        }
    }

    /// Parse `all` or a comma-separated list of model names (and
    /// `markov_global`). `all` includes `time_decay` only when the file has
    /// ages, and `markov_global` right after `markov`.
    pub fn parse_list(s: &str, has_ages: bool) -> Result<Vec<ReportModel>, FieldError> {
        let mut out = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "all" => out.extend(
                    Self::all()
                        .into_iter()
                        .filter(|m| *m != ReportModel::Model(ModelKind::TimeDecay) || has_ages),
                ),
                other => {
                    // The list of names comes from `all()`, so a model added
                    // to core is accepted and named here without a change.
                    let all = Self::all();
                    let found = all.iter().find(|m| m.name() == other).ok_or_else(|| {
                        let names: Vec<&str> = all.iter().map(|m| m.name()).collect();
                        FieldError::new(
                            "models",
                            format!(
                                "`{other}` is not a model; expected `all` or one of {}",
                                names.join(", ")
                            ),
                        )
                    })?;
                    out.push(*found);
                }
            }
        }
        let mut seen = Vec::new();
        out.retain(|m| {
            let new = !seen.contains(m);
            seen.push(*m);
            new
        });
        if out.is_empty() {
            return Err(FieldError::new(
                "models",
                "name at least one model, or `all`",
            ));
        }
        Ok(out)
    }
}

/// Options of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    pub models: Vec<ReportModel>,
    pub half_life_days: f64,
    pub markov_order: u8,
    /// Touches older than this many days (by `ages_days`) do not count.
    pub window_days: Option<f64>,
}

/// A channel's credit under one model, in fixed-point units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCredit {
    pub channel: String,
    /// In units of 10^-[`CONVERSION_DECIMALS`] conversion.
    pub conversions: i128,
    /// In units of 10^-`value_decimals` of the file's currency.
    pub value: i128,
}

/// Credit per channel under each model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub value_decimals: u32,
    /// Models in the order asked, channels sorted by name.
    pub models: Vec<(String, Vec<ChannelCredit>)>,
}

/// Attribute every row of `file` under each model of `opts`.
pub fn attribute_paths(file: &PathFile, opts: &ReportOptions) -> Result<Report, FieldError> {
    let wants = |m: ModelKind| opts.models.contains(&ReportModel::Model(m));
    if !file.has_ages && (wants(ModelKind::TimeDecay) || opts.window_days.is_some()) {
        return Err(FieldError::new(
            "input",
            "time_decay and --window need an ages_days column in the file",
        ));
    }
    super::config::check_half_life_days("half_life", opts.half_life_days)?;
    if opts
        .window_days
        .is_some_and(|w| !(w.is_finite() && w >= 0.0))
    {
        return Err(FieldError::new(
            "window",
            "must be a non-negative number of days",
        ));
    }
    validate_order(opts.markov_order).map_err(|e| e.at("order"))?;
    let journeys: Vec<Journey<&str>> = file
        .rows
        .iter()
        .map(|r| Journey {
            path: r.path.iter().map(String::as_str).collect(),
            conversions: r.conversions,
            nulls: r.nulls,
        })
        .collect();
    let needs_markov = wants(ModelKind::Markov) || opts.models.contains(&ReportModel::MarkovGlobal);
    let markov = needs_markov
        .then(|| fit_markov(&journeys, opts.markov_order))
        .transpose()?
        .map(Fit::Markov);
    let shapley = wants(ModelKind::Shapley)
        .then(|| fit_shapley(&journeys))
        .transpose()?
        .map(Fit::Shapley);

    let mut channels: Vec<&str> = journeys
        .iter()
        .flat_map(|j| j.path.iter().copied())
        .collect();
    channels.sort_unstable();
    channels.dedup();
    let conv_unit = 10i128.pow(CONVERSION_DECIMALS);
    let mut models = Vec::new();
    for &model in &opts.models {
        let mut totals: BTreeMap<&str, (i128, i128)> =
            channels.iter().map(|&c| (c, (0, 0))).collect();
        match model {
            ReportModel::MarkovGlobal => {
                let Some(Fit::Markov(fit)) = &markov else {
                    continue;
                };
                let raw: Vec<f64> = fit.channels.iter().map(|c| c.weight).collect();
                let names: Vec<&str> = fit.channels.iter().map(|c| c.channel.as_str()).collect();
                let total_conv = i128::from(file.total_conversions) * conv_unit;
                credit_exact(&mut totals, &names, &raw, &[], total_conv, file.total_value);
            }
            ReportModel::Model(kind) => {
                let fit = match kind {
                    ModelKind::Markov => markov.as_ref(),
                    ModelKind::Shapley => shapley.as_ref(),
                    _ => None,
                };
                let mut raw = Vec::new();
                let mut kept: Vec<&str> = Vec::new();
                let mut ages: Vec<f64> = Vec::new();
                for row in file.rows.iter().filter(|r| r.conversions > 0) {
                    kept.clear();
                    ages.clear();
                    for (k, ch) in row.path.iter().enumerate() {
                        let age = row.ages_days.as_ref().map(|a| a[k]);
                        if opts.window_days.is_none_or(|w| age.is_none_or(|a| a <= w)) {
                            kept.push(ch);
                            ages.extend(age);
                        }
                    }
                    let conv = i128::from(row.conversions) * conv_unit;
                    if kept.is_empty() {
                        let e = totals.entry(UNATTRIBUTED).or_default();
                        e.0 += conv;
                        e.1 += row.value;
                        continue;
                    }
                    let mut exact = Vec::new();
                    if rules::rule_weights(kind, kept.len(), &mut exact) {
                        raw.clear();
                        raw.extend(exact.iter().map(|&w| w as f64));
                    } else if let Some(fit) = fit {
                        data_driven_weights(fit, &kept, &mut raw);
                    } else {
                        rules::time_decay_weights(&ages, opts.half_life_days, &mut raw);
                    }
                    credit_exact(&mut totals, &kept, &raw, &exact, conv, row.value);
                }
            }
        }
        let list = totals
            .into_iter()
            .map(|(channel, (conversions, value))| ChannelCredit {
                channel: channel.to_owned(),
                conversions,
                value,
            })
            .collect();
        models.push((model.name().to_owned(), list));
    }
    Ok(Report {
        value_decimals: file.value_decimals,
        models,
    })
}

/// Split `conv` and `value` over `names` and add them up per name: by the
/// exact integer weights `exact` when given, else by real weights `raw`.
fn credit_exact<'a>(
    totals: &mut BTreeMap<&'a str, (i128, i128)>,
    names: &[&'a str],
    raw: &[f64],
    exact: &[u64],
    conv: i128,
    value: i128,
) {
    let mut fixed = Vec::new();
    let weights = if exact.is_empty() {
        fixed_point_weights(raw, &mut fixed);
        &fixed[..]
    } else {
        exact
    };
    let mut scratch = SplitScratch::default();
    let mut parts = Vec::new();
    for (amount, slot) in [(conv, 0), (value, 1)] {
        // Row amounts fit i64 in practice; larger ones are split in i64 chunks.
        let mut left = amount;
        while left != 0 {
            let chunk = left.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
            left -= chunk;
            split_into(chunk as i64, weights, &mut parts, &mut scratch);
            for (name, &p) in names.iter().zip(&parts) {
                let e = totals.entry(name).or_default();
                if slot == 0 {
                    e.0 += i128::from(p);
                } else {
                    e.1 += i128::from(p);
                }
            }
        }
    }
}

/// `digits` with `decimals` decimals, exactly (`-12.50`).
pub fn format_fixed(digits: i128, decimals: u32) -> String {
    let sign = if digits < 0 { "-" } else { "" };
    let abs = digits.unsigned_abs();
    if decimals == 0 {
        return format!("{sign}{abs}");
    }
    let unit = 10u128.pow(decimals);
    format!(
        "{sign}{}.{:0width$}",
        abs / unit,
        abs % unit,
        width = decimals as usize
    )
}

impl Report {
    /// `{"<model>": {"<channel>": {"conversions": …, "value": …}}}`, numbers
    /// written as exact decimals.
    pub fn to_json(&self) -> String {
        let mut s = String::from("{\n");
        for (i, (model, channels)) in self.models.iter().enumerate() {
            let _ = write!(s, "  {}: {{", json_string(model));
            for (j, c) in channels.iter().enumerate() {
                let _ = write!(
                    s,
                    "{}\n    {}: {{\"conversions\": {}, \"value\": {}}}",
                    if j == 0 { "" } else { "," },
                    json_string(&c.channel),
                    format_fixed(c.conversions, CONVERSION_DECIMALS),
                    format_fixed(c.value, self.value_decimals),
                );
            }
            let _ = write!(
                s,
                "\n  }}{}\n",
                if i + 1 < self.models.len() { "," } else { "" }
            );
        }
        s.push_str("}\n");
        s
    }

    /// `model,channel,conversions,value`, one line per model and channel.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("model,channel,conversions,value\n");
        for (model, channels) in &self.models {
            for c in channels {
                let _ = writeln!(
                    s,
                    "{model},{},{},{}",
                    csv_field(&c.channel),
                    format_fixed(c.conversions, CONVERSION_DECIMALS),
                    format_fixed(c.value, self.value_decimals),
                );
            }
        }
        s
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}
