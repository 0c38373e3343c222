//! RTF text. (Being written.)

use super::Ctx;

pub fn extract(ctx: &mut Ctx<'_>, location: &str, _data: &[u8]) {
    ctx.unscannable(location, "RTF is not supported yet");
}
