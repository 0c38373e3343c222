//! AFL++ target `milter_codec`: see `maildlp_fuzz::targets::milter_codec`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::milter_codec(data));
}
