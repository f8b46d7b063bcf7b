//! `ktstr list-scenarios`: the canned scenarios shipped in the binary.

use ktstr_core::scenario::library;
use serde_json::json;

use crate::cli::ListScenariosArgs;

pub fn run(args: &ListScenariosArgs) -> anyhow::Result<i32> {
    let lib = library();
    if let Some(name) = &args.show {
        let Some((_, _, text)) = lib.iter().find(|(n, _, _)| n == name) else {
            let names: Vec<&str> = lib.iter().map(|(n, _, _)| *n).collect();
            return Err(crate::usage::UsageError(format!(
                "no canned scenario `{name}`; there are: {}",
                names.join(", ")
            ))
            .into());
        };
        print!("{text}");
        return Ok(crate::exit::PASS);
    }
    if args.json {
        let list: Vec<_> = lib
            .iter()
            .map(|(name, description, toml)| {
                json!({ "name": name, "description": description, "toml": toml })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(crate::exit::PASS);
    }
    let width = lib.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
    for (name, description, _) in &lib {
        println!("{name:<width$}  {description}");
    }
    println!(
        "\nRun one with `ktstr run --scenario NAME`; `--show NAME` prints its TOML (a \
        starting point for your own file)."
    );
    Ok(crate::exit::PASS)
}
