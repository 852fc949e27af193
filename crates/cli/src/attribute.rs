//! `tribute attribute`: credit per channel under each model, from a path file.
//!
//! A thin shell over [`tribute_core::attribution::paths`], which holds the
//! format, the fits and the exact arithmetic; this reads the file, parses the
//! options and prints.

use std::path::PathBuf;

use anyhow::Context;
use tribute_core::attribution::paths::{attribute_paths, parse_paths, ReportModel, ReportOptions};
use tribute_core::attribution::DEFAULT_HALF_LIFE_DAYS;

/// Output format of `tribute attribute`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `{"<model>": {"<channel>": {"conversions": …, "value": …}}}`
    Json,
    /// `model,channel,conversions,value`
    Csv,
}

/// Attribute the journeys of a path file (columns `path`,
/// `total_conversions`, `total_conversion_value`, `total_null`, optional
/// `ages_days`; comma or semicolon separated) under each model and print
/// each channel's conversions and value.
///
/// Conversions are printed with 6 decimals and values with the file's own
/// decimals (at least 2); under every model the channels add up exactly to
/// the file's total conversions and value.
#[derive(clap::Args, Debug)]
pub struct AttributeArgs {
    /// The path file to read (`-` for standard input).
    #[arg(long, short)]
    pub input: PathBuf,
    /// `all`, or a comma-separated list of the models (named in the help
    /// from core's list, so a new model appears without a change here).
    #[arg(long, default_value = "all", help = models_help())]
    pub models: String,
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// Half-life of time_decay, in days.
    #[arg(long = "half-life", default_value_t = DEFAULT_HALF_LIFE_DAYS)]
    pub half_life: f64,
    /// Order of the Markov chain (1, 2 or 3).
    #[arg(long, default_value_t = 1)]
    pub order: u8,
    /// Only touches at most this many days old count (needs `ages_days`).
    #[arg(long)]
    pub window: Option<f64>,
}

fn models_help() -> String {
    let names: Vec<&str> = ReportModel::all().iter().map(|m| m.name()).collect();
    format!("`all`, or a comma-separated list of {}", names.join(", "))
}

/// Run `tribute attribute`, printing the report to standard output.
pub fn run(args: &AttributeArgs) -> anyhow::Result<()> {
    let text = if args.input.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .context("reading the path file from standard input")?
    } else {
        std::fs::read_to_string(&args.input)
            .with_context(|| format!("reading the path file {}", args.input.display()))?
    };
    let file = parse_paths(&text)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("{} is not a valid path file", args.input.display()))?;
    let models = ReportModel::parse_list(&args.models, file.has_ages).context("--models")?;
    let opts = ReportOptions {
        models,
        half_life_days: args.half_life,
        markov_order: args.order,
        window_days: args.window,
    };
    let report = attribute_paths(&file, &opts).context("attributing the paths")?;
    let out = match args.format {
        Format::Json => report.to_json(),
        Format::Csv => report.to_csv(),
    };
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .context("writing the report")?;
    Ok(())
}
