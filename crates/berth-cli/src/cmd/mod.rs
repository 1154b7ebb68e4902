//! One module per group of verbs.

pub mod attach;
pub mod containers;
pub mod cp;
pub mod exec;
pub mod explain;
pub mod export;
pub mod health;
pub mod history;
pub mod images;
pub mod inspect;
pub mod login;
pub mod logs;
pub mod network;
pub mod progress;
pub mod ps;
pub mod run;
pub mod stats;
pub mod system;
pub mod volume;

use berth_client::Client;

use crate::app::{Command, ContainerCommand, ImageCommand, SystemCommand};
use crate::CmdResult;

pub async fn dispatch(c: Client, cmd: Command) -> CmdResult {
    match cmd {
        Command::Run(a) => run::run(&c, a).await,
        Command::Create(a) => run::create(&c, a).await,
        Command::Start(a) => containers::start(&c, a).await,
        Command::Stop(a) => containers::stop(&c, a).await,
        Command::Kill(a) => containers::kill(&c, a).await,
        Command::Restart(a) => containers::restart(&c, a).await,
        Command::Rm(a) => containers::rm(&c, a).await,
        Command::Ps(a) => ps::ps(&c, a).await,
        Command::Logs(a) => logs::logs(&c, a).await,
        Command::Attach(a) => attach::attach(&c, a).await,
        Command::Exec(a) => exec::exec(&c, a).await,
        Command::Inspect(a) => inspect::inspect(&c, a).await,
        Command::Explain(a) => explain::explain(&c, a).await,
        Command::Stats(a) => stats::stats(&c, a).await,
        Command::Top(a) => containers::top(&c, a).await,
        Command::Wait(a) => containers::wait(&c, a).await,
        Command::Port(a) => containers::port(&c, a).await,
        Command::Rename(a) => containers::rename(&c, a).await,
        Command::Pause(a) => containers::simple(&c, a, "pause").await,
        Command::Unpause(a) => containers::simple(&c, a, "unpause").await,
        Command::Pull(a) => images::pull(&c, a).await,
        Command::Push(a) => images::push(&c, a).await,
        Command::Images(a) => images::images(&c, a).await,
        Command::Rmi(a) => images::rmi(&c, a).await,
        Command::Tag(a) => images::tag(&c, a).await,
        Command::Load(a) => images::load(&c, a).await,
        Command::Save(a) => images::save(&c, a).await,
        Command::Import(a) => images::import(&c, a).await,
        Command::Cp(a) => cp::cp(&c, a).await,
        Command::Export(a) => export::export(&c, a).await,
        Command::Diff(a) => export::diff(&c, a).await,
        Command::History(a) => history::history(&c, a).await,
        Command::Login(a) => login::login(&c, a).await,
        Command::Logout(a) => login::logout(a).await,
        Command::Version(a) => system::version(&c, a).await,
        Command::Info(a) => system::info(&c, a).await,
        Command::Events(a) => system::events(&c, a).await,
        Command::Volume(v) => volume::dispatch(&c, v).await,
        Command::Network(n) => network::dispatch(&c, n).await,
        Command::System(SystemCommand::Df(a)) => system::df(&c, a).await,
        Command::System(SystemCommand::Info(a)) => system::info(&c, a).await,
        Command::System(SystemCommand::Events(a)) => system::events(&c, a).await,
        Command::Container(cc) => match cc {
            ContainerCommand::Ls(a) => ps::ps(&c, a).await,
            ContainerCommand::Run(a) => run::run(&c, a).await,
            ContainerCommand::Create(a) => run::create(&c, a).await,
            ContainerCommand::Start(a) => containers::start(&c, a).await,
            ContainerCommand::Stop(a) => containers::stop(&c, a).await,
            ContainerCommand::Kill(a) => containers::kill(&c, a).await,
            ContainerCommand::Restart(a) => containers::restart(&c, a).await,
            ContainerCommand::Rm(a) => containers::rm(&c, a).await,
            ContainerCommand::Logs(a) => logs::logs(&c, a).await,
            ContainerCommand::Attach(a) => attach::attach(&c, a).await,
            ContainerCommand::Exec(a) => exec::exec(&c, a).await,
            ContainerCommand::Inspect(mut a) => {
                a.kind = Some("container".into());
                inspect::inspect(&c, a).await
            }
            ContainerCommand::Stats(a) => stats::stats(&c, a).await,
            ContainerCommand::Top(a) => containers::top(&c, a).await,
            ContainerCommand::Wait(a) => containers::wait(&c, a).await,
            ContainerCommand::Port(a) => containers::port(&c, a).await,
            ContainerCommand::Rename(a) => containers::rename(&c, a).await,
            ContainerCommand::Pause(a) => containers::simple(&c, a, "pause").await,
            ContainerCommand::Unpause(a) => containers::simple(&c, a, "unpause").await,
            ContainerCommand::Prune(a) => containers::prune(&c, a).await,
            ContainerCommand::Cp(a) => cp::cp(&c, a).await,
            ContainerCommand::Export(a) => export::export(&c, a).await,
            ContainerCommand::Diff(a) => export::diff(&c, a).await,
        },
        Command::Image(ic) => match ic {
            ImageCommand::Ls(a) => images::images(&c, a).await,
            ImageCommand::Pull(a) => images::pull(&c, a).await,
            ImageCommand::Push(a) => images::push(&c, a).await,
            ImageCommand::Rm(a) => images::rmi(&c, a).await,
            ImageCommand::Tag(a) => images::tag(&c, a).await,
            ImageCommand::Load(a) => images::load(&c, a).await,
            ImageCommand::Save(a) => images::save(&c, a).await,
            ImageCommand::Import(a) => images::import(&c, a).await,
            ImageCommand::History(a) => history::history(&c, a).await,
            ImageCommand::Inspect(mut a) => {
                a.kind = Some("image".into());
                inspect::inspect(&c, a).await
            }
        },
    }
}

/// `key=value` filter flags → the API's filters JSON.
pub fn filters_json(flags: &[String]) -> Result<Option<String>, crate::Failure> {
    if flags.is_empty() {
        return Ok(None);
    }
    let mut f = berth_api::filters::Filters::default();
    for fl in flags {
        let (k, v) = fl.split_once('=').ok_or_else(|| {
            crate::Failure::new(125, format!("invalid filter '{fl}': use key=value"))
        })?;
        f.add(k.trim(), v.trim());
    }
    Ok(Some(f.to_json()))
}

/// Renders `--format` (Go template; `json` = one JSON object per line). A template that
/// does not parse fails like docker's inspect-like commands: `template parsing error: …`,
/// exit 64 (list commands use `crate::listfmt`).
pub fn format_value(fmt: &str, v: &serde_json::Value) -> Result<String, crate::Failure> {
    if fmt == "json" || fmt == "{{json .}}" {
        return Ok(serde_json::to_string(v).unwrap_or_default());
    }
    let t = crate::template::Template::parse(fmt)
        .map_err(|e| crate::Failure::new(64, format!("template parsing error: {e}")))?;
    t.render(v)
        .map_err(|e| crate::Failure::new(1, e.to_string()))
}
