//! `--format` of the list commands (`ps`, `images`, `history`, `volume ls`, `network ls`),
//! as the docker CLI's formatter does it:
//! - `table` alone or no format: the command's default table (not handled here);
//! - `json`: one JSON object per row;
//! - `table TEMPLATE`: a header row (the template rendered against the column titles, e.g.
//!   `{{.ID}}` → `CONTAINER ID`), then one row per item; cells are split at tabs (`\t`) and
//!   aligned like Go's tabwriter;
//! - any other template: rendered once per row, as is.
//!
//! A template that does not parse fails with `failed to parse template: …` and exit 1, as
//! docker's list commands do (inspect-like commands say `template parsing error` and exit 64,
//! see `cmd::format_value`).

use serde_json::Value;

use crate::template::Template;
use crate::Failure;

/// Whether `fmt` asks for the command's default table (none, empty, or `table` alone).
pub fn is_default(fmt: Option<&str>) -> bool {
    fmt.is_none_or(|f| f.trim().is_empty() || f.trim() == "table")
}

/// Renders `rows` with the user's `fmt` (not a default one: see [`is_default`]). `titles`
/// maps a row's field names to the column titles Docker prints for them.
pub fn render(fmt: &str, rows: &[Value], titles: &[(&str, &str)]) -> Result<String, Failure> {
    if fmt.trim() == "json" {
        let mut out = String::new();
        for r in rows {
            out.push_str(&go_json(r));
            out.push('\n');
        }
        return Ok(out);
    }
    let (table, body) = match fmt.strip_prefix("table") {
        Some(rest) if rest.starts_with(char::is_whitespace) => (true, rest.trim_start()),
        _ => (false, fmt),
    };
    // A `\t` typed in a shell reaches us as backslash-t: the docker CLI unescapes it too.
    let body = body.replace("\\t", "\t").replace("\\n", "\n");
    let t = Template::parse(&body)
        .map_err(|e| Failure::new(1, format!("failed to parse template: {e}")))?;
    let exec_err = |e: crate::template::TemplateError| Failure::new(1, e.to_string());
    let mut lines = Vec::new();
    if table {
        let header: serde_json::Map<String, Value> = titles
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        let h = t.render(&Value::Object(header)).map_err(exec_err)?;
        lines.push(h.replace("<no value>", ""));
    }
    for r in rows {
        lines.push(t.render(r).map_err(exec_err)?);
    }
    if !table {
        return Ok(lines.iter().map(|l| format!("{l}\n")).collect());
    }
    let cells: Vec<Vec<String>> = lines
        .iter()
        .flat_map(|l| l.split('\n'))
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    Ok(crate::table::render(&cells))
}

/// Go's `json.Marshal`: HTML-safe escapes (`<missing>` → `\u003cmissing\u003e`). Those
/// characters can only occur inside JSON strings, so replacing them in the text is exact.
pub fn go_json(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TITLES: &[(&str, &str)] = &[("ID", "CONTAINER ID"), ("Names", "NAMES")];

    #[test]
    fn table_json_and_plain_formats() {
        let rows = vec![
            json!({"ID": "0123456789ab", "Names": "web"}),
            json!({"ID": "ba9876543210", "Names": "db"}),
        ];
        assert_eq!(
            render("table {{.ID}}\t{{.Names}}", &rows, TITLES).unwrap(),
            "CONTAINER ID   NAMES\n0123456789ab   web\nba9876543210   db\n"
        );
        assert_eq!(
            render("table {{.Names}}\\t{{.ID}}", &rows[..1], TITLES).unwrap(),
            "NAMES     CONTAINER ID\nweb       0123456789ab\n"
        );
        assert_eq!(render("{{.Names}}", &rows, TITLES).unwrap(), "web\ndb\n");
        assert_eq!(
            render("json", &rows[..1], TITLES).unwrap(),
            "{\"ID\":\"0123456789ab\",\"Names\":\"web\"}\n"
        );
        assert_eq!(render("table {{.Names}}", &[], TITLES).unwrap(), "NAMES\n");
        assert_eq!(
            render("json", &[json!({"ID": "<missing>&"})], TITLES).unwrap(),
            "{\"ID\":\"\\u003cmissing\\u003e\\u0026\"}\n"
        );
        assert!(is_default(Some("table")) && is_default(None) && !is_default(Some("json")));
        let e = render("{{nosuch}}", &rows, TITLES).unwrap_err();
        assert_eq!(e.code, 1);
        assert_eq!(
            e.message,
            "failed to parse template: template: :1: function \"nosuch\" not defined"
        );
    }
}
