//! What a scene file may say: the layer kinds, the fields each table takes, and what each field
//! holds. The parser checks against it and the error reports draw their hints from it; it
//! depends on neither.

/// The layer kinds, as the file spells them.
pub(crate) const KINDS: &[&str] = &["solid", "gradient", "checker", "image", "text", "pixels"];

/// The fields of the top-level table.
const TOP_FIELDS: &[&str] = &["backdrop", "layers"];
/// The fields each kind takes, on top of those every layer takes.
pub(crate) const KIND_FIELDS: &[(&str, &[&str])] = &[
    ("solid", &["color"]),
    ("gradient", &["from", "to", "direction"]),
    ("checker", &["cell", "colors"]),
    ("image", &["path", "sampling"]),
    ("text", &["text", "size", "color", "align"]),
    ("pixels", &["width", "height", "sampling"]),
];
/// Every field of a layer table.
pub(crate) const LAYER_FIELDS: &[&str] = &[
    "name",
    "kind",
    "rect",
    "opacity",
    "z",
    "animation",
    "transform",
    "color",
    "from",
    "to",
    "direction",
    "cell",
    "colors",
    "path",
    "sampling",
    "text",
    "size",
    "align",
    "width",
    "height",
];
const RECT_FIELDS: &[&str] = &["x", "y", "w", "h"];
const TRANSFORM_FIELDS: &[&str] = &["rotate", "scale"];
const ANIMATION_FIELDS: &[&str] = &["translate", "fade", "rotate", "scroll"];
const TRANSLATE_FIELDS: &[&str] = &["dx", "dy", "period"];
const FADE_FIELDS: &[&str] = &["to", "period"];
const ROTATE_FIELDS: &[&str] = &["degrees", "period"];
const SCROLL_FIELDS: &[&str] = &["dx", "dy", "period"];

/// The keys a table takes, by the keys of its path (array indices left out), for "did you
/// mean" hints on unknown keys.
pub(crate) fn known_fields(keys: &[&str]) -> &'static [&'static str] {
    match keys {
        [] => TOP_FIELDS,
        ["layers"] => LAYER_FIELDS,
        ["layers", "rect"] => RECT_FIELDS,
        ["layers", "transform"] => TRANSFORM_FIELDS,
        ["layers", "animation"] => ANIMATION_FIELDS,
        ["layers", "animation", "translate"] => TRANSLATE_FIELDS,
        ["layers", "animation", "fade"] => FADE_FIELDS,
        ["layers", "animation", "rotate"] => ROTATE_FIELDS,
        ["layers", "animation", "scroll"] => SCROLL_FIELDS,
        _ => &[],
    }
}

/// What a field holds, for hints on values of the wrong type.
pub(crate) fn field_hint(key: &str) -> Option<&'static str> {
    Some(match key {
        "layers" => "layers is an array of tables, each written [[layers]]",
        "name" => "name is a string of letters, digits, `_` and `-`",
        "kind" => "kind is one of \"solid\", \"gradient\", \"checker\", \"image\", \"text\"",
        "rect" => "rect is a table like { x = 0, y = 0, w = \"50%\", h = 120 }",
        "x" | "y" | "w" | "h" | "dx" | "dy" => {
            "a length is whole pixels (120) or a percentage of the output (\"50%\")"
        }
        "opacity" => "opacity is a number from 0 to 1",
        "z" => "z is a whole number; lower values are drawn first",
        "animation" => "animation is a table of translate, fade, rotate and scroll tables",
        "translate" | "fade" | "rotate" | "scroll" => "an animation is a table with a period",
        "period" => "period is a number of seconds, more than 0",
        "degrees" => "degrees is a number of degrees turned per period",
        "color" | "from" | "to" | "backdrop" => "a colour is a string like \"#ff8800\"",
        "colors" => "colors is two colours, like [\"#ffffff\", \"#000000\"]",
        "direction" => "direction is \"horizontal\" or \"vertical\"",
        "cell" => "cell is the side of a checker cell in whole pixels",
        "path" => "path is the PNG file, relative to the scene file",
        "sampling" => "sampling is \"nearest\" or \"linear\"",
        "align" => "align is \"left\", \"center\" or \"right\"",
        "text" => "text is a string",
        "size" => "size is the font size in whole pixels",
        _ => return None,
    })
}
