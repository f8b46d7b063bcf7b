//! One module per subcommand; `dispatch` maps the parsed command line to it
//! and returns the process exit code.

mod extract;
mod list_plugins;
mod list_scenarios;
pub mod plugin;
mod plugin_check;
mod plugin_new;

use crate::cli::{Cli, Command};
use crate::plugins::Discovery;

pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::ListPlugins(args) => {
            list_plugins::run(&Discovery::from_env(&cli.plugin_dirs), &args)
        }
        Command::ListScenarios(args) => list_scenarios::run(&args),
        Command::Plugin(cmd) => plugin::run(&cmd, &Discovery::from_env(&cli.plugin_dirs)),
        Command::Extract(args) => extract::run(&Discovery::from_env(&cli.plugin_dirs), &args),
        Command::Kernel(cmd) => crate::kernel::run(cmd),
        Command::Disk(cmd) => crate::disk::command(cmd),
        Command::Bench(args) => crate::bench::execute(&args),
        Command::Gauntlet(args) => crate::gauntlet::execute(&args),
        Command::Compare(args) => crate::compare::execute(&args),
        Command::Nested(args) => {
            crate::nested::execute(&args, &Discovery::from_env(&cli.plugin_dirs))
        }
        Command::Shell(args) => {
            crate::shell::execute(&args, &Discovery::from_env(&cli.plugin_dirs))
        }
        Command::Run(args) => crate::run::execute(&args, &Discovery::from_env(&cli.plugin_dirs)),
        Command::OnTerminal { port, program, args } => {
            let port = std::fs::OpenOptions::new().read(true).write(true).open(&port)?;
            ktstr_core::guest::run_on_terminal(port, &program, &args)
        }
    }
}
