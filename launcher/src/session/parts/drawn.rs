//! The scene drawn: the scene file (or none, for the built-in scene of `--layers` panels), its
//! layer count, and which scene of the run it is.
//!
//! A scene is drawn by one pair of children from start to end: a new scene
//! ([`Drawn::switch`]) comes with a new pair, and every frame is all of one scene, numbered by
//! [`Drawn::scene_id`] (0 for the first). Where the layers lie in a frame, and so which one the
//! pointer is over, is the scene's answer ([`Drawn::layer_at`]), with the user's moves.

use std::sync::Arc;

use ipc_protocol::messages::SceneStart;
use triptych_scene::Moves;

use crate::scene::LoadedScene;

/// The scene drawn.
#[derive(Debug)]
pub struct Drawn {
    /// The scene file drawn (the configuration's at first, then what `Shell::set_scene` gave).
    scene: Option<Arc<LoadedScene>>,
    /// The layers of the scene drawn: a scene file's slots, which edits may fill, or the
    /// built-in scene's panels.
    layers: u32,
    /// Which scene: 0 at first, one more at every change.
    scene_id: u32,
    /// The version of the scene file's edits drawn (0 before the first).
    version: u64,
}

/// How many layers a run of a scene file has: every slot a scene may fill, so that an edit
/// can add layers without new children.
const SCENE_SLOTS: u32 = triptych_scene::MAX_LAYERS;

impl Drawn {
    /// The run's first scene: `scene`, or without one the built-in scene of `layers` layers.
    pub fn new(scene: Option<Arc<LoadedScene>>, layers: u32) -> Drawn {
        Drawn {
            layers: if scene.is_some() { SCENE_SLOTS } else { layers },
            scene,
            scene_id: 0,
            version: 0,
        }
    }

    /// Draws the edited scene of `edit` from now on.
    pub fn edit(&mut self, edit: &crate::scene::Edit) {
        self.scene = Some(Arc::clone(&edit.scene));
        self.version = edit.version;
    }

    /// The version of the edits drawn.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The scene file drawn, if one is.
    pub fn scene(&self) -> Option<&Arc<LoadedScene>> {
        self.scene.as_ref()
    }

    /// Its layers.
    pub fn layers(&self) -> u32 {
        self.layers
    }

    /// Which scene of the run: 0 for the first.
    pub fn scene_id(&self) -> u32 {
        self.scene_id
    }

    /// What a GPU process's `Start` says of the scene file.
    pub fn start(&self) -> Option<SceneStart> {
        self.scene.as_ref().map(|s| {
            let mut start = s.start.clone();
            start.pixels = u32::try_from(s.pixels().count()).unwrap_or(u32::MAX);
            start
        })
    }

    /// The colour behind every layer.
    pub fn backdrop(&self) -> [u8; 4] {
        self.scene
            .as_ref()
            .map_or(triptych_scene::BACKDROP, |s| s.scene.backdrop)
    }

    /// Whether frames differ without anything else changing (the built-in scene always does).
    pub fn animates(&self) -> bool {
        self.scene.as_ref().is_none_or(|s| s.scene.animates())
    }

    /// Draws `scene` from now on: returns its number.
    pub fn switch(&mut self, scene: Arc<LoadedScene>) -> u32 {
        self.scene = Some(scene);
        self.layers = SCENE_SLOTS;
        self.scene_id += 1;
        self.scene_id
    }

    /// The topmost layer (never the background) the pixel at `p` shows in frame `frame` of
    /// `size`, with `moves`.
    pub fn layer_at(
        &self,
        frame: u64,
        (w, h): (u32, u32),
        moves: &Moves,
        p: (i32, i32),
    ) -> Option<u32> {
        match &self.scene {
            Some(s) => s.scene.layer_at(frame, w, h, moves, p),
            None => triptych_scene::layer_at(frame, self.layers, w, h, moves, p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_protocol::messages::SceneSource;
    use triptych_scene::file::Scene;

    /// A still scene: a background, a panel on top (z 5), and a layer under it that comes
    /// later in the file, overlapping the panel.
    const SCENE: &str = r##"backdrop = "#101018"

[[layers]]
name = "back"
kind = "solid"
color = "#203040"
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "panel"
kind = "solid"
color = "#c04040"
rect = { x = 40, y = 40, w = 120, h = 80 }
z = 5

[[layers]]
name = "under"
kind = "solid"
color = "#40c040"
rect = { x = 100, y = 80, w = 140, h = 100 }
z = 2
"##;

    fn still() -> Arc<LoadedScene> {
        let path = std::path::Path::new("still.toml");
        let scene = Scene::parse(SCENE, path).expect("a valid scene");
        let decoded = vec![None; scene.layers.len()];
        Arc::new(LoadedScene {
            scene,
            start: SceneStart {
                source: SceneSource::File {
                    name: "still.toml".into(),
                    text: SCENE.into(),
                },
                images: 0,
                slots: Vec::new(),
                pixels: 0,
            },
            images: Vec::new(),
            decoded,
            uploads: Vec::new(),
            doc: triptych_scene::file::Document::parse(SCENE, path).expect("a valid scene"),
        })
    }

    #[test]
    fn the_built_in_scene_picks_its_panels_never_the_background() {
        let d = Drawn::new(None, 2);
        let none = Moves::default();
        // At 200x100, frame 0, the one panel (100x50) lies at (37, 3): see
        // `triptych_scene::placement`.
        assert_eq!(d.layer_at(0, (200, 100), &none, (0, 0)), None, "background");
        assert_eq!(d.layer_at(0, (200, 100), &none, (36, 10)), None);
        assert_eq!(d.layer_at(0, (200, 100), &none, (37, 3)), Some(1));
        assert_eq!(d.layer_at(0, (200, 100), &none, (136, 52)), Some(1));
        assert_eq!(d.layer_at(0, (200, 100), &none, (137, 52)), None);
        // Moved 100 to the right, it is found where it went.
        let mut moved = Moves::default();
        moved.add(1, 100, 0);
        assert_eq!(d.layer_at(0, (200, 100), &moved, (40, 10)), None);
        assert_eq!(d.layer_at(0, (200, 100), &moved, (150, 10)), Some(1));
        assert!(d.animates());
        assert_eq!(d.backdrop(), triptych_scene::BACKDROP);
        assert!(d.start().is_none());
    }

    #[test]
    fn a_new_scene_is_numbered_and_picked_by_its_own_layout() {
        let mut d = Drawn::new(None, 5);
        assert_eq!(d.scene_id(), 0);
        assert_eq!(d.switch(still()), 1);
        // A scene file's run has every slot, for the layers edits add.
        assert_eq!((d.layers(), d.scene_id()), (triptych_scene::MAX_LAYERS, 1));
        let none = Moves::default();
        // Where the two overlap the panel wins by z, although it comes first in the file.
        assert_eq!(d.layer_at(0, (320, 240), &none, (120, 90)), Some(1));
        assert_eq!(d.layer_at(0, (320, 240), &none, (200, 150)), Some(2));
        assert_eq!(
            d.layer_at(0, (320, 240), &none, (5, 5)),
            None,
            "over no layer"
        );
        assert!(!d.animates(), "a still scene");
        assert_eq!(d.backdrop(), [0x10, 0x10, 0x18, 0xff]);
        assert!(d.start().is_some());
        assert_eq!(d.switch(still()), 2, "every switch counts");
    }
}
