//! Whole scene files, good and bad: the built-in scene parses, and every rule a file can break
//! gets its own [`ErrorKind`], field, position and hint.

use std::path::{Path, PathBuf};

use super::*;

/// A valid layer to build bad files around.
const GOOD: &str = r##"[[layers]]
name = "a"
kind = "solid"
rect = { x = 0, y = 0, w = 10, h = 10 }
color = "#ff0000"
"##;

fn parse(text: &str) -> Result<Scene, SceneError> {
    Scene::parse(text, Path::new("scene.toml"))
}

/// Parses `text`, which must fail with `kind` at `field`, line `line`, column `column`;
/// returns the error for further checks.
#[track_caller]
fn fails(text: &str, kind: ErrorKind, field: &str, line: usize, column: usize) -> SceneError {
    let err = match parse(text) {
        Ok(scene) => panic!("parsed, expected {kind:?}: {scene:?}\n{text}"),
        Err(e) => e,
    };
    assert_eq!(
        (err.kind, err.field.as_str(), err.line, err.column),
        (kind, field, line, column),
        "{err}\n{text}"
    );
    assert_eq!(err.file, PathBuf::from("scene.toml"));
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("scene.toml:{line}:{column}: ")),
        "{shown}"
    );
    if !field.is_empty() {
        assert!(shown.contains(&format!(": {field}: ")), "{shown}");
    }
    err
}

fn hint(err: &SceneError) -> &str {
    err.hint.as_deref().unwrap_or("")
}

#[test]
fn the_default_scene_parses_and_shows_every_kind() {
    let scene = parse::parse(
        DEFAULT_SCENE,
        Path::new(DEFAULT_SCENE_NAME),
        parse::Origin::Builtin,
    );
    let scene = match scene {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(scene, default_scene());
    let mut kinds: Vec<&str> = scene.layers.iter().map(|l| l.content.kind_name()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["checker", "gradient", "image", "solid", "text"]);
    let anims = |f: fn(&Animation) -> bool| scene.layers.iter().any(|l| f(&l.animation));
    assert!(anims(|a| a.translate.is_some()));
    assert!(anims(|a| a.fade.is_some()));
    assert!(anims(|a| a.rotate.is_some()));
    assert!(anims(|a| a.scroll.is_some()));
    // Its image is embedded, and decodes.
    for layer in &scene.layers {
        if let Content::Image {
            source: ImageSource::Builtin { bytes, .. },
            ..
        } = &layer.content
        {
            let img = decode_png_bytes(bytes, &ImageLimits::default()).expect("decodes");
            assert_eq!((img.width, img.height), (16, 16));
        }
    }
}

#[test]
fn the_example_in_the_docs_parses() {
    let docs = include_str!("mod.rs");
    let example: String = docs
        .lines()
        .skip_while(|l| !l.starts_with("//! ```toml"))
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
        .collect();
    assert!(example.contains("[[layers]]"), "{example}");
    let scene = parse(&example).expect("the documented example parses");
    assert_eq!(scene.layers.len(), 2);
}

#[test]
fn a_full_file_parses_into_the_model() {
    let text = r##"
backdrop = "#000"

[[layers]]
name = "grad"
kind = "gradient"
rect = { x = "-12.5%", y = "1px", w = "100%", h = 20 }
from = "#ff000080"
to = "#00f"

[[layers]]
name = "img"
kind = "image"
path = "pics/logo.png"
sampling = "linear"
rect = { x = 1, y = 2, w = 3, h = 4 }
opacity = 0.5
z = -3

[layers.animation]
translate = { dx = 5, dy = "10%", period = 0.5 }
fade = { to = 0, period = 1 }
rotate = { degrees = -90, period = 2 }
scroll = { dx = 1, period = 0.1 }

[[layers]]
name = "words"
kind = "text"
rect = { x = 0, y = 0, w = 1, h = 1 }
text = "héllo"
"##;
    let scene = Scene::parse(text, Path::new("/home/u/scenes/demo.toml")).expect("parses");
    assert_eq!(scene.backdrop, [0, 0, 0, 255]);
    let [grad, img, words] = scene.layers.as_slice() else {
        panic!("three layers: {scene:?}");
    };
    assert_eq!(
        grad.rect,
        RectSpec {
            x: Length::Percent(-1250),
            y: Length::Px(1),
            w: Length::Percent(10_000),
            h: Length::Px(20)
        }
    );
    assert_eq!(
        grad.content,
        Content::Gradient {
            from: [128, 0, 0, 128],
            to: [0, 0, 255, 255],
            direction: Direction::Horizontal
        }
    );
    assert_eq!((grad.opacity, grad.z), (255, 0));
    assert_eq!(
        img.content,
        Content::Image {
            source: ImageSource::File(PathBuf::from("/home/u/scenes/pics/logo.png")),
            sampling: Sampling::Linear
        }
    );
    assert_eq!((img.opacity, img.z), (128, -3));
    assert_eq!(
        img.animation,
        Animation {
            translate: Some(Translate {
                dx: Length::Px(5),
                dy: Length::Percent(1000),
                period: 30
            }),
            fade: Some(Fade { to: 0, period: 60 }),
            rotate: Some(Rotate {
                millidegrees: -90_000,
                period: 120
            }),
            scroll: Some(Scroll {
                dx: 1,
                dy: 0,
                period: 6
            }),
        }
    );
    assert_eq!(
        words.content,
        Content::Text {
            text: "héllo".into(),
            size: 16,
            color: [255, 255, 255, 255],
            align: crate::text::Align::Left,
        }
    );
    assert_eq!(words.z, 2, "z defaults to the file index");
}

#[test]
fn syntax_errors_name_the_position() {
    let err = fails(
        "[[layers]]\nname = \"a\"\nkind = solid\n",
        ErrorKind::Syntax,
        "",
        3,
        8,
    );
    assert!(hint(&err).contains("toml.io"), "{err}");
}

#[test]
fn unknown_kind_suggests_the_nearest() {
    let text = GOOD.replace("kind = \"solid\"", "kind = \"gradinet\"");
    let err = fails(&text, ErrorKind::UnknownKind, "layers[0].kind", 3, 8);
    assert_eq!(
        err.to_string(),
        "scene.toml:3:8: layers[0].kind: unknown kind \"gradinet\"; hint: did you mean \"gradient\"?"
    );
    let text = GOOD.replace("kind = \"solid\"", "kind = \"video\"");
    let err = fails(&text, ErrorKind::UnknownKind, "layers[0].kind", 3, 8);
    assert!(hint(&err).contains("`solid`, `gradient`"), "{err}");
}

#[test]
fn opacity_out_of_range() {
    let text = format!("{GOOD}{GOOD}{GOOD}")
        .replacen("name = \"a\"", "name = \"b\"", 2)
        .replacen("name = \"b\"", "name = \"c\"", 1);
    let text = format!("{text}opacity = 1.7\n");
    let err = fails(&text, ErrorKind::OutOfRange, "layers[2].opacity", 16, 11);
    assert_eq!(
        err.to_string(),
        "scene.toml:16:11: layers[2].opacity: 1.7 is out of range; \
         hint: opacity is a number from 0 to 1"
    );
    fails(
        &format!("{GOOD}opacity = -0.1\n"),
        ErrorKind::OutOfRange,
        "layers[0].opacity",
        6,
        11,
    );
    fails(
        &format!("{GOOD}opacity = nan\n"),
        ErrorKind::OutOfRange,
        "layers[0].opacity",
        6,
        11,
    );
}

#[test]
fn missing_fields_point_at_their_layer() {
    let text = GOOD.replace("rect = { x = 0, y = 0, w = 10, h = 10 }\n", "");
    let err = fails(&text, ErrorKind::MissingField, "layers[0].rect", 1, 1);
    assert_eq!(err.message, "missing field `rect`");
    assert!(hint(&err).contains("rect = {"), "{err}");
    fails(
        &GOOD.replace("name = \"a\"\n", ""),
        ErrorKind::MissingField,
        "layers[0].name",
        1,
        1,
    );
    fails(
        &GOOD.replace("kind = \"solid\"\n", ""),
        ErrorKind::MissingField,
        "layers[0].kind",
        1,
        1,
    );
    fails(
        &GOOD.replace("color = \"#ff0000\"\n", ""),
        ErrorKind::MissingField,
        "layers[0].color",
        1,
        1,
    );
    // A rect without a height points at the rect.
    let err = fails(
        &GOOD.replace(", h = 10 }", " }"),
        ErrorKind::MissingField,
        "layers[0].rect.h",
        4,
        8,
    );
    assert!(hint(&err).contains("x, y, w and h"), "{err}");
    let err = fails(
        &format!("{GOOD}animation.fade = {{ period = 1 }}\n"),
        ErrorKind::MissingField,
        "layers[0].animation.fade.to",
        6,
        18,
    );
    assert!(hint(&err).contains("to = OPACITY"), "{err}");
    fails(
        &format!("{GOOD}animation.fade = {{ to = 1 }}\n"),
        ErrorKind::MissingField,
        "layers[0].animation.fade.period",
        6,
        18,
    );
}

#[test]
fn unknown_fields_suggest_the_nearest() {
    let err = fails(
        &format!("{GOOD}colour = \"#fff\"\n"),
        ErrorKind::UnknownField,
        "layers[0].colour",
        6,
        1,
    );
    assert_eq!(err.message, "unknown field `colour`");
    assert_eq!(hint(&err), "did you mean `color`?");
    let err = fails(
        &format!("{GOOD}blur = 3\n"),
        ErrorKind::UnknownField,
        "layers[0].blur",
        6,
        1,
    );
    assert!(hint(&err).contains("`opacity`"), "{err}");
    // In nested tables and at the top level too.
    let err = fails(
        &GOOD.replace("h = 10", "hieght = 10"),
        ErrorKind::UnknownField,
        "layers[0].rect.hieght",
        4,
        32,
    );
    assert_eq!(hint(&err), "did you mean `h`?");
    let err = fails(
        &format!("{GOOD}animation.fade = {{ to = 1, perod = 2 }}\n"),
        ErrorKind::UnknownField,
        "layers[0].animation.fade.perod",
        6,
        28,
    );
    assert_eq!(hint(&err), "did you mean `period`?");
    let err = fails(
        &format!("backdrops = \"#000\"\n{GOOD}"),
        ErrorKind::UnknownField,
        "backdrops",
        1,
        1,
    );
    assert_eq!(hint(&err), "did you mean `backdrop`?");
}

#[test]
fn fields_of_another_kind_are_refused() {
    let err = fails(
        &format!("{GOOD}cell = 4\n"),
        ErrorKind::FieldNotForKind,
        "layers[0].cell",
        6,
        8,
    );
    assert_eq!(err.message, "`cell` does not apply to a solid layer");
    assert_eq!(hint(&err), "a solid layer takes `color`");
    let err = fails(
        &format!("{GOOD}animation.scroll = {{ dx = 1, period = 1 }}\n"),
        ErrorKind::FieldNotForKind,
        "layers[0].animation.scroll",
        6,
        20,
    );
    assert!(hint(&err).contains("checker and image"), "{err}");
}

#[test]
fn zero_periods_are_refused() {
    let err = fails(
        &format!("{GOOD}animation.rotate = {{ period = 0 }}\n"),
        ErrorKind::ZeroPeriod,
        "layers[0].animation.rotate.period",
        6,
        31,
    );
    assert!(hint(&err).contains("at least one frame"), "{err}");
    // Shorter than a frame rounds to zero frames: the same rule.
    fails(
        &format!("{GOOD}animation.rotate = {{ period = 0.001 }}\n"),
        ErrorKind::ZeroPeriod,
        "layers[0].animation.rotate.period",
        6,
        31,
    );
    fails(
        &format!("{GOOD}animation.rotate = {{ period = -1 }}\n"),
        ErrorKind::OutOfRange,
        "layers[0].animation.rotate.period",
        6,
        31,
    );
    fails(
        &format!("{GOOD}animation.rotate = {{ period = inf }}\n"),
        ErrorKind::OutOfRange,
        "layers[0].animation.rotate.period",
        6,
        31,
    );
}

#[test]
fn too_many_layers() {
    let mut text = String::new();
    for i in 0..9 {
        text.push_str(&GOOD.replace("name = \"a\"", &format!("name = \"l{i}\"")));
    }
    let err = fails(&text, ErrorKind::TooManyLayers, "layers[8]", 41, 1);
    assert!(err.message.contains("at most 8"), "{err}");
    // Eight is fine.
    let eight: String = text.lines().take(40).collect::<Vec<_>>().join("\n");
    assert_eq!(parse(&eight).expect("eight layers").layers.len(), 8);
}

#[test]
fn no_layers() {
    let err = fails("backdrop = \"#000\"\n", ErrorKind::NoLayers, "layers", 1, 1);
    assert!(hint(&err).contains("[[layers]]"), "{err}");
    fails("layers = []\n", ErrorKind::NoLayers, "layers", 1, 10);
}

#[test]
fn duplicate_names() {
    let text = format!("{GOOD}{GOOD}");
    let err = fails(&text, ErrorKind::DuplicateName, "layers[1].name", 7, 8);
    assert!(err.message.contains("layers[0]"), "{err}");
}

#[test]
fn bad_names() {
    for name in ["", "two words", "ünïcode", &"x".repeat(33)] {
        let text = GOOD.replace("name = \"a\"", &format!("name = {name:?}"));
        fails(&text, ErrorKind::BadName, "layers[0].name", 2, 8);
    }
}

#[test]
fn wrong_types_get_the_fields_hint() {
    let err = fails(
        &format!("{GOOD}opacity = \"high\"\n"),
        ErrorKind::WrongType,
        "layers[0].opacity",
        6,
        11,
    );
    assert_eq!(hint(&err), "opacity is a number from 0 to 1");
    assert_eq!(
        err.message,
        "invalid type: string \"high\", expected a number"
    );
    let err = fails(
        &format!("{GOOD}z = 1.5\n"),
        ErrorKind::WrongType,
        "layers[0].z",
        6,
        5,
    );
    assert!(hint(&err).starts_with("z is a whole number"), "{err}");
    let err = fails(
        &GOOD
            .replace("kind = \"solid\"", "kind = \"checker\"")
            .replace("color = \"#ff0000\"", "colors = [\"#000\", 3]"),
        ErrorKind::WrongType,
        "layers[0].colors[1]",
        5,
        19,
    );
    assert!(hint(&err).starts_with("colors is two colours"), "{err}");
    fails("layers = 3\n", ErrorKind::WrongType, "layers", 1, 10);
}

#[test]
fn bad_colours() {
    let err = fails(
        &GOOD.replace("#ff0000", "red"),
        ErrorKind::BadColor,
        "layers[0].color",
        5,
        9,
    );
    assert!(hint(&err).contains("#rrggbb"), "{err}");
    let checker = GOOD
        .replace("kind = \"solid\"", "kind = \"checker\"")
        .replace("color = \"#ff0000\"", "colors = [\"#000\", \"#00g\"]");
    fails(&checker, ErrorKind::BadColor, "layers[0].colors[1]", 5, 19);
    let one = checker.replace(", \"#00g\"", "");
    fails(&one, ErrorKind::OutOfRange, "layers[0].colors", 5, 10);
    let err = fails(
        &format!("backdrop = \"#0008\"\n{GOOD}"),
        ErrorKind::OutOfRange,
        "backdrop",
        1,
        12,
    );
    assert!(err.message.contains("not opaque"), "{err}");
}

#[test]
fn bad_lengths() {
    let err = fails(
        &GOOD.replace("w = 10", "w = \"wide\""),
        ErrorKind::BadLength,
        "layers[0].rect.w",
        4,
        28,
    );
    assert!(hint(&err).contains("\"50%\""), "{err}");
    fails(
        &GOOD.replace("w = 10", "w = 10.5"),
        ErrorKind::BadLength,
        "layers[0].rect.w",
        4,
        28,
    );
    fails(
        &GOOD.replace("w = 10", "w = 0"),
        ErrorKind::OutOfRange,
        "layers[0].rect.w",
        4,
        28,
    );
    fails(
        &GOOD.replace("w = 10", "w = \"0%\""),
        ErrorKind::OutOfRange,
        "layers[0].rect.w",
        4,
        28,
    );
    fails(
        &GOOD.replace("w = 10", "w = \"101%\""),
        ErrorKind::OutOfRange,
        "layers[0].rect.w",
        4,
        28,
    );
    fails(
        &GOOD.replace("x = 0", "x = 99999"),
        ErrorKind::OutOfRange,
        "layers[0].rect.x",
        4,
        14,
    );
    fails(
        &format!("{GOOD}animation.translate = {{ dx = \"5 %%\", period = 1 }}\n"),
        ErrorKind::BadLength,
        "layers[0].animation.translate.dx",
        6,
        30,
    );
}

#[test]
fn unknown_values_suggest_the_nearest() {
    let gradient = GOOD
        .replace("kind = \"solid\"", "kind = \"gradient\"")
        .replace(
            "color = \"#ff0000\"",
            "from = \"#000\"\nto = \"#fff\"\ndirection = \"vertcal\"",
        );
    let err = fails(
        &gradient,
        ErrorKind::UnknownValue,
        "layers[0].direction",
        7,
        13,
    );
    assert_eq!(hint(&err), "did you mean \"vertical\"?");
}

#[test]
fn other_ranges() {
    let checker = GOOD
        .replace("kind = \"solid\"", "kind = \"checker\"")
        .replace(
            "color = \"#ff0000\"",
            "colors = [\"#000\", \"#fff\"]\ncell = 0",
        );
    fails(&checker, ErrorKind::OutOfRange, "layers[0].cell", 6, 8);
    fails(
        &format!("{GOOD}z = 2000000\n"),
        ErrorKind::OutOfRange,
        "layers[0].z",
        6,
        5,
    );
    let text = GOOD
        .replace("kind = \"solid\"", "kind = \"text\"")
        .replace("color = \"#ff0000\"", "text = \"a\\tb\"");
    fails(&text, ErrorKind::OutOfRange, "layers[0].text", 5, 8);
    fails(
        &format!("{GOOD}animation.rotate = {{ degrees = 1e9, period = 1 }}\n"),
        ErrorKind::OutOfRange,
        "layers[0].animation.rotate.degrees",
        6,
        32,
    );
    fails(
        &format!("{GOOD}transform = {{ scale = 9 }}\n"),
        ErrorKind::OutOfRange,
        "layers[0].transform.scale",
        6,
        23,
    );
    fails(
        &format!("{GOOD}transform = {{ rotate = 1e9 }}\n"),
        ErrorKind::OutOfRange,
        "layers[0].transform.rotate",
        6,
        24,
    );
}

#[test]
fn image_paths() {
    let image = GOOD
        .replace("kind = \"solid\"", "kind = \"image\"")
        .replace("color = \"#ff0000\"", "path = \"\"");
    fails(&image, ErrorKind::BadImagePath, "layers[0].path", 5, 8);
    let image = image.replace("path = \"\"", "path = \"a.png\"");
    // Built-in scenes may only name the embedded images.
    let err = match parse::parse(
        &image,
        Path::new(DEFAULT_SCENE_NAME),
        parse::Origin::Builtin,
    ) {
        Ok(s) => panic!("{s:?}"),
        Err(e) => e,
    };
    assert_eq!(err.kind, ErrorKind::BadImagePath);
    assert!(hint(&err).contains("tile.png"), "{err}");
    // A file-based scene resolves relative to its directory.
    let scene = Scene::parse(&image, Path::new("dir/scene.toml")).expect("parses");
    assert_eq!(
        scene.layers[0].content,
        Content::Image {
            source: ImageSource::File(PathBuf::from("dir/a.png")),
            sampling: Sampling::Nearest
        }
    );
}

#[test]
fn columns_count_characters() {
    // A multi-byte character before the error moves the column by one, not by its bytes.
    let text = GOOD.replace("name = \"a\"", "name = \"é\" # é\nopacity = 3");
    fails(&text, ErrorKind::BadName, "layers[0].name", 2, 8);
    let text = GOOD.replace("kind = \"solid\"", "kind = \"solid\" # ééé\nopacity = 3");
    fails(&text, ErrorKind::OutOfRange, "layers[0].opacity", 4, 11);
}

#[test]
fn every_default_layer_is_predictable_or_gpu_drawn() {
    let scene = default_scene();
    let states = scene.state_at(0, 640, 480);
    for s in &states {
        let r = rasterize(s, None);
        match s.content.kind_name() {
            "solid" | "checker" | "text" => assert!(r.is_ok(), "{r:?}"),
            "image" => assert_eq!(r, Err(Unpredictable::MissingImage { index: s.index })),
            _ => assert!(matches!(r, Err(Unpredictable::Kind { .. })), "{r:?}"),
        }
    }
}

#[test]
fn text_takes_several_lines_and_an_alignment() {
    let text = GOOD
        .replace("kind = \"solid\"", "kind = \"text\"")
        .replace("color = \"#ff0000\"", "text = \"a\\nb\"\nalign = \"right\"");
    let scene = parse(&text).expect("parses");
    assert_eq!(
        scene.layers[0].content,
        Content::Text {
            text: "a\nb".into(),
            size: 16,
            color: [255, 255, 255, 255],
            align: crate::text::Align::Right,
        }
    );
    let bad = GOOD
        .replace("kind = \"solid\"", "kind = \"text\"")
        .replace("color = \"#ff0000\"", "text = \"a\"\nalign = \"middle\"");
    fails(&bad, ErrorKind::UnknownValue, "layers[0].align", 6, 9);
}
