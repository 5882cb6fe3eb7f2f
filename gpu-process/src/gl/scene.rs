//! Scene-file layers drawn with GLSL ES 3.00 shaders: solid, gradient, checker, image and text,
//! scrolled inside the layer, turned and scaled as whole quads (the texture is the quad's bounds).
//!
//! # Ownership and lifetimes
//!
//! A [`SceneDrawer`] is made at each GPU process start, after the sandbox is on, from the
//! scene and its decoded images ([`SceneDrawer::new`]), and again for each edit of the scene
//! and each new output size ([`SceneDrawer::edited`]), sharing the first one's program. The
//! program (a vertex shader that covers the viewport with one triangle, and one fragment shader
//! with a branch per kind) and an empty vertex array are compiled once; each drawer owns one
//! texture per image, pixels or text layer: the decoded PNG, the application's pixels, or the
//! text rasterized on the CPU by `triptych_scene::text`. Like every GL object of this module it holds
//! the context's shared state, so the context outlives it, and it deletes its objects in `Drop`.
//! Each frame, [`GlContext::paint`] draws a [`Paint::Scene`] (the drawer and the layer's
//! [`LayerState`] at that frame) into the layer's target, replacing every texel.
//!
//! # Exactness
//!
//! The CPU reference ([`triptych_scene::file::rasterize`]) predicts solid, checker and nearest,
//! unrotated image layers exactly, and this shader matches it bit for bit: every position is an
//! integer texel index (`gl_FragCoord` is at texel centres, `x + 0.5`, so `floor` gives `x`;
//! GL's window y is the scene's row, as in [`super::draw`]), the scroll wrap, the checker
//! cell and the nearest image texel (`(2x + 1) * iw / 2w`) are computed in 32-bit integers
//! (at most `(2 * 8191 + 1) * 8192`, far below 2^31), texels are read with `texelFetch`, and
//! colours are written as `c / 255`, which the conversion to UNORM8 (round to nearest, ES 3.0
//! spec section 2.1.6) turns back into `c`. Gradients, linear sampling, text and rotation are
//! drawn in floating point and are not predicted.
//!
//! [GLSL ES 3.00]: https://registry.khronos.org/OpenGL/specs/es/3.0/GLSL_ES_Specification_3.00.pdf

use std::fmt;
use std::rc::Rc;

use glow::HasContext;
use ipc_protocol::damage::Region;
use triptych_scene::file::{Content, Direction, Image, LayerState, Sampling, Scene};
use triptych_scene::LayerContent;

use super::context::{GlContext, Shared};
use super::error::GlError;
use super::targets::LayerTarget;

/// What to draw into a layer target.
#[derive(Clone, Debug)]
pub enum Paint {
    /// The built-in deterministic scene's layer: a fill and rectangles, as scissored clears.
    Rects(LayerContent),
    /// A scene file's layer at one frame, drawn by `drawer`'s shaders.
    Scene {
        /// The scene's GL resources.
        drawer: Rc<SceneDrawer>,
        /// The layer at the frame drawn.
        state: LayerState,
    },
    /// What the inner paint draws, with the hover outline over it (the layer under the
    /// pointer; [`triptych_scene::highlight_rects`]).
    Outlined(Box<Paint>),
    /// Texels uploaded once ([`GlContext::upload_target`]: the window's overlay, rasterized on
    /// the CPU), copied into the layer as they are. A new upload is new content; the same one
    /// is the same content.
    Copied(Rc<LayerTarget>),
}

impl Paint {
    /// The size of the texture this paints, in pixels.
    pub fn size(&self) -> (u32, u32) {
        match self {
            Paint::Rects(c) => (c.width, c.height),
            Paint::Scene { state, .. } => (state.bounds.w, state.bounds.h),
            Paint::Outlined(inner) => inner.size(),
            Paint::Copied(source) => (source.width(), source.height()),
        }
    }
}

const VERTEX: &str = r"#version 300 es
// One triangle over the whole viewport: (-1,-1), (3,-1), (-1,3).
void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
";

const FRAGMENT: &str = r"#version 300 es
precision highp float;
precision highp int;
uniform int u_kind;        // 0 solid, 1 gradient, 2 checker, 3 image, 4 text
uniform ivec2 u_size;      // the layer's size in texels
uniform vec4 u_c0;         // premultiplied colours, c / 255
uniform vec4 u_c1;
uniform int u_cell;        // checker cell side
uniform ivec2 u_scroll;    // in 0..w, 0..h
uniform int u_vertical;    // gradient direction
uniform int u_linear;      // image sampling
uniform int u_rotated;     // turned or scaled: the texture is the turned quad's bounds
uniform vec2 u_cos_sin;    // of the clockwise rotation
uniform vec2 u_centre;     // the layer's centre, in the texture's coordinates
uniform float u_scale;
uniform highp sampler2D u_tex;
out vec4 o;

// The content at integer texel p of the layer (0 <= p < u_size), exactly.
vec4 at_texel(ivec2 p) {
    ivec2 q = (p + u_scroll) % u_size;
    if (u_kind == 0) return u_c0;
    if (u_kind == 2) return ((q.x / u_cell + q.y / u_cell) % 2 == 0) ? u_c0 : u_c1;
    if (u_kind == 3) {
        ivec2 isz = textureSize(u_tex, 0);
        return texelFetch(u_tex, ((2 * q + 1) * isz) / (2 * u_size), 0);
    }
    return texelFetch(u_tex, p, 0);
}

// The content at point f of the layer (texel centres at x + 0.5); transparent outside it.
vec4 at_point(vec2 f) {
    vec2 size = vec2(u_size);
    if (f.x < 0.0 || f.y < 0.0 || f.x >= size.x || f.y >= size.y) return vec4(0.0);
    if (u_kind == 1) {
        float t = u_vertical == 1 ? f.y / size.y : f.x / size.x;
        return mix(u_c0, u_c1, t);
    }
    if (u_kind == 3 && u_linear == 1) {
        return texture(u_tex, (f + vec2(u_scroll)) / size);
    }
    return at_texel(min(ivec2(floor(f)), u_size - 1));
}

void main() {
    vec2 f = gl_FragCoord.xy;
    if (u_rotated == 1) {
        // The layer's quad turns clockwise (y down) and scales about its centre, inside a
        // texture as large as its bounds: sample where this texel was.
        vec2 d = (f - u_centre) / u_scale;
        f = vec2(u_size) * 0.5
            + vec2(u_cos_sin.x * d.x + u_cos_sin.y * d.y, -u_cos_sin.y * d.x + u_cos_sin.x * d.y);
    }
    o = at_point(f);
}
";

/// Uniform locations of the program.
struct Uniforms {
    kind: Option<glow::NativeUniformLocation>,
    size: Option<glow::NativeUniformLocation>,
    c0: Option<glow::NativeUniformLocation>,
    c1: Option<glow::NativeUniformLocation>,
    cell: Option<glow::NativeUniformLocation>,
    scroll: Option<glow::NativeUniformLocation>,
    vertical: Option<glow::NativeUniformLocation>,
    linear: Option<glow::NativeUniformLocation>,
    rotated: Option<glow::NativeUniformLocation>,
    cos_sin: Option<glow::NativeUniformLocation>,
    centre: Option<glow::NativeUniformLocation>,
    scale: Option<glow::NativeUniformLocation>,
    tex: Option<glow::NativeUniformLocation>,
}

/// The program every scene layer is drawn with, its vertex array and its uniforms: compiled
/// once per GPU process start, shared by the drawers of every edit of the scene.
struct Program {
    shared: Rc<Shared>,
    program: glow::NativeProgram,
    vao: glow::NativeVertexArray,
    uniforms: Uniforms,
}

impl Drop for Program {
    fn drop(&mut self) {
        if let Err(error) = self.shared.make_current() {
            tracing::warn!(%error, "the scene program leaked: context not current");
            return;
        }
        let gl = &self.shared.gl;
        // SAFETY: this context is current; both names were created by it in
        // `SceneDrawer::new` and are deleted only here.
        unsafe {
            gl.delete_vertex_array(self.vao);
            gl.delete_program(self.program);
        }
    }
}

/// One texture of the scene's layers, deleted when the last drawer that holds it is gone.
struct Texture {
    shared: Rc<Shared>,
    name: glow::NativeTexture,
}

impl Drop for Texture {
    fn drop(&mut self) {
        if let Err(error) = self.shared.make_current() {
            tracing::warn!(%error, "a scene texture leaked: context not current");
            return;
        }
        // SAFETY: this context is current; the name was created by it in `SceneDrawer::upload`
        // and is deleted only here, when no drawer holds it any more.
        unsafe { self.shared.gl.delete_texture(self.name) };
    }
}

/// The GL resources of one scene: the program (shared with the drawers of its edits) and the
/// image, pixels and text textures (shared with them where a layer did not change).
pub struct SceneDrawer {
    shared: Rc<Shared>,
    program: Rc<Program>,
    /// Per layer slot: the texture an image, pixels or text layer samples.
    textures: Vec<Option<Rc<Texture>>>,
    /// The latest uploads of rectangles into pixels layers, oldest first: what a frame's damage
    /// is made of when only a layer's pixels changed ([`SceneDrawer::patched`]).
    patches: Vec<Patch>,
}

/// One upload of a rectangle into a pixels layer's pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patch {
    /// The pixels layer's slot.
    pub slot: u32,
    /// The layer's serial the upload made ([`Content::Pixels`]'s `serial`).
    pub serial: u64,
    /// The rectangle of its pixels: left, top, width, height.
    pub rect: (u32, u32, u32, u32),
}

/// How many patches a drawer remembers: older serials damage a layer whole.
pub const PATCHES: usize = 64;

impl fmt::Debug for SceneDrawer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SceneDrawer")
            .field("program", &self.program.program.0)
            .field("textures", &self.textures.len())
            .finish_non_exhaustive()
    }
}

/// `c`, premultiplied RGBA8, as the shader's `c / 255`.
fn unorm(c: [u8; 4]) -> [f32; 4] {
    c.map(|v| f32::from(v) / 255.0)
}

impl SceneDrawer {
    /// Compiles the program and uploads the textures of `scene` on `gl`; `images[i]` is the
    /// decoded image of the layer in slot `i` when it is an image layer.
    pub fn new(
        gl: &mut GlContext,
        scene: &Scene,
        images: &[Option<Image>],
        out_w: u32,
        out_h: u32,
    ) -> Result<SceneDrawer, GlError> {
        let shared = Rc::clone(gl.shared());
        shared.make_current()?;
        let program = compile(&shared)?;
        let g = &shared.gl;
        // SAFETY: context current; glGenVertexArrays has no other precondition.
        let vao = unsafe { g.create_vertex_array() }.map_err(|message| GlError::CreateObject {
            object: "vertex array",
            message,
        });
        let vao = match vao {
            Ok(v) => v,
            Err(e) => {
                // SAFETY: context current; `program` is a live name of it, not used again.
                unsafe { g.delete_program(program) };
                return Err(e);
            }
        };
        // SAFETY: context current; `program` is a live, linked program of this context; the
        // names are NUL-free string literals.
        let uniforms = unsafe {
            let at = |n: &str| g.get_uniform_location(program, n);
            Uniforms {
                kind: at("u_kind"),
                size: at("u_size"),
                c0: at("u_c0"),
                c1: at("u_c1"),
                cell: at("u_cell"),
                scroll: at("u_scroll"),
                vertical: at("u_vertical"),
                linear: at("u_linear"),
                rotated: at("u_rotated"),
                cos_sin: at("u_cos_sin"),
                centre: at("u_centre"),
                scale: at("u_scale"),
                tex: at("u_tex"),
            }
        };
        let program = Rc::new(Program {
            shared: Rc::clone(&shared),
            program,
            vao,
            uniforms,
        });
        Self::textures(gl, program, None, scene, images, out_w, out_h)
    }

    /// A drawer of `scene`, an edit of the scene this one draws: the same program, this one's
    /// texture for each slot `keep` says is unchanged, and new textures for the other image,
    /// pixels and text layers.
    pub fn edited(
        &self,
        gl: &mut GlContext,
        scene: &Scene,
        images: &[Option<Image>],
        (out_w, out_h): (u32, u32),
        keep: &dyn Fn(u32) -> bool,
    ) -> Result<SceneDrawer, GlError> {
        let kept = Some((self, keep));
        Self::textures(
            gl,
            Rc::clone(&self.program),
            kept,
            scene,
            images,
            out_w,
            out_h,
        )
    }

    /// Remembers `patch`, the upload that made its layer's newest serial.
    pub fn patch(&mut self, patch: Patch) {
        if self.patches.len() == PATCHES {
            self.patches.remove(0);
        }
        self.patches.push(patch);
    }

    /// The rectangles of `slot`'s pixels uploaded from serial `from` to serial `to`: `None`
    /// unless every serial in between was made by a remembered patch.
    pub fn patched(&self, slot: u32, from: u64, to: u64) -> Option<Vec<(u32, u32, u32, u32)>> {
        if to <= from {
            return None;
        }
        (from + 1..=to)
            .map(|serial| {
                self.patches
                    .iter()
                    .rev()
                    .find(|p| p.slot == slot && p.serial == serial)
                    .map(|p| p.rect)
            })
            .collect()
    }

    /// Uploads the textures of `scene` for a drawer with `program`.
    #[allow(clippy::too_many_arguments)]
    fn textures(
        gl: &mut GlContext,
        program: Rc<Program>,
        kept: Option<(&SceneDrawer, &dyn Fn(u32) -> bool)>,
        scene: &Scene,
        images: &[Option<Image>],
        out_w: u32,
        out_h: u32,
    ) -> Result<SceneDrawer, GlError> {
        let shared = Rc::clone(gl.shared());
        if !Rc::ptr_eq(&shared, &program.shared) {
            return Err(GlError::ForeignObject {
                what: "scene program",
            });
        }
        shared.make_current()?;
        let mut drawer = SceneDrawer {
            shared: Rc::clone(&shared),
            program,
            textures: Vec::new(),
            patches: kept.map(|(d, _)| d.patches.clone()).unwrap_or_default(),
        };
        let slots = scene.layers.iter().map(|l| l.slot as usize + 1).max();
        drawer.textures.resize(slots.unwrap_or(0), None);
        for layer in &scene.layers {
            let i = layer.slot as usize;
            let reused = kept
                .filter(|(_, keep)| keep(layer.slot))
                .and_then(|(d, _)| d.textures.get(i).cloned().flatten());
            if let Some(t) = reused {
                if let Some(slot) = drawer.textures.get_mut(i) {
                    *slot = Some(t);
                }
                continue;
            }
            let tex = match &layer.content {
                Content::Image { sampling, .. } => {
                    let Some(Some(img)) = images.get(i) else {
                        return Err(GlError::Scene(format!(
                            "layer {i} ({}) is an image layer without its image",
                            layer.name
                        )));
                    };
                    let linear = *sampling == Sampling::Linear;
                    Some(drawer.upload(img.width, img.height, &img.pixels, linear)?)
                }
                Content::Pixels {
                    width,
                    height,
                    sampling,
                    ..
                } => {
                    // Transparent until the application's first upload.
                    let linear = *sampling == Sampling::Linear;
                    match images.get(i) {
                        Some(Some(img)) if (img.width, img.height) == (*width, *height) => {
                            Some(drawer.upload(img.width, img.height, &img.pixels, linear)?)
                        }
                        _ => {
                            let clear = vec![0u8; *width as usize * *height as usize * 4];
                            Some(drawer.upload(*width, *height, &clear, linear)?)
                        }
                    }
                }
                Content::Text {
                    text,
                    size,
                    color,
                    align,
                } => {
                    let s = layer.state_at(i, 0, out_w, out_h);
                    let (w, h) = (s.rect.w, s.rect.h);
                    let px = triptych_scene::text::rasterize(text, *size, *color, *align, w, h);
                    Some(drawer.upload(w, h, &px, false)?)
                }
                _ => None,
            };
            if let Some(t) = drawer.textures.get_mut(i) {
                *t = tex.map(|name| {
                    Rc::new(Texture {
                        shared: Rc::clone(&shared),
                        name,
                    })
                });
            }
        }
        Ok(drawer)
    }

    /// A texture of `w` x `h` RGBA8 texels from `pixels` (rows top-down, tightly packed), with
    /// nearest or linear filtering and repeat wrapping (the scroll wraps the same way).
    fn upload(
        &self,
        w: u32,
        h: u32,
        pixels: &[u8],
        linear: bool,
    ) -> Result<glow::NativeTexture, GlError> {
        let max = self.shared.info.max_texture_size;
        let (Ok(wi), Ok(hi)) = (i32::try_from(w), i32::try_from(h)) else {
            return Err(GlError::BadSize {
                width: w,
                height: h,
                max,
            });
        };
        if w == 0 || h == 0 || w > max || h > max {
            return Err(GlError::BadSize {
                width: w,
                height: h,
                max,
            });
        }
        if pixels.len() != w as usize * h as usize * 4 {
            return Err(GlError::BufferSize {
                got: pixels.len(),
                needed: w as usize * h as usize * 4,
                width: w,
                height: h,
            });
        }
        self.shared.make_current()?;
        let g = &self.shared.gl;
        // SAFETY: context current; glGenTextures has no other precondition.
        let tex = unsafe { g.create_texture() }.map_err(|message| GlError::CreateObject {
            object: "texture",
            message,
        })?;
        let filter = if linear { glow::LINEAR } else { glow::NEAREST } as i32;
        // SAFETY: context current; `tex` is a fresh name of it. 1 level of RGBA8 with
        // 1 <= w, h <= GL_MAX_TEXTURE_SIZE (checked above) is a valid glTexStorage2D. No buffer
        // is bound to PIXEL_UNPACK_BUFFER, so the pointer is client memory: with alignment 4
        // (rows are 4 * w bytes), no row length or skips, glTexSubImage2D of RGBA/UNSIGNED_BYTE
        // reads exactly w * h * 4 bytes, which is `pixels.len()` (checked above). Bindings are
        // restored to 0.
        unsafe {
            g.bind_texture(glow::TEXTURE_2D, Some(tex));
            g.tex_storage_2d(glow::TEXTURE_2D, 1, glow::RGBA8, wi, hi);
            g.bind_buffer(glow::PIXEL_UNPACK_BUFFER, None);
            g.pixel_store_i32(glow::UNPACK_ALIGNMENT, 4);
            g.pixel_store_i32(glow::UNPACK_ROW_LENGTH, 0);
            g.pixel_store_i32(glow::UNPACK_SKIP_PIXELS, 0);
            g.pixel_store_i32(glow::UNPACK_SKIP_ROWS, 0);
            g.tex_sub_image_2d(
                glow::TEXTURE_2D,
                0,
                0,
                0,
                wi,
                hi,
                glow::RGBA,
                glow::UNSIGNED_BYTE,
                glow::PixelUnpackData::Slice(Some(pixels)),
            );
            g.tex_parameter_i32(glow::TEXTURE_2D, glow::TEXTURE_MIN_FILTER, filter);
            g.tex_parameter_i32(glow::TEXTURE_2D, glow::TEXTURE_MAG_FILTER, filter);
            g.tex_parameter_i32(glow::TEXTURE_2D, glow::TEXTURE_WRAP_S, glow::REPEAT as i32);
            g.tex_parameter_i32(glow::TEXTURE_2D, glow::TEXTURE_WRAP_T, glow::REPEAT as i32);
            g.bind_texture(glow::TEXTURE_2D, None);
        }
        if let Err(e) = self.shared.check("glTexSubImage2D(scene texture)") {
            // SAFETY: context current; `tex` is a live name of it, not used again.
            unsafe { g.delete_texture(tex) };
            return Err(e);
        }
        Ok(tex)
    }
}

/// Compiles and links the scene program.
fn compile(shared: &Shared) -> Result<glow::NativeProgram, GlError> {
    let g = &shared.gl;
    // SAFETY: context current (the caller made it so); every name used is created here and
    // deleted here on every path except the returned, linked program; the sources are valid
    // UTF-8 without NUL bytes.
    unsafe {
        let program = g
            .create_program()
            .map_err(|message| GlError::CreateObject {
                object: "program",
                message,
            })?;
        let mut shaders = Vec::new();
        let mut failure = None;
        for (kind, src, name) in [
            (glow::VERTEX_SHADER, VERTEX, "vertex"),
            (glow::FRAGMENT_SHADER, FRAGMENT, "fragment"),
        ] {
            let shader = match g.create_shader(kind) {
                Ok(s) => s,
                Err(message) => {
                    failure = Some(GlError::CreateObject {
                        object: "shader",
                        message,
                    });
                    break;
                }
            };
            g.shader_source(shader, src);
            g.compile_shader(shader);
            if !g.get_shader_compile_status(shader) {
                failure = Some(GlError::Scene(format!(
                    "compiling the {name} shader: {}",
                    g.get_shader_info_log(shader)
                )));
                g.delete_shader(shader);
                break;
            }
            g.attach_shader(program, shader);
            shaders.push(shader);
        }
        if failure.is_none() {
            g.link_program(program);
            if !g.get_program_link_status(program) {
                failure = Some(GlError::Scene(format!(
                    "linking the scene program: {}",
                    g.get_program_info_log(program)
                )));
            }
        }
        for s in shaders {
            g.detach_shader(program, s);
            g.delete_shader(s);
        }
        if let Some(e) = failure {
            g.delete_program(program);
            return Err(e);
        }
        Ok(program)
    }
}

impl GlContext {
    /// Draws `paint` into `target`, replacing every texel.
    pub fn paint(&mut self, target: &LayerTarget, paint: &Paint) -> Result<(), GlError> {
        let all = Region::full(target.width(), target.height());
        self.paint_in(target, paint, &all)
    }

    /// Draws `paint` into `target`, replacing the texels inside `region` (the damage a reused
    /// buffer misses) and leaving every other texel as it was.
    pub fn paint_in(
        &mut self,
        target: &LayerTarget,
        paint: &Paint,
        region: &Region,
    ) -> Result<(), GlError> {
        match paint {
            Paint::Rects(content) => self.draw_in(target, content, region),
            Paint::Scene { drawer, state } => self.draw_scene_layer(target, drawer, state, region),
            Paint::Outlined(inner) => {
                self.paint_in(target, inner, region)?;
                self.outline(target, region)
            }
            Paint::Copied(source) => self.copy_in(target, source, region),
        }
    }

    /// Draws scene layer `state` into `target` with `drawer`'s program.
    fn draw_scene_layer(
        &mut self,
        target: &LayerTarget,
        drawer: &SceneDrawer,
        state: &LayerState,
        region: &Region,
    ) -> Result<(), GlError> {
        if !Rc::ptr_eq(self.shared(), target.shared()) || !Rc::ptr_eq(self.shared(), &drawer.shared)
        {
            return Err(GlError::ForeignObject {
                what: "scene layer target",
            });
        }
        let (w, h) = (target.width(), target.height());
        if (state.bounds.w, state.bounds.h) != (w, h) {
            return Err(GlError::SizeMismatch {
                content_width: state.bounds.w,
                content_height: state.bounds.h,
                width: w,
                height: h,
            });
        }
        if region.is_empty() {
            return Ok(());
        }
        let shared = Rc::clone(self.shared());
        shared.make_current()?;
        let g = &shared.gl;
        let u = &drawer.program.uniforms;
        let (kind, c0, c1, cell, vertical, linear) = match &state.content {
            Content::Solid { color } => (0, *color, *color, 1, false, false),
            Content::Gradient {
                from,
                to,
                direction,
            } => (1, *from, *to, 1, *direction == Direction::Vertical, false),
            Content::Checker { cell, colors } => (2, colors[0], colors[1], *cell, false, false),
            Content::Image { sampling, .. } | Content::Pixels { sampling, .. } => {
                (3, [0; 4], [0; 4], 1, false, *sampling == Sampling::Linear)
            }
            Content::Text { .. } => (4, [0; 4], [0; 4], 1, false, false),
        };
        let texture = drawer
            .textures
            .get(state.index)
            .and_then(Option::as_ref)
            .map(|t| t.name);
        if matches!(kind, 3 | 4) && texture.is_none() {
            return Err(GlError::Scene(format!(
                "layer {} has no texture",
                state.index
            )));
        }
        let (c0, c1) = (unorm(c0), unorm(c1));
        let radians = state.rotation.radians();
        let (sin, cos) = (radians.sin() as f32, radians.cos() as f32);
        let transformed = !state.rotation.is_zero() || state.scale != 1000;
        // The rectangle's centre in the texture, which is the turned quad's bounds.
        let centre = (
            (state.rect.x - state.bounds.x) as f32 + state.rect.w as f32 / 2.0,
            (state.rect.y - state.bounds.y) as f32 + state.rect.h as f32 / 2.0,
        );
        // The sizes fit in i32 (the target was made with them, checked against
        // GL_MAX_TEXTURE_SIZE); the cell is at most a layer side; the scroll is below the size.
        let (wi, hi) = (w as i32, h as i32);
        // The content's own size: at most a layer's side, as the parser checked.
        let (cw, ch) = (
            i32::try_from(state.rect.w).unwrap_or(i32::MAX),
            i32::try_from(state.rect.h).unwrap_or(i32::MAX),
        );
        let cell = i32::try_from(cell.max(1)).unwrap_or(i32::MAX);
        let (sx, sy) = (state.scroll.0 as i32, state.scroll.1 as i32);
        // SAFETY: context current; the framebuffer, program, vertex array and texture are live
        // names of this context (same `Shared`, checked above); the framebuffer is complete
        // (checked when it was made). The state set here is everything the draw depends on: no
        // blending, scissor, depth, stencil, culling, dithering or rasterizer discard, all
        // channels writable, the viewport the whole target, the scissor box each rectangle of
        // `region` in turn (inside the target, whose sides fit in i32). Bindings are restored
        // to 0 and the scissor test turned off again.
        unsafe {
            g.bind_framebuffer(glow::DRAW_FRAMEBUFFER, target.framebuffer());
            g.viewport(0, 0, wi, hi);
            g.disable(glow::BLEND);
            g.enable(glow::SCISSOR_TEST);
            g.disable(glow::DEPTH_TEST);
            g.disable(glow::STENCIL_TEST);
            g.disable(glow::CULL_FACE);
            g.disable(glow::DITHER);
            g.disable(glow::RASTERIZER_DISCARD);
            g.color_mask(true, true, true, true);
            g.use_program(Some(drawer.program.program));
            g.bind_vertex_array(Some(drawer.program.vao));
            g.active_texture(glow::TEXTURE0);
            g.bind_texture(glow::TEXTURE_2D, texture);
            g.uniform_1_i32(u.tex.as_ref(), 0);
            g.uniform_1_i32(u.kind.as_ref(), kind);
            g.uniform_2_i32(u.size.as_ref(), cw, ch);
            g.uniform_4_f32(u.c0.as_ref(), c0[0], c0[1], c0[2], c0[3]);
            g.uniform_4_f32(u.c1.as_ref(), c1[0], c1[1], c1[2], c1[3]);
            g.uniform_1_i32(u.cell.as_ref(), cell);
            g.uniform_2_i32(u.scroll.as_ref(), sx, sy);
            g.uniform_1_i32(u.vertical.as_ref(), i32::from(vertical));
            g.uniform_1_i32(u.linear.as_ref(), i32::from(linear));
            g.uniform_1_i32(u.rotated.as_ref(), i32::from(transformed));
            g.uniform_2_f32(u.cos_sin.as_ref(), cos, sin);
            g.uniform_2_f32(u.centre.as_ref(), centre.0, centre.1);
            g.uniform_1_f32(u.scale.as_ref(), state.scale as f32 / 1000.0);
            for r in region.placed(0, 0, w, h).rects() {
                g.scissor(r.x as i32, r.y as i32, r.w as i32, r.h as i32);
                g.draw_arrays(glow::TRIANGLES, 0, 3);
            }
            g.disable(glow::SCISSOR_TEST);
            g.bind_texture(glow::TEXTURE_2D, None);
            g.bind_vertex_array(None);
            g.use_program(None);
            g.bind_framebuffer(glow::DRAW_FRAMEBUFFER, None);
        }
        shared.check("draw (scene layer)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gl::PlatformRequest;
    use triptych_scene::file::{rasterize, Angle, OutputRect};

    fn context() -> GlContext {
        match GlContext::new(PlatformRequest::Auto) {
            Ok(c) => c,
            // A failure, not a skip: the GPU process cannot run without EGL.
            Err(e) => panic!("creating a GL context failed: {e}"),
        }
    }

    /// A scene of one layer of `content` (of `w` x `h`), its drawer and the layer's state.
    fn one_layer(
        gl: &mut GlContext,
        content: &str,
        w: u32,
        h: u32,
        image: Option<Image>,
    ) -> (Rc<SceneDrawer>, LayerState) {
        let text = format!(
            "[[layers]]\nname = \"l\"\nrect = {{ x = 0, y = 0, w = {w}, h = {h} }}\n{content}\n"
        );
        let scene = Scene::parse(&text, std::path::Path::new("t.toml")).expect("scene parses");
        let drawer = SceneDrawer::new(gl, &scene, &[image], 64, 64).expect("drawer");
        let state = scene.state_at(0, 64, 64).remove(0);
        (Rc::new(drawer), state)
    }

    fn draw_and_read(gl: &mut GlContext, drawer: &Rc<SceneDrawer>, state: &LayerState) -> Vec<u8> {
        let target = gl
            .create_target(state.rect.w, state.rect.h)
            .expect("target");
        let paint = Paint::Scene {
            drawer: Rc::clone(drawer),
            state: state.clone(),
        };
        gl.paint(&target, &paint).expect("paint");
        let mut got = vec![0u8; target.byte_len()];
        gl.read_pixels(&target, &mut got).expect("read back");
        got
    }

    fn first_difference(got: &[u8], want: &[u8], w: u32) -> Option<String> {
        got.chunks_exact(4)
            .zip(want.chunks_exact(4))
            .enumerate()
            .find(|(_, (g, w))| g != w)
            .map(|(i, (g, wa))| {
                format!(
                    "({}, {}): got {g:?}, want {wa:?}",
                    i as u32 % w,
                    i as u32 / w
                )
            })
    }

    /// A small image with every channel varying and some translucent texels.
    fn test_image(w: u32, h: u32) -> Image {
        let mut pixels = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let a = if (x + y) % 3 == 0 { 128 } else { 255 };
                let r = ((x * 37 + y * 11) % 256) as u8;
                pixels.extend([r.min(a), ((y * 53) % 256) as u8 & a, 7u8.min(a), a]);
            }
        }
        Image {
            width: w,
            height: h,
            pixels,
        }
    }

    #[test]
    fn an_outlined_layer_equals_the_reference_with_its_outline() {
        let mut gl = context();
        let (drawer, state) = one_layer(
            &mut gl,
            "kind = \"checker\"\ncell = 3\ncolors = [\"#ff000080\", \"#00ff00\"]",
            17,
            9,
            None,
        );
        let target = gl.create_target(17, 9).expect("target");
        let paint = Paint::Outlined(Box::new(Paint::Scene {
            drawer: Rc::clone(&drawer),
            state: state.clone(),
        }));
        assert_eq!(paint.size(), (17, 9));
        gl.paint(&target, &paint).expect("paint");
        let mut got = vec![0u8; target.byte_len()];
        gl.read_pixels(&target, &mut got).expect("read back");
        let mut want = rasterize(&state, None).expect("checker is exact");
        triptych_scene::file::outline(&mut want);
        assert_eq!(first_difference(&got, &want.pixels, 17), None);
        // The outline is there, and the inside is the checker's.
        assert_eq!(got[..4], triptych_scene::HIGHLIGHT);
        assert_ne!(got[(4 * 17 + 4) * 4..][..4], triptych_scene::HIGHLIGHT);
    }

    #[test]
    fn a_region_is_drawn_and_read_back_and_nothing_else() {
        // A checker scrolled anew inside two rectangles only: inside them the texels are the
        // new state's, outside they are the old one's, in the texture and in the read-back.
        let mut gl = context();
        let (w, h) = (40u32, 30u32);
        let (drawer, before) = one_layer(
            &mut gl,
            "kind = \"checker\"\ncell = 3\ncolors = [\"#ff000080\", \"#00ff00\"]",
            w,
            h,
            None,
        );
        let mut after = before.clone();
        after.scroll = (5, 2);
        let target = gl.create_target(w, h).expect("target");
        let paint = |state: &LayerState| Paint::Scene {
            drawer: Rc::clone(&drawer),
            state: state.clone(),
        };
        gl.paint(&target, &paint(&before)).expect("paint");
        let mut mem = vec![0u8; target.byte_len()];
        gl.read_pixels(&target, &mut mem).expect("read back");
        let region = Region::of([
            ipc_protocol::damage::Rect {
                x: 3,
                y: 4,
                w: 10,
                h: 7,
            },
            ipc_protocol::damage::Rect {
                x: 30,
                y: 20,
                w: 10,
                h: 10,
            },
        ]);
        gl.paint_in(&target, &paint(&after), &region)
            .expect("paint a region");
        gl.read_pixels_in(&target, &mut mem, &region)
            .expect("read a region back");
        let old = rasterize(&before, None).expect("predictable").pixels;
        let new = rasterize(&after, None).expect("predictable").pixels;
        let want: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let src = if region.contains(i % w, i / w) {
                    &new
                } else {
                    &old
                };
                src[i as usize * 4..i as usize * 4 + 4].to_vec()
            })
            .collect();
        assert!(
            mem == want,
            "{}",
            first_difference(&mem, &want, w).unwrap_or_default()
        );
        // The texture itself holds the same: a whole read-back agrees.
        let mut whole = vec![0u8; target.byte_len()];
        gl.read_pixels(&target, &mut whole).expect("read back");
        assert!(
            whole == want,
            "{}",
            first_difference(&whole, &want, w).unwrap_or_default()
        );
    }

    #[test]
    fn scissored_clears_inside_a_region_leave_the_rest() {
        let mut gl = context();
        let a = triptych_scene::layer_content(3, 1, 128, 96);
        let b = triptych_scene::layer_content(9, 1, 128, 96);
        let (w, h) = (a.width, a.height);
        let target = gl.create_target(w, h).expect("target");
        gl.draw(&target, &a).expect("draw");
        let region = Region::of([ipc_protocol::damage::Rect {
            x: 7,
            y: 5,
            w: 21,
            h: 30,
        }]);
        gl.draw_in(&target, &b, &region).expect("draw a region");
        let mut got = vec![0u8; target.byte_len()];
        gl.read_pixels(&target, &mut got).expect("read back");
        let want: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                if region.contains(x, y) {
                    b.texel(x, y)
                } else {
                    a.texel(x, y)
                }
            })
            .collect();
        assert!(
            got == want,
            "{}",
            first_difference(&got, &want, w).unwrap_or_default()
        );
    }

    #[test]
    fn exact_kinds_equal_the_cpu_reference() {
        let mut gl = context();
        let contents = [
            "kind = \"solid\"\ncolor = \"#ff408080\"",
            "kind = \"checker\"\ncell = 3\ncolors = [\"#ff000080\", \"#00ff00\"]",
            "kind = \"checker\"\ncell = 1\ncolors = [\"#123456\", \"#fedcba7f\"]",
            "kind = \"image\"\npath = \"i.png\"",
        ];
        for content in contents {
            for &(w, h) in &[(1u32, 1u32), (17, 9), (40, 33), (5, 61)] {
                for &(iw, ih) in &[(7u32, 5u32), (40, 33), (1, 1), (64, 3)] {
                    let image = test_image(iw, ih);
                    let (drawer, mut state) =
                        one_layer(&mut gl, content, w, h, Some(image.clone()));
                    for scroll in [(0, 0), (w / 2, h / 3), (w - 1, h - 1)] {
                        state.scroll = scroll;
                        let got = draw_and_read(&mut gl, &drawer, &state);
                        let want = rasterize(&state, Some(&image)).expect("predictable").pixels;
                        assert!(
                            got == want,
                            "{content} {w}x{h} (image {iw}x{ih}) scrolled {scroll:?}: {}",
                            first_difference(&got, &want, w).unwrap_or_default()
                        );
                    }
                    if !content.contains("image") {
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn an_upload_is_copied_texel_for_texel_and_only_inside_the_region() {
        let mut gl = context();
        let lines = ["fps 60.0".to_owned(), "sandbox off".to_owned()];
        let px = triptych_scene::overlay::rasterize(&lines).expect("the font loads");
        let (w, h) = (px.width, px.height);
        let source = gl.upload_target(w, h, &px.pixels).expect("upload");
        assert!(
            gl.upload_target(w, h, &px.pixels[4..]).is_err(),
            "short pixels"
        );
        let target = gl.create_target(w, h).expect("target");
        let fill = [1, 2, 3, 4];
        let content = LayerContent {
            width: w,
            height: h,
            background: fill,
            rects: Vec::new(),
        };
        gl.draw(&target, &content).expect("fill");
        let paint = Paint::Copied(Rc::new(source));
        assert_eq!(paint.size(), (w, h));
        let mut region = Region::new();
        region.add(ipc_protocol::damage::Rect {
            x: 3,
            y: 2,
            w: w / 2,
            h: h / 2,
        });
        gl.paint_in(&target, &paint, &region).expect("copy a part");
        let mut got = vec![0u8; target.byte_len()];
        gl.read_pixels(&target, &mut got).expect("read back");
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 4) as usize;
                let want = if region.contains(x, y) {
                    &px.pixels[i..i + 4]
                } else {
                    &fill[..]
                };
                assert_eq!(&got[i..i + 4], want, "({x}, {y})");
            }
        }
        gl.paint(&target, &paint).expect("copy all");
        gl.read_pixels(&target, &mut got).expect("read back");
        assert!(
            got == px.pixels,
            "{}",
            first_difference(&got, &px.pixels, w).unwrap_or_default()
        );
        let other = gl.create_target(w + 1, h).expect("target");
        assert!(gl.paint(&other, &paint).is_err(), "another size");
    }

    #[test]
    fn gradients_run_from_edge_to_edge() {
        let mut gl = context();
        let (drawer, state) = one_layer(
            &mut gl,
            "kind = \"gradient\"\nfrom = \"#000000\"\nto = \"#ff0000\"\ndirection = \"vertical\"",
            8,
            64,
            None,
        );
        let got = draw_and_read(&mut gl, &drawer, &state);
        let red = |y: usize| got[y * 8 * 4];
        assert!(red(0) < 8 && red(63) > 247, "{} .. {}", red(0), red(63));
        assert!((1..64).all(|y| red(y) >= red(y - 1)), "not monotonic");
        assert!(got.chunks_exact(4).all(|p| p[3] == 255));
    }

    #[test]
    fn a_quarter_turn_moves_the_top_row_to_the_right_column() {
        let mut gl = context();
        // Row 0 of a 16x16 checker of cell 1 alternates; a solid top half is easier: an image
        // whose top half is red and bottom half blue.
        let mut pixels = Vec::new();
        for y in 0..16 {
            for _ in 0..16 {
                pixels.extend(if y < 8 {
                    [255, 0, 0, 255]
                } else {
                    [0, 0, 255, 255]
                });
            }
        }
        let image = Image {
            width: 16,
            height: 16,
            pixels,
        };
        let (drawer, mut state) = one_layer(
            &mut gl,
            "kind = \"image\"\npath = \"i.png\"",
            16,
            16,
            Some(image),
        );
        state.rotation = Angle::from_millidegrees(90_000);
        let got = draw_and_read(&mut gl, &drawer, &state);
        let at = |x: usize, y: usize| &got[(y * 16 + x) * 4..(y * 16 + x) * 4 + 4];
        // Clockwise: the red top half is now the right half.
        assert_eq!(at(15, 8), [255, 0, 0, 255]);
        assert_eq!(at(0, 8), [0, 0, 255, 255]);
        state.rotation = Angle::default();
        state.rect = OutputRect {
            x: 0,
            y: 0,
            w: 16,
            h: 16,
        };
        let upright = draw_and_read(&mut gl, &drawer, &state);
        assert_eq!(&upright[..4], [255, 0, 0, 255]);
    }

    #[test]
    fn text_is_drawn_as_the_cpu_rasterizes_it() {
        let mut gl = context();
        let (drawer, state) = one_layer(
            &mut gl,
            "kind = \"text\"\ntext = \"Hi there\\nsecond line\"\nsize = 14\ncolor = \"#0a141e28\"\nalign = \"center\"",
            80,
            40,
            None,
        );
        let got = draw_and_read(&mut gl, &drawer, &state);
        let want = triptych_scene::text::rasterize(
            "Hi there\nsecond line",
            14,
            state_color(&state),
            triptych_scene::text::Align::Center,
            80,
            40,
        );
        assert!(want.chunks_exact(4).any(|t| t[3] > 0), "no ink");
        assert!(
            got == want,
            "{}",
            first_difference(&got, &want, 80).unwrap_or_default()
        );
    }

    fn state_color(state: &LayerState) -> [u8; 4] {
        match state.content {
            Content::Text { color, .. } => color,
            _ => panic!("not a text layer"),
        }
    }
}
