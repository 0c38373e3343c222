//! AFL++ target `html`: see `maildlp_fuzz::targets::html`.

fn main() {
    maildlp_fuzz::targets::warm_up();
    afl::fuzz!(|data: &[u8]| maildlp_fuzz::targets::html(data));
}
