//! `ktstr`: boots a sched_ext test kernel in a fresh VM with an exact CPU
//! topology, runs a scheduler and a workload, and prints a verdict.

mod bench;
mod cli;
mod commands;
mod compare;
mod disk;
mod exit;
mod gauntlet;
mod initramfs;
mod interrupt;
mod json_file;
mod kernel;
mod machine;
mod nested;
mod output;
mod plugins;
mod run;
mod shell;
mod stamp;
mod stats;
mod terminal;
mod usage;
mod vm;

use clap::Parser;

fn main() {
    // A contained plugin call (see ktstr_core::plugin::call): no CLI, no logs.
    if std::env::args_os().nth(1).is_some_and(|a| a == ktstr_core::plugin::call::CALL_ARG) {
        std::process::exit(ktstr_core::plugin::call::serve());
    }
    output::end_quietly_on_broken_stdout();
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            usage::exit_code_for(&err)
        }
    };
    // Whatever happened, the user's terminal is not left raw.
    terminal::restore();
    std::process::exit(code);
}

/// `-v` raises the level; `RUST_LOG` wins when set.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
