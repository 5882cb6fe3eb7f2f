//! A scene edited while it is drawn: [`Transaction`]s of added, removed and changed layers,
//! applied to a [`Document`] as a whole or not at all.
//!
//! A document is the scene file's TOML tree with each layer's [slot](super::Layer::slot). A
//! transaction is applied to a copy of the tree, the copy is written out as TOML and parsed
//! again by the scene file's own parser, so an edited scene passes exactly the checks a file
//! does and a bad value gets the file's message, kind and hint. Nothing is kept of a refused
//! transaction: the document it was applied to is unchanged.
//!
//! The fields are the scene file's. A transaction:
//!
//! 1. removes the layers it names (`remove`), freeing their slots;
//! 2. adds layers (`add`), each a whole layer table, after the others, each in the lowest free
//!    slot;
//! 3. changes fields of layers by name (`set`), a layer added in the same transaction
//!    included. A table (`rect`, `animation`) is merged key by key, so `{"rect": {"x": 8}}`
//!    moves a layer and keeps its size; `null` removes a field (back to its default, or off for
//!    an animation); anything else replaces the field.
//!
//! A layer keeps its `z` through the edits of others: a layer without a `z` of its own is
//! stacked by its place in the file, so before an edit each such layer is given its current
//! `z` explicitly, and removing a layer before it does not restack it.
//!
//! Transactions are written in JSON ([`Transaction::from_json`]) by `triptych run --control`
//! and may be built in code ([`Transaction::set`], [`Transaction::add_layer`],
//! [`Transaction::remove`]).

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use toml::{Table, Value};

use super::error::ErrorKind;
use super::parse::{self, Origin};
use super::Scene;
use crate::MAX_LAYERS;

/// The most changes (layers removed, added or changed) one transaction may make.
pub const MAX_CHANGES: usize = 256;

/// The longest transaction, in bytes of JSON.
pub const MAX_TRANSACTION_BYTES: usize = 64 * 1024;

/// Changes to a scene that appear together, in one frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transaction {
    remove: Vec<String>,
    add: Vec<Json>,
    set: Vec<(String, Json)>,
}

impl Transaction {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes the layer named `name`.
    pub fn remove(mut self, name: impl Into<String>) -> Self {
        self.remove.push(name.into());
        self
    }

    /// Adds `layer`, a whole layer as a scene file writes it (`name`, `kind`, `rect`, ...).
    pub fn add_layer(mut self, layer: Json) -> Self {
        self.add.push(layer);
        self
    }

    /// Changes the fields `fields` (an object of the scene file's field names) of the layer
    /// named `name`.
    pub fn set(mut self, name: impl Into<String>, fields: Json) -> Self {
        self.set.push((name.into(), fields));
        self
    }

    /// How many layers it removes, adds and changes.
    pub fn len(&self) -> usize {
        self.remove.len() + self.add.len() + self.set.len()
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads a transaction from a JSON object: `{"remove": [NAME, ...], "add": [LAYER, ...],
    /// "set": {NAME: FIELDS, ...}}`, each part optional. Other keys of the object are left to
    /// the caller (a request id, a view) and returned.
    pub fn from_json(value: &Json) -> Result<(Self, serde_json::Map<String, Json>), EditError> {
        let Json::Object(obj) = value else {
            return Err(EditError::new(
                EditKind::Malformed,
                "",
                format!("a transaction is a JSON object, not {}", json_kind(value)),
            )
            .hint(r#"write {"set": {"title": {"text": "hello"}}}"#));
        };
        let mut tx = Transaction::new();
        let mut rest = serde_json::Map::new();
        for (key, v) in obj {
            match key.as_str() {
                "remove" => {
                    let Json::Array(names) = v else {
                        return Err(EditError::new(
                            EditKind::Malformed,
                            "remove",
                            format!("expected an array of layer names, found {}", json_kind(v)),
                        ));
                    };
                    for (i, n) in names.iter().enumerate() {
                        let Json::String(n) = n else {
                            return Err(EditError::new(
                                EditKind::Malformed,
                                format!("remove[{i}]"),
                                format!("expected a layer name, found {}", json_kind(n)),
                            ));
                        };
                        tx.remove.push(n.clone());
                    }
                }
                "add" => {
                    let Json::Array(layers) = v else {
                        return Err(EditError::new(
                            EditKind::Malformed,
                            "add",
                            format!("expected an array of layers, found {}", json_kind(v)),
                        ));
                    };
                    tx.add.extend(layers.iter().cloned());
                }
                "set" => {
                    let Json::Object(layers) = v else {
                        return Err(EditError::new(
                            EditKind::Malformed,
                            "set",
                            format!(
                                "expected an object of layer names and their fields, found {}",
                                json_kind(v)
                            ),
                        ));
                    };
                    for (name, fields) in layers {
                        tx.set.push((name.clone(), fields.clone()));
                    }
                }
                _ => {
                    rest.insert(key.clone(), v.clone());
                }
            }
        }
        Ok((tx, rest))
    }
}

/// Which rule a refused transaction broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EditKind {
    /// Not a transaction: not JSON, not an object, or a part of the wrong shape.
    Malformed,
    /// It names a layer the scene does not have.
    UnknownLayer,
    /// More changes than [`MAX_CHANGES`], or more bytes than [`MAX_TRANSACTION_BYTES`].
    TooBig,
    /// The edited scene breaks a rule of the scene file, which [`ErrorKind`] names.
    Scene(ErrorKind),
    /// The edited scene breaks a limit of the run it is drawn in (its size, the memory of its
    /// layers); the caller says which.
    Limit,
}

/// A refused transaction: which field, what is wrong, and what to do about it. Displays as
/// `FIELD: MESSAGE; hint: HINT`, the field named by layer (`title.opacity`) or by the part of
/// the transaction (`remove[0]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditError {
    /// Which rule was broken.
    pub kind: EditKind,
    /// The field, like `title.opacity`; empty for the transaction as a whole.
    pub field: String,
    /// What is wrong, naming the value.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl EditError {
    /// A refusal of `kind` at `field`.
    pub fn new(kind: EditKind, field: impl Into<String>, message: impl Into<String>) -> Self {
        EditError {
            kind,
            field: field.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// With a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for EditError {}

/// Where a document's text came from, which decides how its image paths resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Home {
    /// A file: image paths are relative to its directory.
    File(PathBuf),
    /// The built-in scene: image paths name its embedded images.
    Builtin,
}

/// A scene as it can be edited: its TOML tree, the slot of each layer, and the scene itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    tree: Table,
    home: Home,
    scene: Scene,
    text: String,
}

impl Document {
    /// The document of the scene file `text` read from `file` (a bad file is its
    /// [`super::SceneError`]).
    pub fn parse(text: &str, file: &Path) -> Result<Self, super::SceneError> {
        let scene = Scene::parse(text, file)?;
        Ok(Self::of(text, Home::File(file.to_path_buf()), scene))
    }

    /// The document of the built-in scene.
    pub fn builtin() -> Self {
        Self::of(super::DEFAULT_SCENE, Home::Builtin, super::default_scene())
    }

    fn of(text: &str, home: Home, scene: Scene) -> Self {
        // The text parsed as a scene, so it is a table.
        let tree = text.parse::<Table>().unwrap_or_default();
        Document {
            tree,
            home,
            scene,
            text: text.to_owned(),
        }
    }

    /// The scene.
    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    /// The scene's text: what the file said, or after an edit the edited tree written out.
    /// Parsed with [`Document::file`] as the file name, it is [`Document::scene`] but for the
    /// layers' slots ([`Document::slots`]).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The name the scene's errors are reported under.
    pub fn file(&self) -> &Path {
        match &self.home {
            Home::File(p) => p,
            Home::Builtin => Path::new(super::DEFAULT_SCENE_NAME),
        }
    }

    /// Each layer's slot, in the order of the scene's layers.
    pub fn slots(&self) -> Vec<u32> {
        self.scene.layers.iter().map(|l| l.slot).collect()
    }

    /// The document with `tx` applied, or why it was refused (this one is never changed).
    pub fn apply(&self, tx: &Transaction) -> Result<Document, EditError> {
        if tx.len() > MAX_CHANGES {
            return Err(EditError::new(
                EditKind::TooBig,
                "",
                format!(
                    "{} changes, more than the {MAX_CHANGES} of one transaction",
                    tx.len()
                ),
            )
            .hint("split it into several transactions"));
        }
        let mut tree = self.tree.clone();
        let mut layers: Vec<Table> = match tree.remove("layers") {
            Some(Value::Array(a)) => a
                .into_iter()
                .filter_map(|v| match v {
                    Value::Table(t) => Some(t),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut slots = self.slots();
        // Each layer keeps its stacking, whatever happens to the layers before it.
        for (t, l) in layers.iter_mut().zip(&self.scene.layers) {
            t.entry("z").or_insert(Value::Integer(i64::from(l.z)));
        }
        let name_of = |t: &Table| t.get("name").and_then(Value::as_str).map(str::to_owned);
        for (i, name) in tx.remove.iter().enumerate() {
            let Some(at) = layers
                .iter()
                .position(|t| name_of(t).as_deref() == Some(name))
            else {
                return Err(unknown(format!("remove[{i}]"), name, &layers));
            };
            layers.remove(at);
            slots.remove(at);
        }
        for (i, layer) in tx.add.iter().enumerate() {
            let field = format!("add[{i}]");
            let Value::Table(t) = to_toml(layer, &field)? else {
                return Err(EditError::new(
                    EditKind::Malformed,
                    field,
                    format!("a layer is an object, not {}", json_kind(layer)),
                ));
            };
            let Some(free) = (0..MAX_LAYERS).find(|s| !slots.contains(s)) else {
                return Err(EditError::new(
                    EditKind::Scene(ErrorKind::TooManyLayers),
                    field,
                    format!("the scene has {MAX_LAYERS} layers already, the most it may"),
                )
                .hint("remove a layer in the same transaction first"));
            };
            layers.push(t);
            slots.push(free);
        }
        for (name, fields) in &tx.set {
            let Some(at) = layers
                .iter()
                .position(|t| name_of(t).as_deref() == Some(name))
            else {
                return Err(unknown(format!("set.{name}"), name, &layers));
            };
            let Json::Object(fields) = fields else {
                return Err(EditError::new(
                    EditKind::Malformed,
                    format!("set.{name}"),
                    format!("expected an object of fields, found {}", json_kind(fields)),
                ));
            };
            merge(&mut layers[at], fields, &format!("set.{name}"))?;
        }
        let names: Vec<String> = layers
            .iter()
            .enumerate()
            .map(|(i, t)| name_of(t).unwrap_or_else(|| format!("layers[{i}]")))
            .collect();
        tree.insert(
            "layers".into(),
            Value::Array(layers.into_iter().map(Value::Table).collect()),
        );
        let text = toml::to_string(&tree).map_err(|e| {
            EditError::new(
                EditKind::Malformed,
                "",
                format!("the edited scene cannot be written: {e}"),
            )
        })?;
        let origin = match &self.home {
            Home::File(p) => Origin::File(p),
            Home::Builtin => Origin::Builtin,
        };
        let mut scene = parse::parse(&text, self.file(), origin).map_err(|e| {
            // `layers[2].opacity` is named by the layer: `title.opacity`.
            let field = match e
                .field
                .strip_prefix("layers[")
                .and_then(|r| r.split_once(']'))
            {
                Some((i, rest)) => match i.parse::<usize>().ok().and_then(|i| names.get(i)) {
                    Some(n) => format!("{n}{rest}"),
                    None => e.field.clone(),
                },
                None => e.field.clone(),
            };
            EditError {
                kind: EditKind::Scene(e.kind),
                field,
                message: e.message,
                hint: e.hint,
            }
        })?;
        for (l, slot) in scene.layers.iter_mut().zip(&slots) {
            l.slot = *slot;
        }
        Ok(Document {
            tree,
            home: self.home.clone(),
            scene,
            text,
        })
    }
}

fn unknown(field: String, name: &str, layers: &[Table]) -> EditError {
    let names: Vec<&str> = layers
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .collect();
    EditError::new(
        EditKind::UnknownLayer,
        field,
        format!("the scene has no layer named {name:?}"),
    )
    .hint(format!("its layers are {}", names.join(", ")))
}

/// Merges `fields` into `table`: tables key by key, `null` removing.
fn merge(
    table: &mut Table,
    fields: &serde_json::Map<String, Json>,
    path: &str,
) -> Result<(), EditError> {
    for (key, v) in fields {
        let field = format!("{path}.{key}");
        match v {
            Json::Null => {
                table.remove(key);
            }
            Json::Object(inner) => match table.get_mut(key) {
                Some(Value::Table(t)) => merge(t, inner, &field)?,
                _ => {
                    let mut t = Table::new();
                    merge(&mut t, inner, &field)?;
                    table.insert(key.clone(), Value::Table(t));
                }
            },
            _ => {
                table.insert(key.clone(), to_toml(v, &field)?);
            }
        }
    }
    Ok(())
}

/// `v` as a TOML value; `null` has none.
fn to_toml(v: &Json, field: &str) -> Result<Value, EditError> {
    Ok(match v {
        Json::Null => {
            return Err(EditError::new(
                EditKind::Malformed,
                field,
                "null is only for removing a field of a layer in `set`",
            ))
        }
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Integer(i),
            (None, Some(f)) => Value::Float(f),
            (None, None) => {
                return Err(EditError::new(
                    EditKind::Scene(ErrorKind::OutOfRange),
                    field,
                    format!("{n} is out of range"),
                ))
            }
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| to_toml(v, &format!("{field}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(o) => {
            let mut t = Table::new();
            for (k, v) in o {
                t.insert(k.clone(), to_toml(v, &format!("{field}.{k}"))?);
            }
            Value::Table(t)
        }
    })
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCENE: &str = r##"
[[layers]]
name = "back"
kind = "solid"
color = "#203040"
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "title"
kind = "text"
text = "12:00:00"
rect = { x = 10, y = 10, w = 120, h = 30 }

[[layers]]
name = "dot"
kind = "solid"
color = "#ff0000"
rect = { x = 50, y = 50, w = 8, h = 8 }
"##;

    fn doc() -> Document {
        Document::parse(SCENE, Path::new("s.toml")).expect("parses")
    }

    fn layer<'a>(d: &'a Document, name: &str) -> &'a super::super::Layer {
        d.scene()
            .layers
            .iter()
            .find(|l| l.name == name)
            .expect("layer")
    }

    #[test]
    fn set_changes_a_field_and_keeps_the_rest() {
        let d = doc();
        let e = d
            .apply(&Transaction::new().set("title", json!({"text": "12:00:01", "rect": {"x": 20}})))
            .expect("applies");
        let t = layer(&e, "title");
        assert!(
            matches!(&t.content, super::super::Content::Text { text, .. } if text == "12:00:01")
        );
        assert_eq!(t.rect.x, super::super::Length::Px(20));
        assert_eq!(t.rect.w, super::super::Length::Px(120));
        assert_eq!(t.slot, 1);
        assert_eq!(e.slots(), d.slots());
    }

    #[test]
    fn remove_frees_a_slot_that_add_takes_and_others_keep_theirs_and_their_z() {
        let d = doc();
        let e = d
            .apply(&Transaction::new().remove("title").add_layer(json!({
                "name": "new", "kind": "solid", "color": "#00ff00",
                "rect": {"x": 0, "y": 0, "w": 4, "h": 4}
            })))
            .expect("applies");
        assert_eq!(layer(&e, "dot").slot, 2);
        assert_eq!(layer(&e, "dot").z, 2);
        assert_eq!(layer(&e, "new").slot, 1);
        let states = e.scene().state_at(0, 64, 64);
        assert_eq!(
            states.iter().map(|s| s.index).collect::<Vec<_>>(),
            vec![0, 2, 1]
        );
    }

    #[test]
    fn a_refused_transaction_names_the_field_by_layer_and_changes_nothing() {
        let d = doc();
        let before = d.clone();
        let err = d
            .apply(
                &Transaction::new()
                    .set("dot", json!({"color": "#ff0"}))
                    .set("title", json!({"opacity": 1.7})),
            )
            .expect_err("refused");
        assert_eq!(err.kind, EditKind::Scene(ErrorKind::OutOfRange));
        assert_eq!(err.field, "title.opacity");
        assert_eq!(d, before);
        let err = d
            .apply(&Transaction::new().set("nope", json!({"text": "x"})))
            .expect_err("refused");
        assert_eq!(err.kind, EditKind::UnknownLayer);
        assert!(err.to_string().contains("back, title, dot"), "{err}");
        let err = d
            .apply(&Transaction::new().remove("nope"))
            .expect_err("refused");
        assert_eq!(
            (err.kind, err.field.as_str()),
            (EditKind::UnknownLayer, "remove[0]")
        );
        let err = d
            .apply(&Transaction::new().set("dot", json!({"cell": 4})))
            .expect_err("refused");
        assert_eq!(err.kind, EditKind::Scene(ErrorKind::FieldNotForKind));
        let err = d
            .apply(&Transaction::new().add_layer(json!({"name": "dot", "kind": "solid", "color": "#fff", "rect": {"x": 0, "y": 0, "w": 1, "h": 1}})))
            .expect_err("refused");
        assert_eq!(err.kind, EditKind::Scene(ErrorKind::DuplicateName));
    }

    #[test]
    fn a_ninth_layer_is_refused() {
        let mut tx = Transaction::new();
        for i in 0..6 {
            tx = tx.add_layer(json!({"name": format!("l{i}"), "kind": "solid", "rect": {"x": 0, "y": 0, "w": 1, "h": 1}}));
        }
        let err = doc().apply(&tx).expect_err("nine layers");
        assert_eq!(err.kind, EditKind::Scene(ErrorKind::TooManyLayers));
        assert_eq!(err.field, "add[5]");
    }

    #[test]
    fn json_reads_every_part_and_leaves_the_rest() {
        let v = json!({"set": {"title": {"text": "a"}}, "remove": ["dot"], "id": 7});
        let (tx, rest) = Transaction::from_json(&v).expect("reads");
        assert_eq!(tx.len(), 2);
        assert_eq!(rest.get("id"), Some(&json!(7)));
        let e = doc().apply(&tx).expect("applies");
        assert_eq!(e.scene().layers.len(), 2);
        let err = Transaction::from_json(&json!({"remove": "dot"})).expect_err("not an array");
        assert_eq!(
            (err.kind, err.field.as_str()),
            (EditKind::Malformed, "remove")
        );
    }

    #[test]
    fn an_edited_text_parses_to_the_same_scene() {
        let e = doc()
            .apply(&Transaction::new().remove("back"))
            .expect("applies");
        let again = Scene::parse(e.text(), e.file()).expect("parses");
        assert_eq!(again.layers.len(), e.scene().layers.len());
        for (a, b) in again.layers.iter().zip(&e.scene().layers) {
            assert_eq!((&a.name, &a.content, a.z), (&b.name, &b.content, b.z));
        }
    }
}
