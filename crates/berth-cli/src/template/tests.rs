use serde_json::{json, Value};

use super::Template;

fn r(t: &str, v: &Value) -> String {
    Template::parse(t)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .render(v)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
}

fn parse_err(t: &str) -> String {
    Template::parse(t).expect_err(t).to_string()
}

fn data() -> Value {
    json!({"Name":"/web","State":{"Pid":1234,"Running":true,"Status":"running"},
        "HostConfig":{"Memory":33554432},
        "Config":{"Labels":{"a":"b","c":"d"},"Env":["A=1","B=2"]},
        "NetworkSettings":{"Networks":{"bridge":{"IPAddress":"172.17.0.2","Aliases":null}}},
        "Mounts":[{"Source":"/x"},{"Source":"/y"}]})
}

#[test]
fn go_template_subset() {
    let v = data();
    assert_eq!(r("{{.State.Pid}}", &v), "1234");
    assert_eq!(r("{{.HostConfig.Memory}}", &v), "33554432");
    assert_eq!(r("{{.Name}}", &v), "/web");
    assert_eq!(r("{{json .Config.Labels}}", &v), r#"{"a":"b","c":"d"}"#);
    assert_eq!(r(r#"{{index .Config.Labels "a"}}"#, &v), "b");
    assert_eq!(r("{{range .Mounts}}{{.Source}} {{end}}", &v), "/x /y ");
    assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}", &v), "up");
    assert_eq!(r("{{.Name | upper}}", &v), "/WEB");
    assert_eq!(r(r#"{{join .Config.Env ","}}"#, &v), "A=1,B=2");
    assert_eq!(r("{{.Config.Env}}", &v), "[A=1 B=2]");
    assert_eq!(r("{{.Config.Labels}}", &v), "map[a:b c:d]");
    assert_eq!(r("{{.Nope}}", &v), "<no value>");
    assert_eq!(r("{{len .Mounts}}", &v), "2");
    assert_eq!(r("{{.}}", &json!("x")), "x");
}

#[test]
fn parenthesised_sub_pipelines_and_fields_on_their_results() {
    let v = data();
    assert_eq!(
        r(
            r#"{{(index .NetworkSettings.Networks "bridge").IPAddress}}"#,
            &v
        ),
        "172.17.0.2"
    );
    assert_eq!(r(r#"{{(index .Config.Labels "a")}}"#, &v), "b");
    assert_eq!(r(r#"{{(index .Config.Labels "a") | upper}}"#, &v), "B");
    assert_eq!(
        r(
            r#"{{upper (index .Config.Labels "c")}}-{{len (split "a:b:c" ":")}}"#,
            &v
        ),
        "D-3"
    );
    assert_eq!(r("{{(.State).Pid}}", &v), "1234");
    assert_eq!(
        r(r#"{{if eq (index .Config.Labels "a") "b"}}yes{{end}}"#, &v),
        "yes"
    );
    assert_eq!(r(r#"{{((index .Mounts 1)).Source}}"#, &v), "/y");
    assert!(parse_err("{{(index .X \"a\"}}").contains("unclosed left paren"));
    assert!(parse_err("{{index .X \"a\")}}").contains("unexpected right paren"));
}

#[test]
fn docker_and_go_functions() {
    let v = data();
    assert_eq!(r(r#"{{split "a,b" ","}}"#, &v), "[a b]");
    assert_eq!(
        r(r#"{{lower "AbC"}} {{title "hello world"}}"#, &v),
        "abc Hello World"
    );
    assert_eq!(r(r#"{{println "a" 1}}"#, &v), "a 1\n");
    assert_eq!(
        r(r#"{{printf "%s:%d|%-4s|%q" "x" 3 "ab" "q"}}"#, &v),
        "x:3|ab  |\"q\""
    );
    assert_eq!(
        r(r#"{{pad "x" 1 2}}|{{truncate "abcdef" 3}}"#, &v),
        " x  |abc"
    );
    assert_eq!(
        r(
            r#"{{if and .State.Running (eq .State.Pid 1234)}}ok{{end}}"#,
            &v
        ),
        "ok"
    );
    assert_eq!(
        r(r#"{{or "" "fallback"}} {{not true}}"#, &v),
        "fallback false"
    );
    assert_eq!(
        r(
            r#"{{ne .State.Status "exited"}} {{lt 1 2}} {{ge "b" "a"}}"#,
            &v
        ),
        "true true true"
    );
    assert_eq!(r(r#"{{eq .State.Status "exited" "running"}}"#, &v), "true");
    assert_eq!(
        r(r#"{{slice "abcdef" 1 3}} {{index .Config.Env 1}}"#, &v),
        "bc B=2"
    );
    // A missing label is "" (Go's typed map[string]string), not <no value>.
    assert_eq!(r(r#"[{{index .Config.Labels "nope"}}]"#, &v), "[]");
    assert_eq!(
        r(r#"{{json .Mounts}}"#, &v),
        r#"[{"Source":"/x"},{"Source":"/y"}]"#
    );
}

#[test]
fn variables_range_with_else_if_and_trim() {
    let v = data();
    assert_eq!(
        r(
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
            &v
        ),
        "a=b;c=d;"
    );
    assert_eq!(
        r("{{range $i, $m := .Mounts}}{{$i}}{{$m.Source}}{{end}}", &v),
        "0/x1/y"
    );
    assert_eq!(r("{{range .Mounts}}{{$.Name}}{{end}}", &v), "/web/web");
    assert_eq!(
        r("{{$n := .Name}}{{with .State}}{{$n}}:{{.Pid}}{{end}}", &v),
        "/web:1234"
    );
    assert_eq!(
        r(
            r#"{{if eq .State.Status "exited"}}x{{else if .State.Running}}run{{else}}?{{end}}"#,
            &v
        ),
        "run"
    );
    assert_eq!(r("{{range .Nope}}a{{else}}empty{{end}}", &v), "empty");
    // docker's `.Label "key"` on list rows (joined `k=v` text) and on maps.
    let row = serde_json::json!({"Labels": "a=b,com.x=y=z"});
    assert_eq!(r(r#"{{.Label "com.x"}}|{{.Label "nope"}}"#, &row), "y=z|");
    assert_eq!(r(r#"{{.Config.Label "c"}}"#, &v), "d");
    assert_eq!(r("a  {{- .State.Pid -}}  b", &v), "a1234b");
    assert_eq!(r("{{/* comment */}}x", &v), "x");
    assert_eq!(r("{{ \"}}\" }}", &v), "}}");
}

#[test]
fn errors_read_like_go_and_never_panic() {
    assert_eq!(
        parse_err("{{nosuch .X}}"),
        r#"template: :1: function "nosuch" not defined"#
    );
    assert_eq!(parse_err("{{.X"), "template: :1: unclosed action");
    assert_eq!(parse_err("a\n{{if .X}}"), "template: :2: unexpected EOF");
    assert!(parse_err("{{end}}").contains("unexpected {{end}}"));
    assert!(parse_err("{{}}").contains("missing value"));
    assert!(parse_err("{{.A | .B}}").contains("non executable command"));
    assert!(
        parse_err("{{\"abc}}").contains("unclosed action")
            || parse_err("{{\"abc}}").contains("unterminated")
    );
    let v = data();
    for bad in [
        "{{index .Name 1 2}}",
        "{{len 3}}",
        "{{range .Name}}{{end}}",
        "{{$nope}}",
        "{{upper}}",
        "{{lt 1 \"a\"}}",
        "{{.Name 1}}",
        "{{slice .Config.Env 3 1}}",
        "{{pad \"x\" 1000000000000000000 1}}",
    ] {
        let t = Template::parse(bad);
        if let Ok(t) = t {
            assert!(t.render(&v).is_err(), "{bad} should fail");
        }
    }
    // Odd input must not panic anywhere.
    for odd in [
        "{{",
        "}}",
        "{{(}}",
        "{{)}}",
        "{{|}}",
        "{{$}}",
        "{{- -}}",
        "{{ ( ) }}",
        "{{.(.)}}",
        "{{-1}}",
    ] {
        let _ = Template::parse(odd).map(|t| t.render(&v));
    }
}

/// A deterministic fuzz: random sequences of template tokens must parse or fail cleanly,
/// and render or fail cleanly, never panic.
#[test]
fn random_token_soup_never_panics() {
    const PIECES: &[&str] = &[
        "{{",
        "}}",
        "{{- ",
        " -}}",
        "(",
        ")",
        "|",
        ".",
        ".A",
        ".B.C",
        "$",
        "$x",
        "\"s\"",
        "`r`",
        " ",
        "index",
        "range",
        "end",
        "else",
        "if",
        "with",
        ":=",
        "=",
        ",",
        "-",
        "1",
        "eq",
        "len",
        "json",
        "printf",
        "\"%d %s\"",
        "slice",
        "and",
        "or",
        "not",
        "/*",
        "*/",
        "\\",
        "'",
        "\n",
        ".Label",
        "nil",
        "true",
        "split",
    ];
    let data = serde_json::json!({"A": [1, "x", {"k": "v"}], "B": {"C": "c"}, "Labels": "a=b"});
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let n = (next() % 12) as usize + 1;
        let src: String = (0..n)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        if let Ok(t) = Template::parse(&src) {
            let _ = t.render(&data);
        }
    }
}
