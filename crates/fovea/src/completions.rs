//! `fovea completions SHELL`: the command tree clap derives, plus the commands `main` parses
//! before clap sees them (`generate`, `evaluate-generator`, `serve`, `train yolo|unet|vae|…`),
//! so that the scripts complete every command.

use clap::{Command, CommandFactory};

/// The whole command tree, with the commands parsed apart from clap's added.
pub fn command() -> Command {
    let (top, generative) = crate::generative_cmd::completion_commands();
    let mut train_kinds = vec![
        <crate::detection_cmd::TrainYoloArgs as CommandFactory>::command().name("yolo"),
        <crate::segmentation_cmd::TrainUnetArgs as CommandFactory>::command().name("unet"),
    ];
    train_kinds.extend(generative);
    crate::Cli::command()
        .subcommands(top)
        .subcommand(crate::serve_cmd::completion_command())
        .mut_subcommand("train", |train| train.subcommands(train_kinds))
}

/// Writes the completion script for `shell` to stdout.
pub fn print(shell: clap_complete::Shell) {
    clap_complete::generate(shell, &mut command(), "fovea", &mut std::io::stdout());
}
