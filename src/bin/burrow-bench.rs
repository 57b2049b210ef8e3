//! `burrow-bench`: parse flags, run the tests, print the report.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use burrow::bench::{self, BenchArgs, Output};

fn main() -> anyhow::Result<ExitCode> {
    let args = BenchArgs::parse();
    let (config, output) = args.resolve().context("invalid arguments")?;
    let results = bench::run(&config)
        .with_context(|| format!("benchmark against {}:{} failed", config.host, config.port))?;
    let text = match output {
        Output::Human => bench::human(&results),
        Output::Csv => bench::csv(&results),
        Output::Json => bench::json(&results),
    };
    std::io::stdout().lock().write_all(text.as_bytes()).context("cannot write the report")?;
    let errors: u64 = results.iter().map(|r| r.errors).sum();
    if args.fail_on_error && errors > 0 {
        eprintln!("burrow-bench: {errors} request(s) got a wrong or error reply");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
