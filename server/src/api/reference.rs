//! `GET /docs/api`: the API reference as a plain HTML page, rendered on the server from the same
//! OpenAPI document `/api/v1/openapi.json` serves: no script, no CDN, nothing to keep in sync.

use axum::{
    http::{header, HeaderValue},
    response::{Html, IntoResponse, Response},
};
use serde_json::Value;
use std::fmt::Write;

/// The page (built once).
pub async fn page() -> Response {
    static HTML: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let doc: Value =
            serde_json::from_str(super::openapi_json()).expect("the OpenAPI document is JSON");
        render(&doc)
    });
    let mut res = Html(HTML.as_str()).into_response();
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; frame-ancestors 'none'"),
    );
    res
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A schema's name when it is a reference, else its type ("string (uuid)", "array of Step").
fn type_of(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    if let Some(one_of) = schema.get("oneOf").and_then(Value::as_array) {
        return one_of.iter().map(type_of).collect::<Vec<_>>().join(" or ");
    }
    let ty = match schema.get("type") {
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        Some(Value::String(t)) => t.clone(),
        _ => "any".to_owned(),
    };
    let mut out = esc(&ty);
    if ty.starts_with("array") {
        if let Some(items) = schema.get("items") {
            out = format!("array of {}", type_of(items));
        }
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        let _ = write!(out, " ({})", esc(format));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values
            .iter()
            .filter_map(Value::as_str)
            .map(|v| format!("<code>{}</code>", esc(v)))
            .collect();
        let _ = write!(out, ": {}", values.join(", "));
    }
    out
}

fn text(v: &Value, key: &str) -> String {
    esc(v.get(key).and_then(Value::as_str).unwrap_or_default())
}

fn render(doc: &Value) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Berth API reference</title><link rel=\"stylesheet\" href=\"/pkg/berth.css\">\
         </head><body><main class=\"api-reference\"><h1>{} (version {})</h1><p>{}</p>\
         <p>Base path <code>/api/v1</code>. The machine-readable document: \
         <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p><nav aria-label=\"Contents\"><ul>",
        text(&doc["info"], "title"),
        text(&doc["info"], "version"),
        text(&doc["info"], "description"),
    );
    let tags = doc["tags"].as_array().cloned().unwrap_or_default();
    for tag in &tags {
        let _ = write!(
            h,
            "<li><a href=\"#tag-{0}\">{0}</a>: {1}</li>",
            text(tag, "name"),
            text(tag, "description")
        );
    }
    h.push_str("<li><a href=\"#schemas\">Schemas</a></li></ul></nav>");
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for tag in &tags {
        let name = tag["name"].as_str().unwrap_or_default();
        let _ = write!(h, "<section><h2 id=\"tag-{0}\">{0}</h2>", esc(name));
        for (path, item) in &paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                let tagged = op["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == name));
                if tagged {
                    operation(&mut h, method, path, op);
                }
            }
        }
        h.push_str("</section>");
    }
    h.push_str("<section><h2 id=\"schemas\">Schemas</h2>");
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let _ = write!(
            h,
            "<h3 id=\"schema-{0}\">{0}</h3><p>{1}</p>",
            esc(name),
            text(schema, "description")
        );
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match schema["properties"].as_object() {
            Some(props) => {
                h.push_str(
                    "<table><thead><tr><th scope=\"col\">Field</th><th scope=\"col\">Type</th>\
                     <th scope=\"col\">Required</th><th scope=\"col\">Meaning</th></tr></thead><tbody>",
                );
                for (field, s) in props {
                    let _ = write!(
                        h,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(field),
                        type_of(s),
                        if required.contains(&field.as_str()) {
                            "yes"
                        } else {
                            "no"
                        },
                        text(s, "description")
                    );
                }
                h.push_str("</tbody></table>");
            }
            None => {
                let _ = write!(h, "<p>{}</p>", type_of(schema));
            }
        }
    }
    h.push_str("</section></main></body></html>");
    h
}

fn operation(h: &mut String, method: &str, path: &str, op: &Value) {
    let scopes: Vec<String> = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["bearer"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    let _ = write!(
        h,
        "<h3 id=\"op-{id}\"><code>{m} /api/v1{p}</code></h3><p>{summary}</p>",
        id = text(op, "operationId"),
        m = method.to_uppercase(),
        p = esc(path),
        summary = text(op, "summary"),
    );
    if op.get("security").is_some() {
        let _ = write!(
            h,
            "<p>Token scope: {}</p>",
            if scopes.is_empty() {
                "any".to_owned()
            } else {
                scopes.join(", ")
            }
        );
    }
    if let Some(params) = op["parameters"].as_array() {
        h.push_str(
            "<table><caption>Parameters</caption><thead><tr><th scope=\"col\">Name</th>\
             <th scope=\"col\">In</th><th scope=\"col\">Type</th><th scope=\"col\">Meaning</th>\
             </tr></thead><tbody>",
        );
        for p in params {
            let _ = write!(
                h,
                "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                text(p, "name"),
                if p["required"] == true {
                    " (required)"
                } else {
                    ""
                },
                text(p, "in"),
                type_of(&p["schema"]),
                text(p, "description")
            );
        }
        h.push_str("</tbody></table>");
    }
    if let Some(body) = op["requestBody"]["content"]["application/json"]["schema"].as_object() {
        let _ = write!(
            h,
            "<p>Body (JSON): {}</p>",
            type_of(&Value::Object(body.clone()))
        );
    }
    h.push_str("<ul class=\"responses\">");
    for (code, r) in op["responses"].as_object().into_iter().flatten() {
        let schema = r["content"]
            .as_object()
            .and_then(|c| c.values().next())
            .map(|c| type_of(&c["schema"]))
            .unwrap_or_default();
        let _ = write!(
            h,
            "<li><strong>{}</strong> {} {}</li>",
            esc(code),
            text(r, "description"),
            schema
        );
    }
    h.push_str("</ul>");
}
