//! `burrow-bench`: parse flags, run the tests, print the report.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use burrow_bench::{self as bench, BenchArgs, Output};

fn main() -> ExitCode {
    match run(BenchArgs::parse()) {
        Ok(code) => code,
        Err(e) => {
            // One line: the context and each cause once (`{:#}`).
            eprintln!("burrow-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let (config, output) = args.resolve().context("invalid arguments")?;
    let precision = usize::from(args.precision);
    loop {
        // The human and -q reports go out test by test, like
        // redis-benchmark's; CSV and JSON are one document each, printed at
        // the end of a round.
        let mut write_error = None;
        let results = bench::run_with(&config, |r| {
            let text = match output {
                Output::Human => bench::human_with(std::slice::from_ref(r), precision),
                Output::Quiet => bench::quiet(std::slice::from_ref(r), precision),
                Output::Csv | Output::Json => return,
            };
            if write_error.is_none() {
                let mut out = std::io::stdout().lock();
                write_error = out.write_all(text.as_bytes()).and_then(|()| out.flush()).err();
            }
        })
        .with_context(|| format!("benchmark against {}:{} failed", config.host, config.port))?;
        if let Some(e) = write_error {
            return Err(e).context("cannot write the report");
        }
        let text = match output {
            Output::Human | Output::Quiet => String::new(),
            Output::Csv => bench::csv(&results),
            Output::Json => bench::json(&results),
        };
        std::io::stdout().lock().write_all(text.as_bytes()).context("cannot write the report")?;
        let errors: u64 = results.iter().map(|r| r.errors).sum();
        if args.fail_on_error && errors > 0 {
            eprintln!("burrow-bench: {errors} request(s) got a wrong or error reply");
            return Ok(ExitCode::FAILURE);
        }
        if !args.forever {
            return Ok(ExitCode::SUCCESS);
        }
    }
}
