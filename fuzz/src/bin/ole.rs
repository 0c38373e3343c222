//! AFL++ target `ole`: see `maildlp_fuzz::targets::ole`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::ole(data));
}
