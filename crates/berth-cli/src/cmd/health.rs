//! `run`/`create`'s healthcheck flags → `Config.Healthcheck` (the docker CLI's rules: any
//! `--health-*` flag sends a config, fields left out are 0 = the image's or the default;
//! `--no-healthcheck` sends `["NONE"]` and conflicts with the others).

use berth_api::container::HealthConfig;

use crate::app::RunArgs;
use crate::Failure;

fn usage(msg: impl Into<String>) -> Failure {
    Failure::new(
        125,
        format!("berth: {}\nSee 'berth run --help'.", msg.into()),
    )
}

/// A Go duration flag (`1s`, `500ms`, `1m30s`, `0`) in nanoseconds; may be negative.
fn duration_flag(flag: &str, v: Option<&str>) -> Result<i64, Failure> {
    let Some(v) = v else {
        return Ok(0);
    };
    let (neg, body) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let ns = if body == "0" {
        Some(0)
    } else {
        crate::units::parse_go_duration(body).and_then(|d| d.num_nanoseconds())
    };
    let ns = ns.ok_or_else(|| {
        usage(format!(
            "invalid argument \"{v}\" for \"--{flag}\" flag: time: invalid duration \"{v}\""
        ))
    })?;
    Ok(if neg { -ns } else { ns })
}

/// The healthcheck the flags ask for; `None` when no flag is given (the image's applies).
pub fn health_config(a: &RunArgs) -> Result<Option<HealthConfig>, Failure> {
    let interval = duration_flag("health-interval", a.health_interval.as_deref())?;
    let timeout = duration_flag("health-timeout", a.health_timeout.as_deref())?;
    let start_period = duration_flag("health-start-period", a.health_start_period.as_deref())?;
    let start_interval =
        duration_flag("health-start-interval", a.health_start_interval.as_deref())?;
    let retries = a.health_retries.unwrap_or(0);
    let cmd = a.health_cmd.as_deref().unwrap_or("");
    let any = !cmd.is_empty()
        || interval != 0
        || timeout != 0
        || start_period != 0
        || start_interval != 0
        || retries != 0;
    if a.no_healthcheck {
        if any {
            return Err(usage("--no-healthcheck conflicts with --health-* options"));
        }
        return Ok(Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }));
    }
    if !any {
        return Ok(None);
    }
    for (flag, v) in [
        ("interval", interval),
        ("timeout", timeout),
        ("retries", retries),
        ("start-period", start_period),
        ("start-interval", start_interval),
    ] {
        if v < 0 {
            return Err(usage(format!("--health-{flag} cannot be negative")));
        }
    }
    Ok(Some(HealthConfig {
        test: (!cmd.is_empty()).then(|| vec!["CMD-SHELL".to_string(), cmd.to_string()]),
        interval,
        timeout,
        retries,
        start_period,
        start_interval,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(flags: &[&str]) -> RunArgs {
        #[derive(Parser)]
        #[command(disable_help_flag = true)]
        struct P {
            #[command(flatten)]
            run: RunArgs,
        }
        let mut v = vec!["run"];
        v.extend_from_slice(flags);
        v.push("img");
        P::try_parse_from(v).unwrap().run
    }

    #[test]
    fn flags_make_dockers_config() {
        assert_eq!(health_config(&args(&[])).unwrap(), None);
        let h = health_config(&args(&[
            "--health-cmd",
            "curl -f localhost",
            "--health-interval",
            "1s",
            "--health-timeout",
            "500ms",
            "--health-retries",
            "2",
            "--health-start-period",
            "1m30s",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            h.test.unwrap(),
            vec!["CMD-SHELL".to_string(), "curl -f localhost".to_string()]
        );
        assert_eq!(h.interval, 1_000_000_000);
        assert_eq!(h.timeout, 500_000_000);
        assert_eq!(h.retries, 2);
        assert_eq!(h.start_period, 90_000_000_000);
        assert_eq!(h.start_interval, 0);
        // An interval alone keeps the image's test (sent as no test).
        let h = health_config(&args(&["--health-interval", "2s"]))
            .unwrap()
            .unwrap();
        assert_eq!((h.test, h.interval), (None, 2_000_000_000));
        let h = health_config(&args(&["--no-healthcheck"]))
            .unwrap()
            .unwrap();
        assert_eq!(h.test.unwrap(), vec!["NONE".to_string()]);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let e = health_config(&args(&["--no-healthcheck", "--health-cmd", "true"])).unwrap_err();
        assert_eq!(e.code, 125);
        assert!(
            e.message
                .contains("--no-healthcheck conflicts with --health-* options"),
            "{}",
            e.message
        );
        let e = health_config(&args(&["--health-interval", "-1s"])).unwrap_err();
        assert!(e.message.contains("--health-interval cannot be negative"));
        let e = health_config(&args(&["--health-retries", "-2"])).unwrap_err();
        assert!(e.message.contains("--health-retries cannot be negative"));
        let e = health_config(&args(&["--health-timeout", "soon"])).unwrap_err();
        assert!(
            e.message
                .contains("invalid argument \"soon\" for \"--health-timeout\" flag"),
            "{}",
            e.message
        );
    }
}
