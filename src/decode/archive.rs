//! Archives: zip, gzip, tar. (Being written.)

use super::Ctx;

pub fn zip(ctx: &mut Ctx<'_>, location: &str, _data: &[u8], _depth: usize) {
    ctx.unscannable(location, "zip archives are not supported yet");
}

pub fn gzip(ctx: &mut Ctx<'_>, location: &str, _name: &str, _data: &[u8], _depth: usize) {
    ctx.unscannable(location, "gzip archives are not supported yet");
}

pub fn tar(ctx: &mut Ctx<'_>, location: &str, _data: &[u8], _depth: usize) {
    ctx.unscannable(location, "tar archives are not supported yet");
}
