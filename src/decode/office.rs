//! Office Open XML, OpenDocument and OLE compound files. (Being written.)

use super::Ctx;

pub fn ole(ctx: &mut Ctx<'_>, location: &str, _data: &[u8]) {
    ctx.unscannable(location, "OLE compound files are not supported yet");
}
