//! AFL++ target `patterns`: see `maildlp_fuzz::targets::patterns`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::patterns(data));
}
