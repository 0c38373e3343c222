//! AFL++ target `rtf`: see `maildlp_fuzz::targets::rtf`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::rtf(data));
}
