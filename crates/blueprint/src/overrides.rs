//! Values a manager may change on a running environment: each app of a blueprint may declare
//! them as a JSON Schema (draft 2020-12) under `overrides:`, validated with the `jsonschema`
//! crate. See `docs/blueprints.md` for the format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Keyword of a changeable value giving its default per unit size (`small`, `medium`,
/// `large`), for values whose default depends on the size; an alternative to `default`.
pub const DEFAULT_BY_SIZE_KEYWORD: &str = "x-berth-default-by-size";
/// Keyword of a changeable value holding the sentence shown when a value is refused (and as the
/// field's hint), e.g. "Use a duration such as 30d or 720h.".
pub const ERROR_KEYWORD: &str = "x-berth-error";

/// The overrides of an environment: per app name, that app's changed values. Serialises as a
/// plain JSON object, `{"influxdb": {"retention": "30d"}}`; empty when nothing is changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Overrides(pub BTreeMap<String, Map<String, Value>>);

impl Overrides {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(Map::is_empty)
    }

    /// The overrides of one app, if it has any.
    pub fn app(&self, app: &str) -> Option<&Map<String, Value>> {
        self.0.get(app)
    }

    /// One overridden value.
    pub fn get(&self, app: &str, key: &str) -> Option<&Value> {
        self.0.get(app)?.get(key)
    }

    /// Sets one value (unvalidated: [`crate::Blueprint::validate_overrides`] is what checks).
    pub fn set(&mut self, app: impl Into<String>, key: impl Into<String>, value: Value) {
        self.0
            .entry(app.into())
            .or_default()
            .insert(key.into(), value);
    }

    /// As a JSON value (`{}` when empty).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()))
    }
}

/// One refused override, named the way a form names its field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideError {
    /// `overrides`, `overrides.<app>` or `overrides.<app>.<key>`.
    pub field: String,
    /// A sentence for people, e.g. "Use a whole number from 1 to 10.".
    pub message: String,
}

impl OverrideError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for OverrideError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The JSON type of a changeable value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    String,
    Integer,
}

/// What a changeable value is when no manager changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldDefault {
    /// No default in the blueprint: the values template leaves the setting out, so the chart's
    /// own default applies.
    Chart,
    /// The schema's `default`.
    Value(Value),
    /// `x-berth-default-by-size`: one default per unit size (`small`, `medium`, `large`).
    BySize(BTreeMap<String, Value>),
}

impl FieldDefault {
    /// The default for a unit of `size`; `None` for [`FieldDefault::Chart`] (or an unknown size).
    pub fn for_size(&self, size: &str) -> Option<&Value> {
        match self {
            FieldDefault::Chart => None,
            FieldDefault::Value(v) => Some(v),
            FieldDefault::BySize(by) => by.get(size),
        }
    }
}

/// One value a manager may change, with what a form needs to render a field for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeableField {
    pub app: String,
    pub key: String,
    /// The form field's name, `overrides.<app>.<key>` (what [`OverrideError::field`] names).
    pub field: String,
    pub title: String,
    pub description: String,
    pub kind: FieldKind,
    pub default: FieldDefault,
    /// Inclusive bounds of an integer.
    pub minimum: Option<i64>,
    pub maximum: Option<i64>,
    /// The regular expression (ECMA 262) a string must match.
    pub pattern: Option<String>,
    /// The allowed strings, when the schema lists them (`enum`).
    pub choices: Option<Vec<String>>,
    /// What a valid value looks like, for people; also the message when a value is refused.
    pub hint: String,
}

/// The parsed `overrides:` schema of one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppSchema {
    /// The schema as written (YAML turned into JSON).
    pub schema: Value,
    /// Its properties, in file order.
    pub fields: Vec<ChangeableField>,
}

impl AppSchema {
    /// Checks an app's `overrides:` schema: a valid draft 2020-12 schema of a flat object that
    /// refuses unknown keys, whose every property is a string or an integer with a title, a
    /// description, a message for people and defaults that the schema itself accepts.
    /// `order` is the properties' order in the file. Errors are sentences without the app name.
    pub fn parse(app: &str, schema: Value, order: &[String]) -> Result<Self, String> {
        let root = schema
            .as_object()
            .ok_or("overrides must be a JSON Schema object")?;
        if let Some(uri) = root.get("$schema") {
            let uri = uri.as_str().unwrap_or_default().trim_end_matches('#');
            if uri != "https://json-schema.org/draft/2020-12/schema" {
                return Err(format!(
                    "overrides: $schema must be https://json-schema.org/draft/2020-12/schema, not {uri:?}"
                ));
            }
        }
        let validator = compile(&schema)?;
        if root.get("type") != Some(&Value::from("object")) {
            return Err("overrides: the schema must have `type: object`".into());
        }
        if root.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err(
                "overrides: the schema must have `additionalProperties: false`, so unknown values are refused"
                    .into(),
            );
        }
        if root
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty())
        {
            return Err("overrides: every changeable value is optional; remove `required`".into());
        }
        let props = root
            .get("properties")
            .and_then(Value::as_object)
            .filter(|p| !p.is_empty())
            .ok_or("overrides: the schema must list at least one value under `properties`")?;

        let mut fields = Vec::with_capacity(props.len());
        let keys = order
            .iter()
            .filter(|k| props.contains_key(*k))
            .chain(props.keys().filter(|k| !order.contains(k)));
        for key in keys {
            let prop = &props[key];
            let fail = |m: &str| format!("overrides: value {key:?}: {m}");
            let p = prop
                .as_object()
                .ok_or_else(|| fail("must be a schema object"))?;
            let text = |name: &str| {
                p.get(name)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            };
            let title = text("title").ok_or_else(|| fail("needs a `title`"))?;
            let description = text("description").ok_or_else(|| fail("needs a `description`"))?;
            let kind = match p.get("type").and_then(Value::as_str) {
                Some("string") => FieldKind::String,
                Some("integer") => FieldKind::Integer,
                _ => return Err(fail("`type` must be string or integer")),
            };
            let int = |name: &str| -> Result<Option<i64>, String> {
                match p.get(name) {
                    None => Ok(None),
                    Some(v) => v
                        .as_i64()
                        .map(Some)
                        .ok_or_else(|| fail(&format!("`{name}` must be a whole number"))),
                }
            };
            let minimum = int("minimum")?;
            let maximum = int("maximum")?;
            let pattern = text("pattern");
            let choices = match p.get("enum") {
                None => None,
                Some(v) => Some(
                    v.as_array()
                        .and_then(|a| {
                            a.iter()
                                .map(|c| c.as_str().map(str::to_owned))
                                .collect::<Option<Vec<_>>>()
                        })
                        .ok_or_else(|| fail("`enum` must list strings"))?,
                ),
            };
            let hint = match text(ERROR_KEYWORD) {
                Some(h) => h,
                None if pattern.is_some() => {
                    return Err(fail(&format!(
                        "a pattern needs `{ERROR_KEYWORD}`: the sentence people see when a value does not match"
                    )))
                }
                None => derived_hint(kind, minimum, maximum, choices.as_deref()),
            };
            let check_default = |v: &Value, what: &str| -> Result<(), String> {
                let instance = Value::Object(Map::from_iter([(key.clone(), v.clone())]));
                if validator.is_valid(&instance) {
                    Ok(())
                } else {
                    Err(fail(&format!("{what} {v} is not accepted by the schema")))
                }
            };
            let default = match (p.get("default"), p.get(DEFAULT_BY_SIZE_KEYWORD)) {
                (Some(_), Some(_)) => {
                    return Err(fail(&format!(
                        "give either `default` or `{DEFAULT_BY_SIZE_KEYWORD}`, not both"
                    )))
                }
                (Some(v), None) => {
                    check_default(v, "the default")?;
                    FieldDefault::Value(v.clone())
                }
                (None, Some(by)) => {
                    let by = by.as_object().ok_or_else(|| {
                        fail(&format!(
                            "`{DEFAULT_BY_SIZE_KEYWORD}` must map sizes to values"
                        ))
                    })?;
                    let sizes: Vec<&str> =
                        berth_domain::Size::ALL.iter().map(|s| s.as_str()).collect();
                    for size in by.keys() {
                        if !sizes.contains(&size.as_str()) {
                            return Err(fail(&format!(
                                "`{DEFAULT_BY_SIZE_KEYWORD}` names unknown size {size:?} (sizes: {})",
                                sizes.join(", ")
                            )));
                        }
                    }
                    let mut out = BTreeMap::new();
                    for size in &sizes {
                        let v = by.get(*size).ok_or_else(|| {
                            fail(&format!(
                                "`{DEFAULT_BY_SIZE_KEYWORD}` has no value for {size}"
                            ))
                        })?;
                        check_default(v, &format!("the {size} default"))?;
                        out.insert((*size).to_owned(), v.clone());
                    }
                    FieldDefault::BySize(out)
                }
                (None, None) => FieldDefault::Chart,
            };
            fields.push(ChangeableField {
                app: app.to_owned(),
                key: key.clone(),
                field: format!("overrides.{app}.{key}"),
                title,
                description,
                kind,
                default,
                minimum,
                maximum,
                pattern,
                choices,
                hint,
            });
        }
        Ok(Self { schema, fields })
    }

    /// Validates one app's overrides (`value` is what was given for the app). Every problem is
    /// reported, once per field.
    pub fn validate(
        &self,
        app: &str,
        value: &Value,
    ) -> Result<Map<String, Value>, Vec<OverrideError>> {
        let Some(given) = value.as_object() else {
            return Err(vec![OverrideError::new(
                format!("overrides.{app}"),
                format!(
                    "Give {app}'s changes as named values, e.g. {{\"{}\": …}}.",
                    self.fields[0].key
                ),
            )]);
        };
        let validator = compile(&self.schema).expect("checked when the blueprint was loaded");
        let mut errors: Vec<OverrideError> = Vec::new();
        let mut push = |e: OverrideError| {
            if !errors.iter().any(|x| x.field == e.field) {
                errors.push(e);
            }
        };
        for error in validator.iter_errors(value) {
            let path: Vec<String> = error
                .instance_path()
                .iter()
                .map(|s| s.to_string())
                .collect();
            match (path.first(), error.kind()) {
                (
                    None,
                    jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected },
                ) => {
                    for key in unexpected {
                        push(unknown_key(app, key));
                    }
                }
                (Some(key), _) => match self.fields.iter().find(|f| &f.key == key) {
                    Some(field) => {
                        push(OverrideError::new(field.field.clone(), field.hint.clone()))
                    }
                    None => push(unknown_key(app, key)),
                },
                (None, _) => push(OverrideError::new(
                    format!("overrides.{app}"),
                    error.to_string(),
                )),
            }
        }
        // The schema refuses unknown keys itself; this keeps the promise if it ever did not.
        for key in given.keys() {
            if !self.fields.iter().any(|f| &f.key == key) {
                push(unknown_key(app, key));
            }
        }
        if errors.is_empty() {
            Ok(given.clone())
        } else {
            errors.sort_by(|a, b| a.field.cmp(&b.field));
            Err(errors)
        }
    }
}

fn unknown_key(app: &str, key: &str) -> OverrideError {
    OverrideError::new(
        format!("overrides.{app}.{key}"),
        format!("{app} has no changeable value '{key}'."),
    )
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::new(schema)
        .map_err(|e| format!("overrides: not a valid JSON Schema (draft 2020-12): {e}"))
}

/// The hint of a value without an `x-berth-error`, from its bounds or choices.
fn derived_hint(
    kind: FieldKind,
    minimum: Option<i64>,
    maximum: Option<i64>,
    choices: Option<&[String]>,
) -> String {
    match (kind, minimum, maximum) {
        (FieldKind::Integer, Some(lo), Some(hi)) => {
            format!("Use a whole number from {lo} to {hi}.")
        }
        (FieldKind::Integer, Some(lo), None) => format!("Use a whole number of at least {lo}."),
        (FieldKind::Integer, None, Some(hi)) => format!("Use a whole number of at most {hi}."),
        (FieldKind::Integer, None, None) => "Use a whole number.".into(),
        (FieldKind::String, ..) => match choices {
            Some(c) if !c.is_empty() => format!("Use one of: {}.", c.join(", ")),
            _ => "Use text.".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(props: Value) -> Value {
        json!({"type": "object", "additionalProperties": false, "properties": props})
    }

    fn parse(props: Value) -> Result<AppSchema, String> {
        AppSchema::parse("a", schema(props), &[])
    }

    #[test]
    fn integer_hint_comes_from_its_bounds() {
        let s = parse(json!({"n": {"title": "N", "description": "d", "type": "integer", "minimum": 1, "maximum": 10, "default": 2}})).unwrap();
        assert_eq!(s.fields[0].hint, "Use a whole number from 1 to 10.");
        assert_eq!(s.fields[0].default, FieldDefault::Value(json!(2)));
    }

    #[test]
    fn schema_rules_are_enforced() {
        let ok = json!({"title": "N", "description": "d", "type": "integer"});
        let mut open = schema(json!({"n": ok}));
        open["additionalProperties"] = json!(true);
        assert!(AppSchema::parse("a", open, &[])
            .unwrap_err()
            .contains("additionalProperties"));
        let cases = [
            (
                json!({"n": {"description": "d", "type": "integer"}}),
                "title",
            ),
            (
                json!({"n": {"title": "N", "type": "integer"}}),
                "description",
            ),
            (
                json!({"n": {"title": "N", "description": "d", "type": "boolean"}}),
                "type",
            ),
            (
                json!({"n": {"title": "N", "description": "d", "type": "string", "pattern": "^a$"}}),
                ERROR_KEYWORD,
            ),
            (
                json!({"n": {"title": "N", "description": "d", "type": "integer", "maximum": 3, "default": 4}}),
                "not accepted",
            ),
            (
                json!({"n": {"title": "N", "description": "d", "type": "integer", "default": 1, DEFAULT_BY_SIZE_KEYWORD: {}}}),
                "not both",
            ),
            (
                json!({"n": {"title": "N", "description": "d", "type": "integer", DEFAULT_BY_SIZE_KEYWORD: {"small": 1, "medium": 2}}}),
                "no value for large",
            ),
            (
                json!({"n": {"title": "N", "description": "d", "type": "integer", DEFAULT_BY_SIZE_KEYWORD: {"small": 1, "medium": 2, "large": 3, "huge": 4}}}),
                "unknown size \"huge\"",
            ),
            (
                json!({"n": {"title": "N", "description": "d", "type": "string", "pattern": "(", ERROR_KEYWORD: "x"}}),
                "not a valid JSON Schema",
            ),
            (json!({}), "at least one value"),
        ];
        for (props, expected) in cases {
            let err = parse(props.clone()).unwrap_err();
            assert!(err.contains(expected), "{props}: {err}");
        }
    }

    #[test]
    fn file_order_is_kept() {
        let p = json!({"b": {"title": "B", "description": "d", "type": "integer"}, "a": {"title": "A", "description": "d", "type": "integer"}});
        let s = AppSchema::parse("x", schema(p), &["b".into(), "a".into()]).unwrap();
        let keys: Vec<&str> = s.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["b", "a"]);
    }
}
