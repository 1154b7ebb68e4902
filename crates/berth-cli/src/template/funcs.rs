//! The template functions: Go's builtins and the docker CLI's additions
//! (`github.com/docker/cli/templates`: json, split, join, title, lower, upper, pad, truncate).

use serde_json::Value;

use super::error::TemplateError;

const FUNCS: &[&str] = &[
    // Go's text/template builtins (`and`/`or` are evaluated lazily by the caller).
    "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "slice", "print",
    "printf", "println", // docker's
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

/// The widest padding `pad` and `printf` produce (a typo must not allocate gigabytes).
const MAX_WIDTH: usize = 1 << 20;

/// Whether `name` is a function templates may call.
pub(super) fn defined(name: &str) -> bool {
    FUNCS.contains(&name)
}

/// A JSON number from a template literal (integers stay integers).
pub(super) fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
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
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_print(&o[*k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn err(f: &str, msg: impl std::fmt::Display) -> TemplateError {
    TemplateError(format!("error calling {f}: {msg}"))
}

fn want_args(f: &str, args: &[Value], n: usize) -> Result<(), TemplateError> {
    if args.len() != n {
        return Err(TemplateError(format!(
            "wrong number of args for {f}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn str_arg(f: &str, v: &Value) -> Result<String, TemplateError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        other => Err(err(f, format!("{} is not a string", go_print(other)))),
    }
}

fn int_arg(f: &str, v: &Value) -> Result<i64, TemplateError> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64))
        .ok_or_else(|| err(f, format!("{} is not an integer", go_print(v))))
}

/// Go's `eq` on basic values: numbers by value, everything else as JSON.
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn compare(f: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, TemplateError> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .ok_or_else(|| err(f, "incomparable numbers")),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => Err(err(f, "incompatible types for comparison")),
    }
}

/// Go's `printf` for the verbs templates use: %v %s %d %q %t %f %x and `%%`, with an
/// optional width (`%-10s`, `%5d`).
fn printf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut rest = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&d) = chars.peek() {
            if d == '-' || d.is_ascii_digit() || d == '.' {
                flags.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(v) = rest.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let text = match verb {
            'q' => serde_json::to_string(&go_print(v)).unwrap_or_default(),
            'd' => v
                .as_f64()
                .map(|f| (f as i64).to_string())
                .unwrap_or_else(|| format!("%!d({})", go_print(v))),
            'x' => v
                .as_i64()
                .map(|i| format!("{i:x}"))
                .unwrap_or_else(|| hex(&go_print(v))),
            'f' => {
                let prec = flags
                    .split_once('.')
                    .and_then(|(_, p)| p.parse::<usize>().ok())
                    .unwrap_or(6);
                format!("{:.*}", prec, v.as_f64().unwrap_or(0.0))
            }
            _ => go_print(v),
        };
        let width: usize = flags
            .trim_start_matches('-')
            .split('.')
            .next()
            .and_then(|w| w.parse::<usize>().ok())
            .unwrap_or(0)
            .min(MAX_WIDTH);
        let pad = width.saturating_sub(text.chars().count());
        if flags.starts_with('-') {
            out.push_str(&text);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&text);
        }
    }
    let extra: Vec<String> = rest.map(go_print).collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Go's `print`: spaces between operands when neither side is a string.
fn print(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&go_print(a));
    }
    out
}

fn index(args: &[Value]) -> Result<Value, TemplateError> {
    let Some(first) = args.first() else {
        return Err(TemplateError(
            "wrong number of args for index: want at least 1 got 0".into(),
        ));
    };
    let mut cur = first.clone();
    for k in &args[1..] {
        cur = match (&cur, k) {
            // A missing key of a map of strings (labels, options) is "", as for Go's
            // typed map[string]string; of other maps, no value.
            (Value::Object(o), Value::String(key)) => match o.get(key) {
                Some(v) => v.clone(),
                None if o.values().all(Value::is_string) => Value::String(String::new()),
                None => Value::Null,
            },
            (Value::Null, Value::String(_)) => Value::String(String::new()),
            (Value::Array(a), Value::Number(n)) => match n.as_u64().and_then(|i| a.get(i as usize))
            {
                Some(v) => v.clone(),
                None => return Err(err("index", format!("index out of range: {n}"))),
            },
            (Value::String(s), Value::Number(n)) => {
                match n.as_u64().and_then(|i| s.as_bytes().get(i as usize)) {
                    Some(b) => Value::from(*b),
                    None => return Err(err("index", format!("index out of range: {n}"))),
                }
            }
            (c, k) => {
                return Err(err(
                    "index",
                    format!("cannot index {} with {}", go_print(c), go_print(k)),
                ))
            }
        };
    }
    Ok(cur)
}

fn slice(args: &[Value]) -> Result<Value, TemplateError> {
    let Some(first) = args.first() else {
        return Err(TemplateError(
            "wrong number of args for slice: want at least 1 got 0".into(),
        ));
    };
    let idx: Vec<i64> = args[1..]
        .iter()
        .map(|a| int_arg("slice", a))
        .collect::<Result<_, _>>()?;
    let len = match first {
        Value::Array(a) => a.len(),
        Value::String(s) => s.len(),
        other => {
            return Err(err(
                "slice",
                format!("can't slice item of type {}", go_print(other)),
            ))
        }
    } as i64;
    let lo = idx.first().copied().unwrap_or(0);
    let hi = idx.get(1).copied().unwrap_or(len);
    if lo < 0 || hi < lo || hi > len || idx.len() > 2 {
        return Err(err("slice", format!("index out of range: {lo}:{hi}")));
    }
    let (lo, hi) = (lo as usize, hi as usize);
    Ok(match first {
        Value::Array(a) => Value::Array(a[lo..hi].to_vec()),
        Value::String(s) => {
            Value::String(String::from_utf8_lossy(&s.as_bytes()[lo..hi]).into_owned())
        }
        _ => Value::Null,
    })
}

/// Calls `f` with its evaluated arguments (a piped value is the last one).
pub(super) fn call(f: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
    let a = &args;
    Ok(match f {
        "json" => {
            want_args(f, a, 1)?;
            Value::String(serde_json::to_string(&a[0]).unwrap_or_default())
        }
        "upper" => {
            want_args(f, a, 1)?;
            Value::String(str_arg(f, &a[0])?.to_uppercase())
        }
        "lower" => {
            want_args(f, a, 1)?;
            Value::String(str_arg(f, &a[0])?.to_lowercase())
        }
        "title" => {
            want_args(f, a, 1)?;
            Value::String(title(&str_arg(f, &a[0])?))
        }
        "len" => {
            want_args(f, a, 1)?;
            Value::from(match &a[0] {
                Value::Array(x) => x.len(),
                Value::Object(o) => o.len(),
                Value::String(x) => x.len(),
                Value::Null => 0,
                other => return Err(err(f, format!("len of type {}", go_print(other)))),
            })
        }
        "join" => {
            want_args(f, a, 2)?;
            let sep = str_arg(f, &a[1])?;
            match &a[0] {
                Value::Array(x) => {
                    Value::String(x.iter().map(go_print).collect::<Vec<_>>().join(&sep))
                }
                Value::Null => Value::String(String::new()),
                other => return Err(err(f, format!("{} is not a list", go_print(other)))),
            }
        }
        "split" => {
            want_args(f, a, 2)?;
            let (s, sep) = (str_arg(f, &a[0])?, str_arg(f, &a[1])?);
            if sep.is_empty() {
                Value::Array(s.chars().map(|c| Value::String(c.into())).collect())
            } else {
                Value::Array(
                    s.split(sep.as_str())
                        .map(|x| Value::String(x.into()))
                        .collect(),
                )
            }
        }
        "pad" => {
            want_args(f, a, 3)?;
            let s = go_print(&a[0]);
            let (pre, post) = (int_arg(f, &a[1])?.max(0), int_arg(f, &a[2])?.max(0));
            if pre.max(post) > MAX_WIDTH as i64 {
                return Err(err(f, format!("padding over {MAX_WIDTH}")));
            }
            Value::String(format!(
                "{}{s}{}",
                " ".repeat(pre as usize),
                " ".repeat(post as usize)
            ))
        }
        "truncate" => {
            want_args(f, a, 2)?;
            let n = int_arg(f, &a[1])?.max(0) as usize;
            Value::String(go_print(&a[0]).chars().take(n).collect())
        }
        "index" => index(a)?,
        "slice" => slice(a)?,
        "not" => {
            want_args(f, a, 1)?;
            Value::Bool(!truthy(&a[0]))
        }
        "eq" => {
            if a.len() < 2 {
                return Err(err(f, "missing argument for comparison"));
            }
            Value::Bool(a[1..].iter().any(|b| equal(&a[0], b)))
        }
        "ne" => {
            want_args(f, a, 2)?;
            Value::Bool(!equal(&a[0], &a[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            want_args(f, a, 2)?;
            use std::cmp::Ordering::*;
            let o = compare(f, &a[0], &a[1])?;
            Value::Bool(match f {
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            })
        }
        "println" => Value::String(format!(
            "{}\n",
            a.iter().map(go_print).collect::<Vec<_>>().join(" ")
        )),
        "print" => Value::String(print(a)),
        "printf" => {
            let Some(fmt) = a.first() else {
                return Err(TemplateError(
                    "wrong number of args for printf: want at least 1 got 0".into(),
                ));
            };
            Value::String(printf(&str_arg(f, fmt)?, &a[1..]))
        }
        other => return Err(TemplateError(format!("function {other:?} not defined"))),
    })
}

/// Go's deprecated `strings.Title`: the first letter of each space-separated word upper.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace() || c.is_ascii_punctuation() && c != '\'';
    }
    out
}

/// Go's truth: false, 0, nil, and empty strings, lists and maps are false.
pub(super) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}
