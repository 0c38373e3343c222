//! AFL++ target `mime`: see `maildlp_fuzz::targets::mime`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::mime(data));
}
