//! `ktstr plugin check|new`: tools for plugin authors. The clap definitions
//! live here (not in cli.rs) because they belong to this command group only.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::plugins::Discovery;

#[derive(Subcommand, Debug)]
pub enum PluginCmd {
    /// Load a plugin library the way ktstr and the guest do and report
    /// everything wrong with it, each problem with what to do.
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Write a new out-of-tree plugin crate that builds and passes `plugin check`.
    #[command(after_help = NEW_HELP)]
    New(NewArgs),
}

const CHECK_HELP: &str = "\
WHAT IS CHECKED (in a child process: a plugin that crashes or hangs cannot
take ktstr down, exactly as during discovery and in the guest):
    - the library opens, speaks this ktstr's ABI major and exports plugins
    - each manifest: name, version, description, no kind+name twice
    - payloads: default checks exist and parse; the binary is found (its env
      override, PATH, then beside the plugin library); its extractor is in
      this library or on the plugin search path; extra files exist; the
      library and binary can be packed into the guest (shared libraries
      resolvable on this host)
    - schedulers: launch(NAME) answers; its binary is looked up (a note only:
      `ktstr kernel build` may provide it later)
    - with --sample FILE: the extractor (this library's, or the payload's)
      runs on FILE and its metrics are printed; no metrics, duplicate names
      or a default check naming a metric the sample lacks are problems

EXIT STATUS: 0 when nothing is wrong, 1 when a problem was found, 2 when PATH
or FILE cannot be read.

EXAMPLES:
    ktstr plugin check target/release/libmy_bench.so
    ktstr plugin check target/release/libmy_bench.so --sample out.txt
    ktstr plugin check --plugin-dir target/release target/release/libmy_bench.so --json";

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The plugin library (a `.so`, e.g. target/release/libNAME.so).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// A captured output of the payload: run the extractor on it and print
    /// the metrics.
    #[arg(long, value_name = "FILE")]
    pub sample: Option<PathBuf>,
    /// Print the report as JSON (plugins, problems, notes, sample metrics).
    #[arg(long)]
    pub json: bool,
}

const NEW_HELP: &str = "\
KINDS:
    payload    a workload that ships its own program: a [[bin]] that works for a
               while and prints `key: value unit` lines, and in the same library
               the payload plugin (its binary is found beside the library) and
               the extractor of those lines
    extractor  an extractor of `key: value unit` lines, with unit tests
    scheduler  a launcher that starts scx_simple in FIFO mode (-f) as NAME

The crate depends on `ktstr-plugin-api = \"1.0\"`. A [patch.crates-io] entry
points it at --api-path, else at this ktstr's checkout (when it has one), so
it builds without the crate being on the registry.

EXAMPLES:
    ktstr plugin new my-bench --kind payload
    cd my-bench && cargo build --release
    ktstr plugin check target/release/libmy_bench.so
    ktstr run --plugin-dir target/release --plugin my-bench
    ktstr plugin new my-sched --kind scheduler --dir ~/src/my-sched
    ktstr plugin new my-parser --kind extractor --api-path ~/ktstr/plugin-api

See docs/writing-plugins.md for the guide.";

#[derive(Args, Debug)]
pub struct NewArgs {
    /// The plugin's name (and the crate's): letters, digits, `-` and `_`,
    /// starting with a letter.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// What the plugin is.
    #[arg(long, value_enum)]
    pub kind: NewKind,
    /// Where to write the crate (default: ./NAME); must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A ktstr-plugin-api checkout to build against ([patch.crates-io]).
    #[arg(long, value_name = "PATH")]
    pub api_path: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewKind {
    Payload,
    Extractor,
    Scheduler,
}

pub fn run(cmd: &PluginCmd, discovery: &Discovery) -> anyhow::Result<i32> {
    match cmd {
        PluginCmd::Check(args) => super::plugin_check::run(args, discovery),
        PluginCmd::New(args) => super::plugin_new::run(args),
    }
}
