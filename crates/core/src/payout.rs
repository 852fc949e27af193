//! Payout batch files: the CSV files a batch of payouts is exported as, to be
//! uploaded to PayPal or Wise, or opened in a spreadsheet.
//!
//! [`export`] turns a batch ([`PayoutItem`]s, in the order given) into one or
//! more files ("parts"), each within the provider's row limit. Every file is
//! written by the `csv` crate (RFC 4180 quoting: a name such as
//! `Doe, Jane "JD"` becomes `"Doe, Jane ""JD"""`), lines end in CRLF as
//! RFC 4180 and spreadsheet applications write them, and every amount is an
//! exact decimal computed from the integer minor units ([`format_decimal`]).
//!
//! # The formats
//!
//! * **PayPal Payouts Web** ([`ExportFormat::Paypal`]): no header row; the
//!   columns are recipient (the payout e-mail), amount, currency, customer ID
//!   (the partner id), note and wallet (`PAYPAL`). At most 5,000 rows per file
//!   and one currency per file ("Each file must contain only one currency
//!   type"): a batch in several currencies is refused, to be exported one
//!   currency at a time. The customer ID is at most 30 characters without
//!   spaces (a longer partner id is refused rather than cut, since it is what
//!   reconciles the payment); the note at most 400 characters (cut).
//!   Sources: developer.paypal.com/payouts/use-payouts/send-money/use-web-ui
//!   and docs.paypal.ai/send/use-web-ui (columns, 5,000 rows, one currency,
//!   30 and 400 characters); developer.paypal.com/docs/payouts/standard/payouts-web
//!   (Payouts Web upload). PayPal refuses decimals in HUF, JPY and TWD
//!   ("This currency does not support decimals. Decimal amounts cause an
//!   error", PayPal's currency-code table, as reproduced in OroCommerce's
//!   PayPal documentation; the API's error `DECIMALS_NOT_SUPPORTED`,
//!   developer.paypal.com/api/payments/v2/errors): JPY has no minor unit anyway;
//!   HUF and TWD, which have two in ISO 4217, are written in whole units and
//!   an amount with a fraction of a unit is refused.
//! * **Wise batch payment, "send by e-mail" template** ([`ExportFormat::Wise`]):
//!   header `name,recipientEmail,paymentReference,receiverType,amountCurrency,
//!   amount,sourceCurrency,targetCurrency`; `receiverType` is `PERSON`,
//!   `amountCurrency` is `target` ("Fixed Target Payment": the partner gets
//!   the exact amount, fees are on the program), `sourceCurrency` is the
//!   currency the batch is paid from, `targetCurrency` the partner's. At most
//!   1,000 transfers per file. Sources: wise.com/help/articles/2663302 ("How
//!   do I fill in my batch template?"), 2663296 (the three templates; send by
//!   e-mail needs only e-mail, amount and currency), and the blog post
//!   wise.com/us/blog/everything-about-batch-payments (1,000 transfers per
//!   file); the column names as Wise's templates spell them, which
//!   open-source batch exporters reproduce (Wise publishes no schema).
//!   Wise's reference limit depends on the recipient's currency ("Maximum
//!   allowed characters depends on the currency route", docs.wise.com
//!   api-reference/transfer); the per-currency table is from Wise's help
//!   articles 2932870 ("Tips for paying invoices", current) and 2361305
//!   (its older TransferWise version: "The recipient of my business transfer
//!   needs to receive a specific reference"), taking the smaller figure
//!   where they differ (GBP 16 or 18: 16; NZD 50 or 12: 12;
//!   SGD 35 or 25: 25), and 10 (the smallest listed, USD's) for currencies
//!   they do not list; COP carries no reference at all. See [`wise_reference`]
//!   for the characters kept.
//! * **Generic CSV** ([`ExportFormat::Csv`]): header `partner_id,name,email,
//!   amount,currency,amount_minor,reference,note`, one file.
//!
//! # Formula injection
//!
//! A text cell (name, note, reference, e-mail) that starts with `=`, `+`,
//! `-`, `@`, tab, CR or NUL is prefixed with a single quote ([`escape_formula`]),
//! so that a spreadsheet shows it instead of evaluating it (OWASP "CSV
//! Injection"; ASVS 5.0 requirement 1.2.10). Names and notes come from
//! partners and owners, and these files are opened in spreadsheets: Wise's
//! own instructions are to fill its template in Excel. A payout *e-mail*
//! that would need the prefix is refused in the PayPal and Wise files
//! instead: the quote would make it another address, and money sent there
//! would not reach the partner.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::attribution::paths::format_fixed;
use crate::ids::PartnerId;
use crate::money::{check_amount, Currency, Money};
use crate::FieldError;

#[cfg(test)]
mod tests;

/// Rows per PayPal Payouts Web file.
pub const PAYPAL_MAX_ROWS: usize = 5_000;
/// Transfers per Wise batch file.
pub const WISE_MAX_ROWS: usize = 1_000;
/// Characters of a PayPal customer ID.
pub const PAYPAL_CUSTOMER_ID_MAX_CHARS: usize = 30;
/// Characters of a PayPal note to the recipient.
pub const PAYPAL_NOTE_MAX_CHARS: usize = 400;

const WISE_HEADER: [&str; 8] = [
    "name",
    "recipientEmail",
    "paymentReference",
    "receiverType",
    "amountCurrency",
    "amount",
    "sourceCurrency",
    "targetCurrency",
];

const CSV_HEADER: [&str; 8] = [
    "partner_id",
    "name",
    "email",
    "amount",
    "currency",
    "amount_minor",
    "reference",
    "note",
];

/// Currencies PayPal takes in whole units only although ISO 4217 gives
/// them minor units (JPY has none in ISO 4217 either).
const PAYPAL_WHOLE_UNITS: [&str; 2] = ["HUF", "TWD"];

/// Wise's longest payment reference per target currency (see the module
/// documentation for the source and the choice where versions differ).
const WISE_REFERENCE_LIMITS: &[(&str, usize)] = &[
    ("AED", 35),
    ("AUD", 18),
    ("BGN", 35),
    ("CAD", 50),
    ("CHF", 50),
    ("COP", 0),
    ("CZK", 25),
    ("DKK", 35),
    ("EUR", 35),
    ("GBP", 16),
    ("GEL", 35),
    ("HKD", 50),
    ("HUF", 35),
    ("IDR", 35),
    ("INR", 16),
    ("KRW", 35),
    ("LKR", 35),
    ("MAD", 50),
    ("MXN", 100),
    ("MYR", 35),
    ("NGN", 14),
    ("NOK", 35),
    ("NZD", 12),
    ("PHP", 35),
    ("PLN", 35),
    ("RON", 30),
    ("SEK", 12),
    ("SGD", 25),
    ("THB", 50),
    ("USD", 10),
    ("ZAR", 18),
];

/// The reference limit for a currency Wise's table does not list: the
/// smallest limit it lists, so that the reference survives any route.
const WISE_DEFAULT_REFERENCE_LIMIT: usize = 10;

/// One partner's payout in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutItem {
    pub partner_id: PartnerId,
    /// The partner's name (Wise: as on the partner's bank account).
    pub name: String,
    /// The payout e-mail address; PayPal and Wise pay to it.
    pub email: Option<String>,
    /// What the partner is paid, in the currency they are paid in.
    pub amount: Money,
    /// Identifies the payment on the partner's statement (e.g. the payout id
    /// and the partner's slug).
    pub reference: String,
    /// A message to the partner (PayPal shows it; the generic file keeps it).
    pub note: String,
}

/// A file format a payout batch is exported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// PayPal Payouts Web upload.
    Paypal,
    /// Wise batch payment, "send by e-mail" template.
    Wise,
    /// Tribute's own CSV, for a spreadsheet or another provider.
    Csv,
}

impl ExportFormat {
    /// Parse `paypal`, `wise` or `csv` (any case), naming `field` otherwise.
    pub fn parse(field: &str, s: &str) -> Result<Self, FieldError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "paypal" => Ok(Self::Paypal),
            "wise" => Ok(Self::Wise),
            "csv" => Ok(Self::Csv),
            _ => Err(FieldError::new(
                field,
                format!("`{s}` is not an export format (paypal, wise or csv)"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paypal => "paypal",
            Self::Wise => "wise",
            Self::Csv => "csv",
        }
    }

    /// Rows one file may hold; `None`: no limit (the generic CSV).
    pub fn max_rows(self) -> Option<usize> {
        match self {
            Self::Paypal => Some(PAYPAL_MAX_ROWS),
            Self::Wise => Some(WISE_MAX_ROWS),
            Self::Csv => None,
        }
    }

    fn header(self) -> Option<&'static [&'static str]> {
        match self {
            Self::Paypal => None,
            Self::Wise => Some(&WISE_HEADER),
            Self::Csv => Some(&CSV_HEADER),
        }
    }
}

/// Export a batch as one or more files of `format`, each within
/// [`ExportFormat::max_rows`], the items in the order given (the first
/// `max_rows` in the first file, and so on). `source_currency` is what the
/// batch is paid from (Wise's `sourceCurrency`; the other formats ignore it).
///
/// Refused, naming the field: an empty batch (`items`); an amount that is
/// not positive or above the maximum (`items[i].amount`); for PayPal and Wise
/// a missing or unusable payout e-mail (`items[i].email`); for PayPal several
/// currencies in one batch (`currency`), a fraction of a HUF or TWD unit
/// (`items[i].amount`), a partner id too long for a customer ID
/// (`items[i].partner_id`).
pub fn export(
    format: ExportFormat,
    items: &[PayoutItem],
    source_currency: Currency,
) -> Result<Vec<String>, FieldError> {
    if items.is_empty() {
        return Err(FieldError::new(
            "items",
            "a payout batch pays at least one partner",
        ));
    }
    for (i, item) in items.iter().enumerate() {
        check_positive(i, item)?;
    }
    let rows = match format {
        ExportFormat::Paypal => paypal_rows(items)?,
        ExportFormat::Wise => wise_rows(items, source_currency)?,
        ExportFormat::Csv => generic_rows(items),
    };
    let per_part = format.max_rows().unwrap_or(rows.len());
    Ok(rows
        .chunks(per_part)
        .map(|part| write_csv(format.header(), part))
        .collect())
}

/// An amount as an exact decimal with its currency's exponent, without the
/// currency: `12.34` EUR, `1234` JPY, `1.234` KWD, `-0.05` EUR.
pub fn format_decimal(m: Money) -> String {
    format_fixed(i128::from(m.minor), u32::from(m.currency.exponent()))
}

/// `s` with a single quote in front when a spreadsheet would otherwise take
/// it for a formula: it starts with `=`, `+`, `-`, `@`, tab, CR or NUL.
pub fn escape_formula(s: &str) -> Cow<'_, str> {
    if starts_like_formula(s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// The payment reference Wise is given for `reference` to a recipient paid
/// in `currency`: ASCII letters, digits, spaces, `-` and `.` are kept (the
/// characters every bank scheme carries, SEPA's and Faster Payments'
/// included); any run of other characters becomes one `-`; it starts and
/// ends with a letter or digit; and it is cut to Wise's limit for the
/// currency (empty for COP, which carries no reference). Starting with a
/// letter or digit, it never needs [`escape_formula`].
pub fn wise_reference(reference: &str, currency: Currency) -> String {
    let limit = WISE_REFERENCE_LIMITS
        .iter()
        .find(|(code, _)| *code == currency.as_str())
        .map_or(WISE_DEFAULT_REFERENCE_LIMIT, |(_, limit)| *limit);
    let mut clean = String::with_capacity(reference.len());
    for c in reference.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '.') {
            clean.push(c);
        } else if !clean.ends_with('-') {
            clean.push('-');
        }
    }
    let not_alphanumeric = |c: char| !c.is_ascii_alphanumeric();
    let clean = clean.trim_matches(not_alphanumeric);
    // ASCII only from here, so a byte index is a character index.
    clean[..clean.len().min(limit)]
        .trim_end_matches(not_alphanumeric)
        .to_owned()
}

fn starts_like_formula(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@', '\t', '\r', '\0'])
}

fn check_positive(i: usize, item: &PayoutItem) -> Result<(), FieldError> {
    let field = format!("items[{i}].amount");
    if item.amount.minor <= 0 {
        return Err(FieldError::new(
            field,
            format!(
                "must be positive: partner {} is owed {}, and a batch pays only positive amounts",
                item.partner_id, item.amount
            ),
        ));
    }
    check_amount(&field, item.amount.minor).map(|_| ())
}

/// The payout e-mail a provider pays to, or an error naming the partner.
fn provider_email(i: usize, item: &PayoutItem, provider: &str) -> Result<String, FieldError> {
    let field = format!("items[{i}].email");
    let who = format!("partner {} ({})", item.partner_id, item.name);
    match item.email.as_deref().map(str::trim) {
        Some(email) if starts_like_formula(email) => Err(FieldError::new(
            field,
            format!(
                "{who}: the payout e-mail `{email}` starts like a spreadsheet formula \
                 and cannot be written to a {provider} file unchanged"
            ),
        )),
        Some(email) if !email.is_empty() => Ok(email.to_owned()),
        _ => Err(FieldError::new(
            field,
            format!("{who} has no payout e-mail, which {provider} pays to"),
        )),
    }
}

fn paypal_rows(items: &[PayoutItem]) -> Result<Vec<Vec<String>>, FieldError> {
    let currency = items[0].amount.currency;
    if let Some((i, other)) = items
        .iter()
        .enumerate()
        .find(|(_, item)| item.amount.currency != currency)
    {
        return Err(FieldError::new(
            "currency",
            format!(
                "a PayPal payout file holds one currency: items[0] is in {currency}, \
                 items[{i}] in {}; export each currency as its own batch",
                other.amount.currency
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let email = provider_email(i, item, "PayPal")?;
            let customer_id = item.partner_id.as_str();
            if customer_id.chars().count() > PAYPAL_CUSTOMER_ID_MAX_CHARS {
                return Err(FieldError::new(
                    format!("items[{i}].partner_id"),
                    format!(
                        "`{customer_id}` is longer than the {PAYPAL_CUSTOMER_ID_MAX_CHARS} \
                         characters of a PayPal customer ID"
                    ),
                ));
            }
            let note = escape_formula(&item.note);
            Ok(vec![
                email,
                paypal_amount(i, item.amount)?,
                currency.to_string(),
                customer_id.to_owned(),
                truncate_chars(&note, PAYPAL_NOTE_MAX_CHARS).to_owned(),
                "PAYPAL".to_owned(),
            ])
        })
        .collect()
}

/// The amount as PayPal reads it: whole units for HUF and TWD.
fn paypal_amount(i: usize, m: Money) -> Result<String, FieldError> {
    if !PAYPAL_WHOLE_UNITS.contains(&m.currency.as_str()) {
        return Ok(format_decimal(m));
    }
    let unit = 10i64.pow(u32::from(m.currency.exponent()));
    if m.minor % unit != 0 {
        return Err(FieldError::new(
            format!("items[{i}].amount"),
            format!(
                "PayPal pays {} in whole units only, and {m} has a fraction of a unit",
                m.currency
            ),
        ));
    }
    Ok((m.minor / unit).to_string())
}

fn wise_rows(
    items: &[PayoutItem],
    source_currency: Currency,
) -> Result<Vec<Vec<String>>, FieldError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let currency = item.amount.currency;
            let mut reference = wise_reference(&item.reference, currency);
            if reference.is_empty() {
                // Nothing usable was left of the reference: the partner id
                // still identifies the payment (COP stays without one).
                reference = wise_reference(item.partner_id.as_str(), currency);
            }
            Ok(vec![
                escape_formula(&item.name).into_owned(),
                provider_email(i, item, "Wise")?,
                reference,
                "PERSON".to_owned(),
                "target".to_owned(),
                format_decimal(item.amount),
                source_currency.to_string(),
                currency.to_string(),
            ])
        })
        .collect()
}

fn generic_rows(items: &[PayoutItem]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|item| {
            vec![
                item.partner_id.to_string(),
                escape_formula(&item.name).into_owned(),
                item.email
                    .as_deref()
                    .map(|e| escape_formula(e.trim()).into_owned())
                    .unwrap_or_default(),
                format_decimal(item.amount),
                item.amount.currency.to_string(),
                item.amount.minor.to_string(),
                escape_formula(&item.reference).into_owned(),
                escape_formula(&item.note).into_owned(),
            ]
        })
        .collect()
}

/// The first `max` characters of `s`.
fn truncate_chars(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(at, _)| &s[..at])
}

fn write_csv(header: Option<&[&str]>, rows: &[Vec<String>]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to memory cannot fail, and every row of a format has as many
    // cells as its header (the writer refuses uneven rows).
    if let Some(header) = header {
        w.write_record(header).expect("writing CSV to memory");
    }
    for row in rows {
        w.write_record(row).expect("writing CSV to memory");
    }
    let bytes = w.into_inner().expect("flushing CSV to memory");
    String::from_utf8(bytes).expect("CSV written from strings is UTF-8")
}
