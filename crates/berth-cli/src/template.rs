//! A subset of Go's `text/template` over JSON values, for `--format`/`-f`:
//! `{{.State.Pid}}`, `{{json .Config}}`, `{{index .Config.Labels "a"}}`,
//! `{{range .Mounts}}{{.Source}} {{end}}`, `{{if .State.Running}}up{{else}}down{{end}}`,
//! `{{.Name | upper}}`, `{{join .Args ","}}`, `{{len .Mounts}}`, `{{println .Id}}`.
//! Values print like Go's `%v`: maps as `map[k:v]`, lists as `[a b]`, integers whole.

use serde_json::Value;

/// A template error, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Pipe(Vec<Cmd>),
    Range(Vec<Cmd>, Vec<Node>, Vec<Node>),
    If(Vec<Cmd>, Vec<Node>, Vec<Node>),
    With(Vec<Cmd>, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Field(Vec<String>),
    Root(Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Ident(String),
}

type Cmd = Vec<Arg>;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

enum Tok {
    Text(String),
    Action(String),
}

fn lex(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError("unclosed action: missing }}".into()))?;
        let mut inner = &after[..end];
        if let Some(i) = inner.strip_prefix('-') {
            text = text.trim_end().to_string();
            inner = i;
        }
        let mut trim_next = false;
        if let Some(i) = inner.strip_suffix('-') {
            inner = i;
            trim_next = true;
        }
        if !text.is_empty() {
            out.push(Tok::Text(text));
        }
        out.push(Tok::Action(inner.trim().to_string()));
        rest = &after[end + 2..];
        if trim_next {
            rest = rest.trim_start();
        }
    }
    if !rest.is_empty() {
        out.push(Tok::Text(rest.to_string()));
    }
    Ok(out)
}

fn split_words(s: &str) -> Result<Vec<String>, TemplateError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '`' => {
                let mut lit = String::from('"');
                let mut closed = false;
                while let Some(d) = chars.next() {
                    if d == c {
                        closed = true;
                        break;
                    }
                    if d == '\\' && c == '"' {
                        match chars.next() {
                            Some('n') => lit.push('\n'),
                            Some('t') => lit.push('\t'),
                            Some(o) => lit.push(o),
                            None => {}
                        }
                        continue;
                    }
                    lit.push(d);
                }
                if !closed {
                    return Err(TemplateError(format!("unterminated string in {s:?}")));
                }
                words.push(lit);
            }
            '|' => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                words.push("|".into());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

fn parse_arg(w: &str) -> Arg {
    if let Some(lit) = w.strip_prefix('"') {
        return Arg::Str(lit.to_string());
    }
    let path = |p: &str| {
        p.split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    if let Some(p) = w.strip_prefix('$') {
        return Arg::Root(path(p));
    }
    if w.starts_with('.') {
        return Arg::Field(path(w));
    }
    match w {
        "true" => return Arg::Bool(true),
        "false" => return Arg::Bool(false),
        _ => {}
    }
    if let Ok(n) = w.parse::<f64>() {
        return Arg::Num(n);
    }
    Arg::Ident(w.to_string())
}

fn parse_pipe(s: &str) -> Result<Vec<Cmd>, TemplateError> {
    let words = split_words(s)?;
    let mut cmds = vec![Vec::new()];
    for w in words {
        if w == "|" {
            cmds.push(Vec::new());
        } else if let Some(last) = cmds.last_mut() {
            last.push(parse_arg(&w));
        }
    }
    if cmds.iter().any(Vec::is_empty) {
        return Err(TemplateError(format!("missing value in pipeline {s:?}")));
    }
    Ok(cmds)
}

/// Parses until `end` (returns body, else-body), or to the end of input at top level.
fn parse_nodes(
    toks: &mut std::iter::Peekable<std::vec::IntoIter<Tok>>,
    nested: bool,
) -> Result<(Vec<Node>, Vec<Node>), TemplateError> {
    let mut body = Vec::new();
    let mut else_body = Vec::new();
    let mut in_else = false;
    while let Some(t) = toks.next() {
        let target = if in_else { &mut else_body } else { &mut body };
        match t {
            Tok::Text(s) => target.push(Node::Text(s)),
            Tok::Action(a) => {
                let (kw, rest) = a
                    .split_once(char::is_whitespace)
                    .unwrap_or((a.as_str(), ""));
                match kw {
                    "end" if nested => return Ok((body, else_body)),
                    "else" if nested && rest.is_empty() => in_else = true,
                    "range" | "if" | "with" => {
                        let pipe = parse_pipe(rest)?;
                        let (b, e) = parse_nodes(toks, true)?;
                        target.push(match kw {
                            "range" => Node::Range(pipe, b, e),
                            "if" => Node::If(pipe, b, e),
                            _ => Node::With(pipe, b, e),
                        });
                    }
                    "end" | "else" => {
                        return Err(TemplateError(format!("unexpected {{{{{kw}}}}}")))
                    }
                    _ if a.starts_with("/*") => {}
                    _ => target.push(Node::Pipe(parse_pipe(&a)?)),
                }
            }
        }
    }
    if nested {
        return Err(TemplateError("unexpected EOF: missing {{end}}".into()));
    }
    Ok((body, else_body))
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Go's `%v` of a decoded JSON value.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    format!("{}", f as i64)
                } else {
                    f.to_string()
                }
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            let mut keys: Vec<_> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_print(&o[*k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
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
        let toks = lex(src)?;
        let mut it = toks.into_iter().peekable();
        let (nodes, _) = parse_nodes(&mut it, false)?;
        Ok(Template { nodes })
    }

    /// Executes against `data`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        exec(&self.nodes, data, data, &mut out)?;
        Ok(out)
    }
}

fn exec(nodes: &[Node], dot: &Value, root: &Value, out: &mut String) -> Result<(), TemplateError> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Pipe(p) => {
                let v = eval_pipe(p, dot, root)?;
                out.push_str(&match &v {
                    Value::Null => "<no value>".to_string(),
                    other => go_print(other),
                });
            }
            Node::If(p, b, e) => {
                let v = eval_pipe(p, dot, root)?;
                exec(if truthy(&v) { b } else { e }, dot, root, out)?;
            }
            Node::With(p, b, e) => {
                let v = eval_pipe(p, dot, root)?;
                if truthy(&v) {
                    exec(b, &v, root, out)?
                } else {
                    exec(e, dot, root, out)?
                }
            }
            Node::Range(p, b, e) => {
                let v = eval_pipe(p, dot, root)?;
                let items: Vec<Value> = match v {
                    Value::Array(a) => a,
                    Value::Object(o) => {
                        let mut keys: Vec<_> = o.keys().cloned().collect();
                        keys.sort();
                        keys.into_iter().map(|k| o[&k].clone()).collect()
                    }
                    Value::Null => vec![],
                    other => {
                        return Err(TemplateError(format!(
                            "range can't iterate over {}",
                            go_print(&other)
                        )))
                    }
                };
                if items.is_empty() {
                    exec(e, dot, root, out)?;
                }
                for it in &items {
                    exec(b, it, root, out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval_arg(a: &Arg, dot: &Value, root: &Value) -> Result<Value, TemplateError> {
    Ok(match a {
        Arg::Field(p) => field(dot, p),
        Arg::Root(p) => field(root, p),
        Arg::Str(s) => Value::String(s.clone()),
        Arg::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
        Arg::Bool(b) => Value::Bool(*b),
        Arg::Ident(f) => call(f, &[], dot, root)?,
    })
}

fn eval_pipe(p: &[Cmd], dot: &Value, root: &Value) -> Result<Value, TemplateError> {
    let mut prev: Option<Value> = None;
    for cmd in p {
        let v = match &cmd[0] {
            Arg::Ident(f) => {
                let mut args = Vec::new();
                for a in &cmd[1..] {
                    args.push(eval_arg(a, dot, root)?);
                }
                if let Some(pv) = prev.take() {
                    args.push(pv);
                }
                call(f, &args, dot, root)?
            }
            single if cmd.len() == 1 && prev.is_none() => eval_arg(single, dot, root)?,
            _ => {
                return Err(TemplateError(
                    "can't give an argument to a non-function".into(),
                ))
            }
        };
        prev = Some(v);
    }
    Ok(prev.unwrap_or(Value::Null))
}

fn call(f: &str, args: &[Value], _dot: &Value, _root: &Value) -> Result<Value, TemplateError> {
    let s = |i: usize| args.get(i).map(go_print).unwrap_or_default();
    Ok(match f {
        "json" => Value::String(
            serde_json::to_string(args.first().unwrap_or(&Value::Null)).unwrap_or_default(),
        ),
        "upper" => Value::String(s(0).to_uppercase()),
        "lower" => Value::String(s(0).to_lowercase()),
        "title" => Value::String(
            s(0).split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect::<String>())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "len" => Value::from(match args.first() {
            Some(Value::Array(a)) => a.len(),
            Some(Value::Object(o)) => o.len(),
            Some(Value::String(x)) => x.len(),
            _ => 0,
        }),
        "join" => match args.first() {
            Some(Value::Array(a)) => {
                Value::String(a.iter().map(go_print).collect::<Vec<_>>().join(&s(1)))
            }
            _ => Value::String(String::new()),
        },
        "split" => Value::Array(
            s(0).split(s(1).as_str())
                .map(|x| Value::String(x.into()))
                .collect(),
        ),
        "index" => {
            let mut cur = args.first().cloned().unwrap_or(Value::Null);
            for k in &args[1.min(args.len())..] {
                cur = match (&cur, k) {
                    (Value::Object(o), Value::String(key)) => {
                        o.get(key).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Array(a), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|i| a.get(i as usize).cloned())
                        .unwrap_or(Value::Null),
                    _ => Value::Null,
                };
            }
            cur
        }
        "println" => Value::String(format!(
            "{}\n",
            args.iter().map(go_print).collect::<Vec<_>>().join(" ")
        )),
        "print" => Value::String(args.iter().map(go_print).collect::<Vec<_>>().join("")),
        "printf" => {
            let fmt = s(0);
            let mut out = String::new();
            let mut rest = args.iter().skip(1);
            let mut chars = fmt.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '%' {
                    match chars.next() {
                        Some('%') => out.push('%'),
                        Some(_) => out.push_str(&rest.next().map(go_print).unwrap_or_default()),
                        None => out.push('%'),
                    }
                } else {
                    out.push(c);
                }
            }
            Value::String(out)
        }
        "truncate" => Value::String(
            s(0).chars()
                .take(args.get(1).and_then(Value::as_f64).unwrap_or(0.0) as usize)
                .collect(),
        ),
        other => return Err(TemplateError(format!("function {other:?} not defined"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    #[test]
    fn go_template_subset() {
        let v = json!({"Name":"/web","State":{"Pid":1234,"Running":true},"HostConfig":{"Memory":33554432},
            "Config":{"Labels":{"a":"b"},"Env":["A=1","B=2"]},"Mounts":[{"Source":"/x"},{"Source":"/y"}]});
        assert_eq!(r("{{.State.Pid}}", &v), "1234");
        assert_eq!(r("{{.HostConfig.Memory}}", &v), "33554432");
        assert_eq!(r("{{.Name}}", &v), "/web");
        assert_eq!(r("{{json .Config.Labels}}", &v), r#"{"a":"b"}"#);
        assert_eq!(r(r#"{{index .Config.Labels "a"}}"#, &v), "b");
        assert_eq!(r("{{range .Mounts}}{{.Source}} {{end}}", &v), "/x /y ");
        assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}", &v), "up");
        assert_eq!(r("{{.Name | upper}}", &v), "/WEB");
        assert_eq!(r(r#"{{join .Config.Env ","}}"#, &v), "A=1,B=2");
        assert_eq!(r("{{.Config.Env}}", &v), "[A=1 B=2]");
        assert_eq!(r("{{.Config.Labels}}", &v), "map[a:b]");
        assert_eq!(r("{{.Nope}}", &v), "<no value>");
        assert_eq!(r("{{len .Mounts}}", &v), "2");
        assert!(Template::parse("{{if .X}}").is_err());
        assert!(Template::parse("{{.X").is_err());
        assert!(Template::parse("{{nosuch .X}}")
            .unwrap()
            .render(&v)
            .is_err());
    }
}
