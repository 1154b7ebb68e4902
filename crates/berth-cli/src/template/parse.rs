//! Lexing and parsing: `{{ }}` actions in text, pipelines with parenthesised
//! sub-pipelines, variable declarations, and the control structures (`if`/`else if`/`with`/
//! `range` ... `end`). Function names are checked here, as Go's parser does.

use super::error::{perr, TemplateError};
use super::funcs;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Text(String),
    Action(Pipe),
    Range(Pipe, Vec<Node>, Vec<Node>),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

/// `$a, $b := cmd | cmd` (declarations are empty for a plain pipeline).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pipe {
    pub decl: Vec<String>,
    /// `=` (assign an existing variable) rather than `:=`.
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Arg {
    /// `.A.B` relative to dot (`.` alone is dot).
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the data the template started with).
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    /// A function name.
    Ident(String),
    /// `(pipeline).A.B`
    Sub(Box<Pipe>, Vec<String>),
}

pub(super) type Cmd = Vec<Arg>;

pub(super) enum Tok {
    Text(String),
    /// An action's inside and the line it starts on.
    Action(String, usize),
}

/// Finds the `}}` closing an action, skipping quoted strings.
fn action_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'`' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

pub(super) fn lex(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut line = 1;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        line += text.matches('\n').count();
        let after = &rest[start + 2..];
        let end = action_end(after).ok_or_else(|| perr(line, "unclosed action"))?;
        let mut inner = &after[..end];
        // `{{- ` trims the space before, ` -}}` the space after (Go wants the space).
        if let Some(i) = inner.strip_prefix("- ").or_else(|| {
            inner
                .strip_prefix('-')
                .filter(|i| i.starts_with(char::is_whitespace))
        }) {
            text = text.trim_end().to_string();
            inner = i;
        }
        let mut trim_next = false;
        if let Some(i) = inner
            .strip_suffix('-')
            .filter(|i| i.ends_with(char::is_whitespace))
        {
            inner = i;
            trim_next = true;
        }
        if !text.is_empty() {
            out.push(Tok::Text(text));
        }
        out.push(Tok::Action(inner.trim().to_string(), line));
        line += inner.matches('\n').count();
        rest = &after[end + 2..];
        if trim_next {
            let trimmed = rest.trim_start();
            line += rest[..rest.len() - trimmed.len()].matches('\n').count();
            rest = trimmed;
        }
    }
    if !rest.is_empty() {
        out.push(Tok::Text(rest.to_string()));
    }
    Ok(out)
}

/// The words of one action.
#[derive(Debug, Clone, PartialEq)]
enum Word {
    Str(String),
    Bare(String),
    Pipe,
    Open,
    /// `)`, with a field chain glued to it (`).IPAddress`).
    Close(Vec<String>),
    Comma,
    Declare,
    Assign,
}

fn path(p: &str) -> Vec<String> {
    p.split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn split_words(s: &str, line: usize) -> Result<Vec<Word>, TemplateError> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '"' | '`' => {
                chars.next();
                let mut lit = String::new();
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
                            Some('r') => lit.push('\r'),
                            Some(o) => lit.push(o),
                            None => {}
                        }
                        continue;
                    }
                    lit.push(d);
                }
                if !closed {
                    return Err(perr(line, "unterminated quoted string"));
                }
                words.push(Word::Str(lit));
            }
            '|' => {
                chars.next();
                words.push(Word::Pipe);
            }
            '(' => {
                chars.next();
                words.push(Word::Open);
            }
            ',' => {
                chars.next();
                words.push(Word::Comma);
            }
            ')' => {
                chars.next();
                let mut chain = String::new();
                while let Some(&d) = chars.peek() {
                    if d.is_whitespace() || "|()\",`".contains(d) {
                        break;
                    }
                    chain.push(d);
                    chars.next();
                }
                if !chain.is_empty() && !chain.starts_with('.') {
                    return Err(perr(line, format!("unexpected {chain:?} after )")));
                }
                words.push(Word::Close(path(&chain)));
            }
            _ => {
                let mut w = String::new();
                while let Some(&d) = chars.peek() {
                    if d.is_whitespace() || "|()\",`".contains(d) {
                        break;
                    }
                    w.push(d);
                    chars.next();
                }
                words.push(match w.as_str() {
                    ":=" => Word::Declare,
                    "=" => Word::Assign,
                    _ => Word::Bare(w),
                });
            }
        }
    }
    Ok(words)
}

fn parse_bare(w: &str, line: usize) -> Result<Arg, TemplateError> {
    if let Some(p) = w.strip_prefix('$') {
        let (name, rest) = p.split_once('.').unwrap_or((p, ""));
        return Ok(Arg::Var(format!("${name}"), path(rest)));
    }
    if w.starts_with('.') {
        return Ok(Arg::Field(path(w)));
    }
    match w {
        "true" => return Ok(Arg::Bool(true)),
        "false" => return Ok(Arg::Bool(false)),
        "nil" => return Ok(Arg::Nil),
        _ => {}
    }
    if w.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
        return w
            .parse::<f64>()
            .map(Arg::Num)
            .map_err(|_| perr(line, format!("bad number syntax: {w:?}")));
    }
    if !funcs::defined(w) {
        return Err(perr(line, format!("function {w:?} not defined")));
    }
    Ok(Arg::Ident(w.to_string()))
}

struct PipeParser<'a> {
    words: &'a [Word],
    pos: usize,
    line: usize,
    src: &'a str,
}

impl PipeParser<'_> {
    fn pipe(&mut self, nested: bool) -> Result<Pipe, TemplateError> {
        let (decl, assign) = self.decl();
        let mut cmds: Vec<Cmd> = vec![Vec::new()];
        loop {
            let Some(w) = self.words.get(self.pos).cloned() else {
                if nested {
                    return Err(perr(self.line, "unclosed left paren"));
                }
                break;
            };
            self.pos += 1;
            let cur = cmds.last_mut().expect("one command at least");
            match w {
                Word::Pipe => cmds.push(Vec::new()),
                Word::Open => {
                    let sub = self.pipe(true)?;
                    let chain = match self.words.get(self.pos - 1) {
                        Some(Word::Close(c)) => c.clone(),
                        _ => Vec::new(),
                    };
                    cur.push(Arg::Sub(Box::new(sub), chain));
                }
                Word::Close(_) if nested => break,
                Word::Close(_) => return Err(perr(self.line, "unexpected right paren")),
                Word::Str(s) => cur.push(Arg::Str(s)),
                Word::Bare(b) => cur.push(parse_bare(&b, self.line)?),
                Word::Comma | Word::Declare | Word::Assign => {
                    return Err(perr(
                        self.line,
                        format!("unexpected {w:?} in command {:?}", self.src),
                    ))
                }
            }
        }
        if cmds.iter().any(Vec::is_empty) {
            return Err(perr(
                self.line,
                format!("missing value for command {:?}", self.src),
            ));
        }
        for c in &cmds[1..] {
            if !matches!(c[0], Arg::Ident(_)) && c.len() == 1 {
                // `{{.A | .B}}`: Go allows only functions (and methods) after a pipe.
                return Err(perr(
                    self.line,
                    format!("non executable command in pipeline stage {:?}", self.src),
                ));
            }
        }
        Ok(Pipe { decl, assign, cmds })
    }

    /// `$a :=`, `$a, $b :=`, `$a =` at the start of a pipeline.
    fn decl(&mut self) -> (Vec<String>, bool) {
        let w = self.words;
        let var = |i: usize| match w.get(i) {
            Some(Word::Bare(b)) if b.starts_with('$') && !b.contains('.') => Some(b.clone()),
            _ => None,
        };
        let p = self.pos;
        if let Some(a) = var(p) {
            match w.get(p + 1) {
                Some(Word::Declare) => {
                    self.pos += 2;
                    return (vec![a], false);
                }
                Some(Word::Assign) => {
                    self.pos += 2;
                    return (vec![a], true);
                }
                Some(Word::Comma) => {
                    if let (Some(b), Some(Word::Declare)) = (var(p + 2), w.get(p + 3)) {
                        self.pos += 4;
                        return (vec![a, b], false);
                    }
                }
                _ => {}
            }
        }
        (Vec::new(), false)
    }
}

fn parse_pipe(s: &str, line: usize) -> Result<Pipe, TemplateError> {
    let words = split_words(s, line)?;
    let mut p = PipeParser {
        words: &words,
        pos: 0,
        line,
        src: s,
    };
    let pipe = p.pipe(false)?;
    if pipe.cmds.len() == 1 && pipe.cmds[0].is_empty() {
        return Err(perr(line, format!("missing value for command {s:?}")));
    }
    Ok(pipe)
}

pub(super) type Toks = std::iter::Peekable<std::vec::IntoIter<Tok>>;

/// Parses until `{{end}}` (returns body, else-body), or to the end of input at top level.
/// `{{else if P}}` / `{{else with P}}` become an else-body holding the nested node, which
/// consumes the shared `{{end}}`.
pub(super) fn parse_nodes(
    toks: &mut Toks,
    nested: Option<usize>,
) -> Result<(Vec<Node>, Vec<Node>), TemplateError> {
    let mut body = Vec::new();
    let mut else_body = Vec::new();
    let mut in_else = false;
    while let Some(t) = toks.next() {
        let target = if in_else { &mut else_body } else { &mut body };
        match t {
            Tok::Text(s) => target.push(Node::Text(s)),
            Tok::Action(a, line) => {
                let (kw, rest) = a
                    .split_once(char::is_whitespace)
                    .map(|(k, r)| (k, r.trim()))
                    .unwrap_or((a.as_str(), ""));
                match kw {
                    _ if a.starts_with("/*") => {
                        if !a.ends_with("*/") {
                            return Err(perr(line, "unclosed comment"));
                        }
                    }
                    "end" if nested.is_some() && rest.is_empty() => return Ok((body, else_body)),
                    "else" if nested.is_some() && !in_else && rest.is_empty() => in_else = true,
                    "else" if nested.is_some() && !in_else => {
                        let (kw2, rest2) =
                            rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                        if kw2 != "if" && kw2 != "with" {
                            return Err(perr(line, format!("unexpected {rest:?} in else")));
                        }
                        let node = control(kw2, rest2, line, toks)?;
                        else_body.push(node);
                        return Ok((body, else_body));
                    }
                    "range" | "if" | "with" => {
                        let node = control(kw, rest, line, toks)?;
                        target.push(node);
                    }
                    "end" | "else" => {
                        return Err(perr(line, format!("unexpected {{{{{kw}}}}}")));
                    }
                    "define" | "template" | "block" | "break" | "continue" => {
                        return Err(perr(line, format!("{{{{{kw}}}}} is not supported here")));
                    }
                    "" => return Err(perr(line, "missing value for command")),
                    _ => target.push(Node::Action(parse_pipe(&a, line)?)),
                }
            }
        }
    }
    if let Some(line) = nested {
        return Err(perr(line, "unexpected EOF"));
    }
    Ok((body, else_body))
}

fn control(kw: &str, rest: &str, line: usize, toks: &mut Toks) -> Result<Node, TemplateError> {
    if rest.is_empty() {
        return Err(perr(line, format!("missing value for {kw}")));
    }
    let pipe = parse_pipe(rest, line)?;
    let (b, e) = parse_nodes(toks, Some(line))?;
    Ok(match kw {
        "range" => Node::Range(pipe, b, e),
        "if" => Node::If(pipe, b, e),
        _ => Node::With(pipe, b, e),
    })
}
