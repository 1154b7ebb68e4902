//! A subset of Go's `text/template` over JSON values, for `--format`/`-f`:
//! `{{.State.Pid}}`, `{{json .Config}}`, `{{index .Config.Labels "a"}}`,
//! `{{(index .NetworkSettings.Networks "bridge").IPAddress}}` (a parenthesised pipeline and
//! field access on its result), `{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}`,
//! `{{if eq .State.Status "running"}}up{{else if .State.Paused}}paused{{else}}down{{end}}`,
//! `{{.Name | upper}}`, `{{join .Args ","}}`, `{{len .Mounts}}`, `{{println .Id}}`.
//!
//! Functions: Go's builtins (`and or not eq ne lt le gt ge len index slice print printf
//! println`) and Docker's (`json split join title lower upper pad truncate`). An unknown
//! function is a parse error, as in Go. Values print like Go's `%v`: maps as `map[k:v]`,
//! lists as `[a b]`, integers whole, a missing field as `<no value>`.
//!
//! Errors read like Go's (`template: :1: function "nosuch" not defined`); the CLI prefixes
//! them the way each docker command does (see `cmd::format_value`).

mod error;
mod funcs;
mod parse;

use serde_json::Value;

pub use error::TemplateError;
pub use funcs::go_print;
use funcs::truthy;
use parse::{Arg, Node, Pipe};

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

fn field(v: &Value, path: &[String]) -> Value {
    let mut cur = v;
    for p in path {
        let next = match cur {
            Value::Object(o) => o.get(p).or_else(|| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(p))
                    .map(|(_, v)| v)
            }),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return Value::Null,
        }
    }
    cur.clone()
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let toks = parse::lex(src)?;
        let mut it = toks.into_iter().peekable();
        let (nodes, _) = parse::parse_nodes(&mut it, None)?;
        Ok(Template { nodes })
    }

    /// Executes against `data`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut vars = vec![("$".to_string(), data.clone())];
        exec(&self.nodes, data, &mut vars, &mut out)?;
        Ok(out)
    }
}

type Vars = Vec<(String, Value)>;

fn exec(
    nodes: &[Node],
    dot: &Value,
    vars: &mut Vars,
    out: &mut String,
) -> Result<(), TemplateError> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipe(p, dot, vars)?;
                if p.decl.is_empty() {
                    out.push_str(&match &v {
                        Value::Null => "<no value>".to_string(),
                        other => go_print(other),
                    });
                }
            }
            Node::If(p, b, e) => {
                let mark = vars.len();
                let v = eval_pipe(p, dot, vars)?;
                exec(if truthy(&v) { b } else { e }, dot, vars, out)?;
                vars.truncate(mark);
            }
            Node::With(p, b, e) => {
                let mark = vars.len();
                let v = eval_pipe(p, dot, vars)?;
                if truthy(&v) {
                    exec(b, &v, vars, out)?;
                } else {
                    exec(e, dot, vars, out)?;
                }
                vars.truncate(mark);
            }
            Node::Range(p, b, e) => range(p, b, e, dot, vars, out)?,
        }
    }
    Ok(())
}

fn range(
    p: &Pipe,
    body: &[Node],
    else_body: &[Node],
    dot: &Value,
    vars: &mut Vars,
    out: &mut String,
) -> Result<(), TemplateError> {
    let mark = vars.len();
    let plain = Pipe {
        decl: Vec::new(),
        assign: false,
        cmds: p.cmds.clone(),
    };
    let v = eval_pipe(&plain, dot, vars)?;
    let items: Vec<(Value, Value)> = match v {
        Value::Array(a) => a
            .into_iter()
            .enumerate()
            .map(|(i, x)| (Value::from(i), x))
            .collect(),
        // Go ranges over a map in sorted key order (serde_json's map is sorted).
        Value::Object(o) => {
            let mut kv: Vec<(Value, Value)> =
                o.into_iter().map(|(k, x)| (Value::String(k), x)).collect();
            kv.sort_by_key(|a| go_print(&a.0));
            kv
        }
        Value::Number(n) if n.as_u64().is_some() => (0..n.as_u64().unwrap_or(0))
            .map(|i| (Value::from(i), Value::from(i)))
            .collect(),
        Value::Null => vec![],
        other => {
            return Err(TemplateError(format!(
                "range can't iterate over {}",
                go_print(&other)
            )))
        }
    };
    if items.is_empty() {
        exec(else_body, dot, vars, out)?;
    }
    for (k, x) in &items {
        vars.truncate(mark);
        match p.decl.as_slice() {
            [v] => vars.push((v.clone(), x.clone())),
            [kv, v] => {
                vars.push((kv.clone(), k.clone()));
                vars.push((v.clone(), x.clone()));
            }
            _ => {}
        }
        exec(body, x, vars, out)?;
    }
    vars.truncate(mark);
    Ok(())
}

/// The list commands' `.Label "key"` method (docker's `ps`, `images`, `volume ls`, `network
/// ls` contexts): the row's `Labels`, a map or docker's joined `k=v,k2=v2` text; "" when
/// the label is not set.
fn label(row: &Value, key: &str) -> Value {
    let found = match field(row, &["Labels".to_string()]) {
        Value::Object(o) => o.get(key).map(go_print),
        Value::String(s) => s
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string()),
        _ => None,
    };
    Value::String(found.unwrap_or_default())
}

fn lookup(vars: &Vars, name: &str) -> Result<Value, TemplateError> {
    vars.iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| TemplateError(format!("undefined variable: {name}")))
}

fn eval_arg(a: &Arg, dot: &Value, vars: &mut Vars) -> Result<Value, TemplateError> {
    Ok(match a {
        Arg::Field(p) => field(dot, p),
        Arg::Var(name, p) => field(&lookup(vars, name)?, p),
        Arg::Str(s) => Value::String(s.clone()),
        Arg::Num(n) => funcs::number(*n),
        Arg::Bool(b) => Value::Bool(*b),
        Arg::Nil => Value::Null,
        Arg::Ident(f) => funcs::call(f, Vec::new())?,
        Arg::Sub(p, chain) => field(&eval_pipe(p, dot, vars)?, chain),
    })
}

fn eval_pipe(p: &Pipe, dot: &Value, vars: &mut Vars) -> Result<Value, TemplateError> {
    let mut prev: Option<Value> = None;
    for cmd in &p.cmds {
        let v = match &cmd[0] {
            Arg::Ident(f) if f == "and" || f == "or" => {
                // Short-circuit: the first falsy (and) / truthy (or) argument, else the last.
                let want = f == "or";
                let mut last = Value::Null;
                let mut args: Vec<&Arg> = cmd[1..].iter().collect();
                let piped = prev.take();
                if args.is_empty() && piped.is_none() {
                    return Err(TemplateError(format!("wrong number of args for {f}")));
                }
                let mut done = false;
                for a in args.drain(..) {
                    last = eval_arg(a, dot, vars)?;
                    if truthy(&last) == want {
                        done = true;
                        break;
                    }
                }
                if let (false, Some(pv)) = (done, piped) {
                    last = pv;
                }
                last
            }
            Arg::Ident(f) => {
                let mut args = Vec::new();
                for a in &cmd[1..] {
                    args.push(eval_arg(a, dot, vars)?);
                }
                if let Some(pv) = prev.take() {
                    args.push(pv);
                }
                funcs::call(f, args)?
            }
            single if cmd.len() == 1 && prev.is_none() => eval_arg(single, dot, vars)?,
            Arg::Field(path) if path.last().is_some_and(|m| m == "Label") && cmd.len() == 2 => {
                let receiver = field(dot, &path[..path.len() - 1]);
                let key = eval_arg(&cmd[1], dot, vars)?;
                label(&receiver, &go_print(&key))
            }
            _ => {
                return Err(TemplateError(
                    "can't give an argument to a non-function".into(),
                ))
            }
        };
        prev = Some(v);
    }
    let v = prev.unwrap_or(Value::Null);
    match (p.decl.as_slice(), p.assign) {
        ([name], true) => {
            let slot = vars
                .iter_mut()
                .rev()
                .find(|(n, _)| n == name)
                .ok_or_else(|| TemplateError(format!("undefined variable: {name}")))?;
            slot.1 = v.clone();
        }
        ([name], false) => vars.push((name.clone(), v.clone())),
        _ => {}
    }
    Ok(v)
}

#[cfg(test)]
mod tests;
