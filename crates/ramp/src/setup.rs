//! The commands that help a person start: `ramp init` (a commented starter plan),
//! `ramp completions SHELL` (shell completion scripts) and `ramp man` (the manual page).
//!
//! Completions and the manual page are generated from the same clap definition the parser
//! uses, so they cannot drift from the commands they describe.

use crate::Invalid;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

/// The starter plan: every section commented, valid and simulated as written (a test runs
/// `ramp validate` and `ramp simulate` on it).
pub const STARTER_PLAN: &str = include_str!("init-plan.toml");

/// `ramp init` options.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Write the plan to this file instead of standard output; an existing file is kept
    /// unless --force is given.
    pub file: Option<PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long, requires = "file")]
    pub force: bool,
}

/// The shells `ramp completions` writes for.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Shell {
    /// Bash: source the output, or save it as
    /// ~/.local/share/bash-completion/completions/ramp.
    Bash,
    /// Zsh: save the output as `_ramp` in a directory on $fpath.
    Zsh,
    /// Fish: save the output as ~/.config/fish/completions/ramp.fish.
    Fish,
}

/// Writes the starter plan to standard output or to `args.file`.
pub fn init(args: &InitArgs) -> anyhow::Result<()> {
    let Some(path) = &args.file else {
        let mut out = std::io::stdout().lock();
        out.write_all(STARTER_PLAN.as_bytes())?;
        out.flush()?;
        return Ok(());
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Invalid(format!(
                "ramp init: {} already exists; choose another name or add --force to replace it",
                path.display()
            ))
        } else {
            Invalid(format!("ramp init: cannot write {}: {e}", path.display()))
        }
    })?;
    file.write_all(STARTER_PLAN.as_bytes())
        .map_err(|e| Invalid(format!("ramp init: cannot write {}: {e}", path.display())))?;
    eprintln!(
        "wrote {p}; next: ramp validate {p} && ramp simulate {p}",
        p = path.display()
    );
    Ok(())
}

/// Writes the completion script of `shell` for `cmd` to standard output.
pub fn completions(shell: Shell, cmd: &mut clap::Command) {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, cmd, "ramp", &mut std::io::stdout());
}

/// `ramp man` options.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write ramp.1 and one page per subcommand (ramp-simulate.1, …) into this directory
    /// instead of printing ramp.1 to standard output.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Writes the manual pages (roff) of `cmd`: `ramp man | man -l -`, or `ramp man --dir
/// ~/.local/share/man/man1` for `man ramp` and `man ramp-simulate`.
pub fn man(args: &ManArgs, cmd: clap::Command) -> anyhow::Result<()> {
    let cmd = cmd.name("ramp");
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Invalid(format!("ramp man: cannot create {}: {e}", dir.display())))?;
            clap_mangen::generate_to(cmd, dir).map_err(|e| {
                Invalid(format!(
                    "ramp man: cannot write into {}: {e}",
                    dir.display()
                ))
            })?;
            eprintln!("wrote the manual pages into {}", dir.display());
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            let mut so = std::io::stdout().lock();
            so.write_all(&out)?;
            so.flush()?;
        }
    }
    Ok(())
}
